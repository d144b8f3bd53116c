"""The response cache when several processes share a run directory (shards, parallel configs)."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from pathlib import Path

from glan_dataset.llm.cache import CachedResponse, ResponseCache


def _open_at(path: str, start: float) -> None:
    while time.time() < start:  # every process opens the new database at the same instant
        pass
    ResponseCache(path).close()


def test_processes_opening_one_new_cache_at_once_all_succeed(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    for trial in range(40):
        path = str(tmp_path / f"cache-{trial}.sqlite")
        start = time.time() + 0.15
        processes = [context.Process(target=_open_at, args=(path, start)) for _ in range(8)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=60)
        assert [process.exitcode for process in processes] == [0] * 8


def test_lookup_ignoring_params_sees_buffered_rows_without_committing_them(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    cache = ResponseCache(path, group=100)
    try:
        assert cache.get_ignoring_params("p") is None
        cache.put("k1", "p", "answers", "m", "first", 1, 1)
        cache.put("k2", "p", "answers", "m", "second", 2, 2)
        cache.put("k3", "other", "answers", "m", "third", 3, 3)
        assert cache.get_ignoring_params("p") == CachedResponse("second", "m", 2, 2)
        assert cache.pending == 3  # --cache-ignore-params looks up every miss: a commit each would undo the groups
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 0
        cache.flush()
        assert cache.get_ignoring_params("p") == CachedResponse("second", "m", 2, 2)
    finally:
        cache.close()


def test_lookup_ignoring_params_answers_as_if_the_buffer_were_committed(tmp_path: Path) -> None:
    """A buffered row replaces the committed row with its key, even one another process dated later."""
    path = tmp_path / "cache.sqlite"
    cache = ResponseCache(path, group=100)
    try:
        with sqlite3.connect(path) as db:  # another process, its clock ahead
            rows = [
                ("k0", "p", "s", "m", "older elsewhere", 0, 0, 0, 4e9),
                ("k1", "p", "s", "m", "stale", 0, 0, 0, 5e9),
            ]
            db.executemany("INSERT INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        cache.put("k1", "p", "answers", "m", "replacing", 1, 1)  # k1 dated now once committed: k0 is the newest
        assert cache.get_ignoring_params("p") == CachedResponse("older elsewhere", "m", 0, 0)
        cache.flush()
        assert cache.get_ignoring_params("p") == CachedResponse("older elsewhere", "m", 0, 0)
        assert cache.get("k1") == CachedResponse("replacing", "m", 1, 1)
        cache.put("k2", "p", "answers", "m", "newest", 2, 2)
        cache.put("k0", "p", "answers", "m", "k0 again", 3, 3)
        assert cache.get_ignoring_params("p") == CachedResponse("k0 again", "m", 3, 3)
        cache.flush()
        assert cache.get_ignoring_params("p") == CachedResponse("k0 again", "m", 3, 3)
    finally:
        cache.close()
