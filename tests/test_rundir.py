"""Atomic writes: a target is replaced whole or not at all, and looks like any file the user makes."""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from glan_dataset.rundir import atomic_path, write_text_atomic


def test_failed_write_leaves_the_old_target_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "stage" / "physics.parquet"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["physics.parquet"]


def test_written_file_has_the_permissions_of_an_ordinary_file(tmp_path: Path) -> None:
    mask = os.umask(0o027)
    try:
        write_text_atomic(tmp_path / "run.json", "{}")
        (tmp_path / "plain.txt").write_text("{}")
    finally:
        os.umask(mask)
    mode = stat.S_IMODE((tmp_path / "run.json").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == 0o640


def test_threads_writing_at_once_each_get_their_own_whole_file(tmp_path: Path) -> None:
    def write(i: int) -> None:
        write_text_atomic(tmp_path / f"{i % 8}.txt", str(i) * 10_000)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(64)))
    for path in tmp_path.iterdir():  # one writer's content whole, never a mix; no temporary left
        text = path.read_text()
        assert path.suffix == ".txt" and len(set(text)) <= 2 and text == text[: len(text) // 10_000] * 10_000
