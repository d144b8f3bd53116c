"""The quality gate end to end against the loopback server planting refusals, near-empty and truncated
answers: the rule checks and the judge's scores land as columns in RUN/quality, publishing filters
by threshold without a single new LLM call, and the card shows the histogram and pass rates."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from glan_dataset import flows
from glan_dataset.errors import UsageError
from glan_dataset.testing.openai_server import FakeOpenAIServer
from tests.helpers import TINY_TAXONOMY, engine_config, tiny_settings
from tests.test_quality_checks import PHYSICS_A

JUDGE = "gpt-4o"  # a model the loopback server lists (the endpoint check runs first)
ANSWER_MODEL = "gpt-4.1-mini"
# A plain refusal ("I'm sorry, but I can't ...") never reaches a record: the engine fails it as refused.
# What gets through is boilerplate that still answers nothing, which the gate's refusal check catches.
REFUSAL = (
    "As an AI language model, I do not have personal opinions about incline problems, "
    "so please consult your course textbook for this exercise."
)
NEAR_EMPTY = "See above."
TRUNCATED = "Along a frictionless incline only the component of gravity parallel to the surface accelerates the"
BAD = {0: ("refusal", REFUSAL), 1: ("empty", NEAR_EMPTY), 2: ("truncated", TRUNCATED)}


def kind(question: str) -> int:
    return hashlib.sha256(question.encode()).digest()[0] % 6  # 0-2: planted faults, 3-5: good answers


def score(question: str) -> int:
    """Bad answers score 2; good ones 5 to 9 (deterministic per question)."""
    return 2 if kind(question) in BAD else 5 + hashlib.sha256(question.encode()).digest()[1] % 5


def planted(body: dict[str, Any]) -> str | None:
    messages = body["messages"]
    if body["model"] == JUDGE:
        prompt = messages[-1]["content"]
        question = prompt.split("Question:\n", 1)[1].split("\n\nAnswer:\n", 1)[0]
        return json.dumps({"score": score(question), "rationale": "The main steps are right and clear."})
    if body["model"] == ANSWER_MODEL and len(messages) == 1:
        question = messages[0]["content"]
        return BAD[kind(question)][1] if kind(question) in BAD else PHYSICS_A
    return None


@pytest.fixture(scope="module")
def judged_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, FakeOpenAIServer]:
    run = tmp_path_factory.mktemp("quality") / "run"
    server = FakeOpenAIServer(responder=planted)
    server.start()
    settings = tiny_settings(answer_model=ANSWER_MODEL, step_options={"judgements": {"model": JUDGE}})
    flows.generate(run, settings, engine_config(server), taxonomy_path=TINY_TAXONOMY, quiet=True)
    benchmark = run.parent / "benchmark.jsonl"
    benchmark.write_text(
        json.dumps({"question": "What is the capital of the country with the longest coastline?"}) + "\n"
    )
    flows.decontaminate(run, {"benchmarks": [], "benchmark_files": [benchmark]})
    yield run, server
    server.stop()


def clean_records(run: Path) -> pl.DataFrame:
    return pl.concat([pl.read_parquet(p) for p in sorted((run / "clean").glob("*.parquet"))])


def published(folder: Path) -> pl.DataFrame:
    return pl.concat([pl.read_parquet(p) for p in sorted((folder / "data").glob("*/*.parquet"))])


def test_checks_and_scores_land_as_columns_and_thresholds_cost_nothing(
    judged_run: tuple[Path, FakeOpenAIServer], tmp_path: Path
) -> None:
    run, server = judged_run
    clean = clean_records(run)
    kinds = {row["id"]: kind(row["question"]) for row in clean.iter_rows(named=True)}
    assert {k for k in kinds.values() if k in BAD} == set(BAD), "every planted fault made it into the records"
    server.reset_stats()

    first = tmp_path / "first"
    flows.publish(run, first, enforce_checks="refusal,empty,truncated", min_score=5, quiet=True)
    checks = pl.read_parquet(run / "quality" / "checks.parquet")
    assert checks.columns == [
        "id",
        "discipline",
        "empty",
        "restates_question",
        "refusal",
        "truncated",
        "leaks_answer",
        "language",
        "score",
    ]
    verdicts = {row["id"]: row for row in checks.iter_rows(named=True)}
    assert set(verdicts) == set(clean["id"])
    for record_id, k in kinds.items():
        row = verdicts[record_id]
        failing = {
            name
            for name in ("empty", "refusal", "truncated", "restates_question", "leaks_answer", "language")
            if not row[name]
        }
        assert failing == ({BAD[k][0]} if k in BAD else set()), (k, failing)
    assert {row["id"]: row["score"] for row in checks.iter_rows(named=True)} == {
        row["id"]: score(row["question"]) for row in clean.iter_rows(named=True)
    }

    removed = pl.read_parquet(run / "quality" / "removed.parquet")
    expected_removed = {i for i, k in kinds.items() if k in BAD}
    assert set(removed["id"]) == expected_removed
    for row in removed.iter_rows(named=True):
        assert row["reasons"] == [f"check:{BAD[kinds[row['id']]][0]}", "score 2 < 5"]
    kept = published(first)
    assert set(kept["id"]) == set(clean["id"]) - expected_removed and kept["answer"].unique().to_list() == [PHYSICS_A]

    card = (first / "README.md").read_text()
    assert "## Quality gate" in card and "![Judge scores](assets/judge_scores.png)" in card
    assert f"`{JUDGE}`" in card and "**difficulty fit**" in card and "| `refusal` |" in card
    assert (first / "assets" / "judge_scores.png").read_bytes().startswith(b"\x89PNG")
    report = json.loads((run / "quality" / "report.json").read_text())
    assert report["removed"] == len(expected_removed) and sum(report["scores"].values()) == clean.height

    # a higher threshold removes more pairs, and costs nothing
    second = tmp_path / "second"
    flows.publish(run, second, min_score=8, quiet=True)
    high = {i for i, row in verdicts.items() if row["score"] >= 8}
    assert set(published(second)["id"]) == high and 0 < len(high) < len(kept)
    assert server.stats.chat_calls == 0
    assert "judge score below 8" in (second / "README.md").read_text()


def test_without_a_gate_or_judge_publishing_is_unchanged(
    judged_run: tuple[Path, FakeOpenAIServer], tmp_path: Path
) -> None:
    run, _ = judged_run
    flows.publish(run, tmp_path / "all", quiet=True)  # judged: the card shows the scores, nothing is removed
    assert set(published(tmp_path / "all")["id"]) == set(clean_records(run)["id"])
    card = (tmp_path / "all" / "README.md").read_text()
    assert "No pair was left out." in card and "![Judge scores]" in card


def test_bad_thresholds_are_one_line(judged_run: tuple[Path, FakeOpenAIServer], tmp_path: Path) -> None:
    run, _ = judged_run
    with pytest.raises(UsageError, match="--enforce-checks: unknown check.s. refusals; choose from all, empty"):
        flows.publish(run, tmp_path / "x", enforce_checks="refusals", quiet=True)
    result = subprocess.run(
        [sys.executable, "-m", "glan_dataset", "publish", str(run), "--to", str(tmp_path / "y"), "--min-score", "11"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_min_score_without_a_judge_says_how_to_get_scores(tmp_path: Path, openai_server: FakeOpenAIServer) -> None:
    run = tmp_path / "run"
    flows.generate(
        run, tiny_settings(config="physics"), engine_config(openai_server), taxonomy_path=TINY_TAXONOMY, quiet=True
    )
    benchmark = tmp_path / "benchmark.jsonl"
    benchmark.write_text(
        json.dumps({"question": "What is the capital of the country with the longest coastline?"}) + "\n"
    )
    flows.decontaminate(run, {"benchmarks": [], "benchmark_files": [benchmark]})
    with pytest.raises(UsageError, match="--judge-model MODEL"):
        flows.publish(run, tmp_path / "out", min_score=5, quiet=True)
    flows.publish(run, tmp_path / "out", quiet=True)
    assert "## Quality gate" not in (tmp_path / "out" / "README.md").read_text()
    assert not (run / "quality").exists()
