"""The response cache's on-disk layout: caches written before the rowid layout (``responses``
WITHOUT ROWID) open, are converted once, lose nothing, and can still be merged from."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from pathlib import Path

import pytest

from glan_dataset.errors import UsageError
from glan_dataset.llm.cache import LAYOUT, CachedResponse, ResponseCache
from glan_dataset.llm.cost import UsageEntry

# The layout every cache had before PRAGMA user_version 2, as that code created it.
OLD_DDL = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    pkey TEXT NOT NULL,
    stage TEXT NOT NULL,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    batch INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS responses_pkey ON responses(pkey);
CREATE TABLE IF NOT EXISTS usage (
    stage TEXT NOT NULL,
    model TEXT NOT NULL,
    batch INTEGER NOT NULL,
    calls INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (stage, model, batch)
) WITHOUT ROWID;
"""


def _row(i: int) -> tuple[str, str, str, str, str, int, int, int, float]:
    # two responses per pkey (the newer one is what --cache-ignore-params replays)
    return (f"{i:064x}", f"p{i // 2:063x}", "answers", f"model-{i % 3}", f"text {i} " * 40, i, 2 * i, i % 2, 1000.0 + i)


def _cached(i: int) -> CachedResponse:
    _, _, _, model, text, prompt, completion, _, _ = _row(i)
    return CachedResponse(text, model, prompt, completion)


def _old_cache(path: Path, rows: int, usage_reasoning: bool = True) -> None:
    """A cache file exactly as the code before the rowid layout wrote it (WAL, user_version 0)."""
    ddl = OLD_DDL if usage_reasoning else OLD_DDL.replace("    reasoning_tokens INTEGER NOT NULL DEFAULT 0,\n", "")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(ddl)
    db.execute("BEGIN")
    db.executemany("INSERT INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (_row(i) for i in range(rows)))
    usage = [
        ("answers", "model-0", 0, 7, 700, 1400),
        ("answers", "model-0", 1, 3, 300, 600),
        ("topics", "m", 0, 1, 5, 9),
    ]
    db.executemany(
        "INSERT INTO usage (stage, model, batch, calls, prompt_tokens, completion_tokens) VALUES (?, ?, ?, ?, ?, ?)",
        usage,
    )
    if usage_reasoning:
        db.execute("UPDATE usage SET reasoning_tokens = 11 WHERE stage = 'topics'")
    db.execute("COMMIT")
    db.close()


def _layout(path: Path) -> tuple[int, str]:
    with sqlite3.connect(path) as db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'responses'").fetchone()[0]
    return version, sql


def _names(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master")}


def _expected_usage(reasoning: bool = True) -> dict[tuple[str, str], UsageEntry]:
    return {
        ("answers", "model-0"): UsageEntry(
            calls=7, prompt_tokens=700, completion_tokens=1400, batch_calls=3, batch_prompt_tokens=300,
            batch_completion_tokens=600,
        ),
        ("topics", "m"): UsageEntry(calls=1, prompt_tokens=5, completion_tokens=9, reasoning_tokens=11 if reasoning else 0),
    }  # fmt: skip


def _assert_every_row(cache: ResponseCache, rows: int) -> None:
    assert cache.count() == rows
    for i in range(rows):
        assert cache.get(f"{i:064x}") == _cached(i)
    newest = _row(3)  # rows 2 and 3 share a pkey; 3 is newer
    assert cache.get_ignoring_params(newest[1]) == CachedResponse(newest[4], newest[3], newest[5], newest[6])
    assert cache.has_keys([f"{i:064x}" for i in range(rows + 5)]) == {f"{i:064x}" for i in range(rows)}


@pytest.mark.parametrize("usage_reasoning", [True, False])
def test_an_old_layout_cache_is_converted_once_with_every_row_and_its_usage(tmp_path: Path, usage_reasoning) -> None:
    path = tmp_path / "llm-cache.sqlite"
    _old_cache(path, 1001, usage_reasoning)
    assert _layout(path)[0] == 0
    cache = ResponseCache(path, group=4)
    try:
        version, sql = _layout(path)
        assert version == LAYOUT and "WITHOUT ROWID" not in sql.upper()
        assert _names(path) == {"responses", "responses_key", "usage"}
        _assert_every_row(cache, 1001)
        assert cache.usage_totals() == _expected_usage(usage_reasoning)
        cache.put("f" * 64, "e" * 64, "answers", "model-0", "new", 1, 2)  # the converted cache takes new rows
        cache.put(f"{5:064x}", "e" * 64, "answers", "model-9", "replaced", 3, 4)  # and replaces an old key
    finally:
        cache.close()
    assert _names(path) == {"responses", "responses_key", "responses_pkey", "usage"}  # pkey index: built by use
    again = ResponseCache(path)
    try:
        assert again.count() == 1002
        assert again.get("f" * 64) == CachedResponse("new", "model-0", 1, 2)
        assert again.get(f"{5:064x}") == CachedResponse("replaced", "model-9", 3, 4)
        assert again.get_ignoring_params("e" * 64) == CachedResponse("replaced", "model-9", 3, 4)
        assert again.usage_totals()[("answers", "model-0")].calls == 7 + 1
    finally:
        again.close()


def _open_and_put(path: str, start: float, worker: int) -> None:
    while time.time() < start:  # every process opens the old cache at the same instant
        pass
    cache = ResponseCache(path)
    cache.put(f"worker-{worker}", "p", "answers", "m", f"from {worker}", 1, 1)
    cache.close()


@pytest.mark.parametrize("rows", [50, 20_000])
def test_processes_opening_one_old_cache_at_once_convert_it_once_and_lose_nothing(tmp_path: Path, rows: int) -> None:
    context = multiprocessing.get_context("fork")
    for trial in range(8 if rows < 1000 else 2):
        path = tmp_path / f"cache-{trial}.sqlite"
        _old_cache(path, rows)
        start = time.time() + 0.15
        processes = [context.Process(target=_open_and_put, args=(str(path), start, n)) for n in range(4)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=120)
        assert [process.exitcode for process in processes] == [0] * 4
        assert _layout(path)[0] == LAYOUT
        cache = ResponseCache(path)
        try:
            assert cache.count() == rows + 4
            assert {cache.get(f"worker-{n}").text for n in range(4)} == {f"from {n}" for n in range(4)}  # type: ignore[union-attr]
            assert cache.get(f"{rows - 1:064x}") == _cached(rows - 1)
            assert cache.usage_totals()[("answers", "m")].calls == 4
        finally:
            cache.close()


def test_absorb_reads_an_old_layout_cache_without_converting_it(tmp_path: Path) -> None:
    source = tmp_path / "source.sqlite"
    _old_cache(source, 300)
    before = source.read_bytes()
    target = ResponseCache(tmp_path / "target.sqlite")
    try:
        target.put(f"{7:064x}", "x", "answers", "mine", "kept", 1, 1)  # a key already here is kept
        added, now = target.absorb(source)
        assert added == 299
        assert sorted(now) == sorted(
            [
                ("answers", "model-0", 0, 7, 700, 1400),
                ("answers", "model-0", 1, 3, 300, 600),
                ("topics", "m", 0, 1, 5, 9),
            ]
        )
        assert target.count() == 300
        assert target.get(f"{7:064x}") == CachedResponse("kept", "mine", 1, 1)
        assert target.get(f"{8:064x}") == _cached(8)
        assert target.absorb(source, now) == (0, now)  # absorbed twice: nothing added twice
    finally:
        target.close()
    assert _layout(source)[0] == 0 and source.read_bytes() == before  # the source is only read


def test_absorb_reads_a_new_layout_cache(tmp_path: Path) -> None:
    source = ResponseCache(tmp_path / "source.sqlite")
    source.put("a" * 64, "b" * 64, "answers", "m", "hello", 2, 3)
    source.close()
    target = ResponseCache(tmp_path / "target.sqlite")
    try:
        assert target.absorb(tmp_path / "source.sqlite")[0] == 1
        assert target.get("a" * 64) == CachedResponse("hello", "m", 2, 3)
        assert target.get_ignoring_params("b" * 64) == CachedResponse("hello", "m", 2, 3)
    finally:
        target.close()


def test_a_cache_from_a_newer_layout_is_one_line_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "llm-cache.sqlite"
    ResponseCache(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version={LAYOUT + 1}")
    with pytest.raises(UsageError, match="newer glan-dataset"):
        ResponseCache(path)
    assert _layout(path)[0] == LAYOUT + 1


def test_a_foreign_database_or_file_is_one_line_and_left_alone(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE responses (id INTEGER PRIMARY KEY, body TEXT)")
        db.execute("INSERT INTO responses (body) VALUES ('theirs')")
    with pytest.raises(UsageError, match="not a glan-dataset response cache"):
        ResponseCache(foreign)
    with sqlite3.connect(foreign) as db:
        assert db.execute("SELECT body FROM responses").fetchall() == [("theirs",)]
        assert db.execute("PRAGMA user_version").fetchone()[0] == 0
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not an SQLite database" * 100)
    with pytest.raises(UsageError, match="cannot be used as the response cache"):
        ResponseCache(garbage)
    assert garbage.read_bytes() == b"this is not an SQLite database" * 100


def test_the_pkey_index_is_built_by_the_first_lookup_ignoring_params_while_another_cache_writes(tmp_path: Path) -> None:
    path = tmp_path / "llm-cache.sqlite"
    writer, reader = ResponseCache(path), ResponseCache(path)
    try:
        writer.put("k1", "p", "answers", "m", "first", 1, 1)
        assert "responses_pkey" not in _names(path)  # a run that never ignores parameters never pays for it
        assert reader.get_ignoring_params("p") == CachedResponse("first", "m", 1, 1)
        assert "responses_pkey" in _names(path)
        writer.put("k2", "p", "answers", "m", "second", 2, 2)  # the other connection's inserts keep it up to date
        assert reader.get_ignoring_params("p") == CachedResponse("second", "m", 2, 2)
        with sqlite3.connect(path) as db:
            plan = " ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN SELECT * FROM responses WHERE pkey = 'p'"))
            assert "responses_pkey" in plan
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        writer.close()
        reader.close()
