"""Staleness by content: clean files name what they were made from; publish compares identities, not clocks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from glan_dataset.decontamination import DecontaminationSettings, decontaminate_run
from glan_dataset.decontamination.identity import clean_meta, records_identity
from glan_dataset.errors import UsageError
from glan_dataset.publishing.publish import publish_run, stale_clean_disciplines
from glan_dataset.rundir import RunDir
from glan_dataset.stages.store import StageStore
from tests.decontamination_support import (  # noqa: F401 - isolated_benchmark_cache is an autouse fixture
    benchmark_files,
    isolated_benchmark_cache,
    item,
    write_records,
)
from tests.publishing_support import make_records, run_manifest, write_taxonomy


def _records(discipline: str, n: int, salt: str = "") -> list[dict]:
    return make_records(discipline, n, salt=salt)


def _stop_at(discipline: str):  # noqa: ANN202 - a progress callback
    """A progress callback that interrupts the run just before ``discipline`` (as a kill would)."""

    def progress(message: str) -> None:
        if message == f"decontaminating {discipline}":
            raise KeyboardInterrupt

    return progress


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    return benchmark_files(tmp_path / "benchmarks")


def _settings(files: list[Path], **overrides: object) -> DecontaminationSettings:
    return DecontaminationSettings.model_validate(
        {"benchmarks": [], "benchmark_files": files, "quiet": True, **overrides}
    )


@pytest.fixture
def run(tmp_path: Path, files: list[Path]) -> Path:
    """A decontaminated run: physics (one contaminated record) and chemistry; then physics regenerated."""
    run = tmp_path / "run"
    leak = {**_records("physics", 5)[4], "id": "leak", "question": item("gsm8k", "0")["question"]}
    write_records(run, "physics", [*_records("physics", 4), leak])
    write_records(run, "chemistry", _records("chemistry", 3))
    write_taxonomy(
        run / "taxonomy.yaml", ["physics", "chemistry"]
    )  # the config selects exactly these: not a partial run
    (run / "run.json").write_text(json.dumps(run_manifest(False)), encoding="utf-8")
    decontaminate_run(run, _settings(files))
    return run


def _copy(source: Path, target: Path, first: str) -> Path:
    """Copy a run directory file by file (shutil.copyfile: new mtimes), ``first`` stage oldest."""
    files = sorted(p for p in source.rglob("*") if p.is_file())
    files.sort(key=lambda p: 0 if p.relative_to(source).parts[0] == first else 1)
    for stamp, path in enumerate(files, start=1):
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
        os.utime(destination, (1_000_000 + stamp * 10, 1_000_000 + stamp * 10))  # strictly increasing
    return target


def _published(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted((folder / "data").rglob("*.parquet"))}


def test_clean_files_and_report_record_what_they_were_made_from(run: Path) -> None:
    rundir = RunDir(run)
    report = json.loads(rundir.decontamination_report.read_text())
    for discipline in ("physics", "chemistry"):
        meta = clean_meta(rundir.clean_file(discipline))
        assert meta is not None and meta.discipline == discipline
        assert meta.records_identity == records_identity(rundir.records_file(discipline))
        assert meta.records_identity == report["disciplines"][discipline]["records_identity"]
        assert meta.decontamination_identity == report["identity"]
    assert stale_clean_disciplines(rundir) == []


def test_records_with_stage_metadata_are_identified_by_it(tmp_path: Path) -> None:
    from glan_dataset.records import Record

    run = RunDir(tmp_path / "run")
    rows = [Record.model_validate(r) for r in _records("physics", 2)]
    meta = StageStore(run).write(
        "records", "physics", rows, [r.id for r in rows], fingerprint="f", complete=True, row_model=Record
    )
    assert records_identity(run.records_file("physics")) == meta.identity


def test_a_copied_run_directory_publishes_the_same_in_any_copy_order(run: Path, tmp_path: Path) -> None:
    results = []
    for first in ("records", "clean"):
        copy = _copy(run, tmp_path / f"copy-{first}-first", first)
        assert stale_clean_disciplines(RunDir(copy)) == []
        publish_run(copy, tmp_path / f"published-{first}", quiet=True)
        results.append(_published(tmp_path / f"published-{first}"))
    assert results[0] == results[1] and results[0]


def test_records_changed_after_decontamination_are_stale_in_any_copy_order(run: Path, tmp_path: Path) -> None:
    # physics regenerated (5 -> 6 rows) after decontamination: its clean file no longer reflects it
    write_records(run, "physics", _records("physics", 6, salt="v2"))
    for first in ("records", "clean"):  # "clean" last = clean files newest: the mtime check accepted them
        copy = _copy(run, tmp_path / f"copy-{first}-first", first)
        assert stale_clean_disciplines(RunDir(copy)) == ["physics"]
        with pytest.raises(UsageError, match="out of date for physics"):
            publish_run(copy, tmp_path / "never", quiet=True)
    assert not (tmp_path / "never").exists()


def test_an_interrupted_rerun_with_other_settings_is_refused(run: Path, files: list[Path], tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):  # disciplines run in order: chemistry done, physics not
        decontaminate_run(run, _settings(files, threshold=0.9), progress=_stop_at("physics"))
    # chemistry's clean file is of the new settings, physics' and the report of the old: never one dataset
    assert stale_clean_disciplines(RunDir(run)) == ["chemistry"]
    with pytest.raises(UsageError, match="out of date for chemistry"):
        publish_run(run, tmp_path / "never", quiet=True)

    # a partial re-run (--disciplines) with other settings does not vouch for the other discipline either
    decontaminate_run(run, _settings(files, threshold=0.9), ["chemistry"])
    assert stale_clean_disciplines(RunDir(run)) == ["physics"]
    decontaminate_run(run, _settings(files, threshold=0.9))
    assert stale_clean_disciplines(RunDir(run)) == []


def test_clean_files_made_with_another_benchmark_set_are_stale(run: Path, files: list[Path], tmp_path: Path) -> None:
    extra = tmp_path / "more.jsonl"
    extra.write_text(json.dumps({"question": "An entirely new benchmark question about pendulums."}) + "\n")
    settings = _settings([*files, extra])
    with pytest.raises(KeyboardInterrupt):
        decontaminate_run(run, settings, progress=_stop_at("physics"))
    assert stale_clean_disciplines(RunDir(run)) == ["chemistry"]


def test_corrupt_report_and_clean_files_are_one_line_errors(run: Path, files: list[Path], tmp_path: Path) -> None:
    rundir = RunDir(run)
    good = rundir.decontamination_report.read_text()
    rundir.decontamination_report.write_text(good[: len(good) // 2])
    for action in (
        lambda: publish_run(run, tmp_path / "out", quiet=True),
        lambda: decontaminate_run(run, _settings(files), ["physics"]),
    ):
        with pytest.raises(UsageError) as error:
            action()
        text = str(error.value)
        assert "\n" not in text and str(rundir.decontamination_report) in text and "glan decontaminate" in text
    decontaminate_run(run, _settings(files))  # a full run replaces it
    assert stale_clean_disciplines(rundir) == []

    rundir.decontamination_removed.write_bytes(b"not parquet")
    with pytest.raises(UsageError, match="removed.parquet.*without --disciplines"):
        decontaminate_run(run, _settings(files), ["physics"])

    rundir.clean_file("chemistry").write_bytes(b"PAR1 truncated")
    with pytest.raises(UsageError) as error:
        stale_clean_disciplines(rundir)
    assert str(rundir.clean_file("chemistry")) in str(error.value) and "glan decontaminate" in str(error.value)


def test_cli_exit_2_and_one_line_for_a_corrupt_report(run: Path, tmp_path: Path) -> None:
    RunDir(run).decontamination_report.write_text("{not json")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "300"}
    result = subprocess.run(
        [sys.executable, "-m", "glan_dataset", "publish", str(run), "--to", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "report.json" in result.stderr and "glan decontaminate" in result.stderr


def test_stale_check_reads_no_mtime(run: Path) -> None:
    rundir = RunDir(run)
    os.utime(rundir.clean_file("physics"), (0, 0))  # clean file 'older' than its records
    assert stale_clean_disciplines(rundir) == []
    frame = pl.read_parquet(rundir.records_file("chemistry"))
    frame.head(1).write_parquet(rundir.records_file("chemistry"))  # same mtime order, other content
    os.utime(rundir.records_file("chemistry"), (0, 0))
    assert stale_clean_disciplines(rundir) == ["chemistry"]
