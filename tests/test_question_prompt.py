"""The question prompt carries the syllabus as written, as the GLAN paper's does (introduction,
objectives, session descriptions), while sampling still works on the structured sessions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from glan_dataset.pipeline import generate
from glan_dataset.testing.openai_server import FakeOpenAIServer
from tests.helpers import TINY_TAXONOMY, engine_config, tiny_settings


def test_each_question_prompt_holds_its_subjects_syllabus_text(tmp_path: Path) -> None:
    bodies: list[dict[str, Any]] = []
    with FakeOpenAIServer(responder=lambda body: bodies.append(body)) as server:
        generate(tmp_path / "run", tiny_settings(), engine_config(server), taxonomy_path=TINY_TAXONOMY, quiet=True)
    syllabi = pl.read_parquet(next((tmp_path / "run" / "syllabi").glob("*.parquet")))
    prompts = [b["messages"][-1]["content"] for b in bodies if "homework question" in b["messages"][-1]["content"]]
    assert prompts
    for row in syllabi.iter_rows(named=True):
        mine = [p for p in prompts if f'course "{row["subject"]}"' in p]
        assert mine and all(row["syllabus_text"].strip() in p for p in mine), row["subject"]


def test_the_syllabus_prompt_asks_for_an_introduction_and_objectives() -> None:
    from glan_dataset.prompts import PromptLibrary

    text = (Path(__file__).parents[1] / "prompts" / "syllabus.j2").read_text(encoding="utf-8")
    assert "introduction" in text and "learning objectives" in text
    assert PromptLibrary(names=["question"])["question"].version  # the packaged template loads
