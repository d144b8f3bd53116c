"""The records of a seeded run, pinned byte for byte.

The loopback server's reply is a pure function of the request body, so these records pin every
request the pipeline sends (prompts, sampling parameters, response formats, sample indices) as well
as the sampling of questions and the record schema. A refactor must leave the hash unchanged; an
intentional change of what is generated updates ``PINNED`` in the same commit, saying why.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl

from glan_dataset.pipeline import generate
from glan_dataset.testing.openai_server import FakeOpenAIServer
from tests.helpers import TINY_TAXONOMY, engine_config, tiny_settings

# History: a6cea5e6... before the provenance columns (sample_index, session_indices, seed);
# 65241f4e... with them; now the question prompt carries the syllabus as written (the paper's context)
# and the syllabus prompt asks for an introduction and objectives, so every question request changed.
PINNED = "d71049d8a4319cdc7567dc9683c00decfc7cdb30f09f7d66245ba3eaa3de9345"


def records_sha256(run: Path) -> str:
    """sha256 over the canonical JSON of every record row, sorted by id, one line per row."""
    frame = pl.concat([pl.read_parquet(path) for path in sorted((run / "records").glob("*.parquet"))])
    rows = sorted(frame.iter_rows(named=True), key=lambda row: row["id"])
    lines = [json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":")) for row in rows]
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def test_seeded_run_gives_the_pinned_records(tmp_path: Path, openai_server: FakeOpenAIServer) -> None:
    settings = tiny_settings(config="all", subject_samples=2, max_subjects=2, questions_per_subject=3, seed=5)
    generate(tmp_path / "run", settings, engine_config(openai_server), taxonomy_path=TINY_TAXONOMY, quiet=True)
    assert records_sha256(tmp_path / "run") == PINNED
