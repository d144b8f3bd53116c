"""The response cache: one SQLite file per run (RUN/llm-cache.sqlite), WAL mode.

Why SQLite in WAL with synchronous=NORMAL: a committed row survives kill -9 of the process (WAL
frames are in the OS page cache). Responses are committed in small groups (``put`` buffers, ``flush``
writes the group in one transaction): one transaction per response was ~17% of the engine's CPU at
a thousand calls a second. The owner flushes when a group is full, on a short timer and when a
stream ends, so a kill -9 loses at most the calls in flight plus one group; a lookup sees buffered
rows. Keys are content hashes that never include the endpoint URL or the API key, so a run can move
between providers and replay everything it already paid for.

Why this layout (``PRAGMA user_version`` 2): ``responses`` is a rowid table with a unique index on
``key``. Before it (user_version 0) the table was WITHOUT ROWID, keyed by the hex hash, so every
insert put its ~1 KB row into a random page of the B-tree that holds all the text, and every commit
rewrote, and wrote to the WAL, one big random page per response. Now rows are appended in rowid order
and only the key index (~100-byte entries) takes a random page. The ``pkey`` index, needed only by
``--cache-ignore-params``, costs another random page per response: the first lookup that needs it
builds it (1.2 s for 460k rows), so a run that never ignores parameters never pays for it. Keys stay
hex TEXT: raw 32-byte BLOB keys measured no faster past 100k rows. ``bench/cache.py``, CPU µs per
call (a ``get`` that misses, then a ``put`` of 600 bytes; commits of 64), one run on 2 shared cores:

    rows in the table            0     100k    400k
    user_version 0             86.5   115.0   118.6
    user_version 2             26.1    39.3    40.8
    2, with the pkey index     36.0    64.5    73.2

A cache in the older layout is converted when it is opened, once, in one transaction (``_upgrade``:
1.8 s for 100k rows); ``absorb`` reads either layout.
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from glan_dataset.errors import UsageError
from glan_dataset.llm.cost import UsageEntry

# Per connection: a 16 MiB page cache (not 2) keeps more of the key index, and a checkpoint every 4,000
# pages (not 1,000) copies a page rewritten by several groups to the file once: 39.5 against 49.9 µs per
# get-miss + put at 100k rows, the same at 300k (64 MiB and 10,000 pages measured no better).
_PRAGMAS = ("PRAGMA synchronous=NORMAL", "PRAGMA cache_size=-16384", "PRAGMA wal_autocheckpoint=4000")
LAYOUT = 2  # PRAGMA user_version of the layout below; 0 = the WITHOUT ROWID layout before it (migrated on open)
_RESPONSE_COLUMNS = "key, pkey, stage, model, text, prompt_tokens, completion_tokens, batch, created"
_RESPONSES = """
CREATE TABLE responses (
    key TEXT NOT NULL,               -- sha256 of the full request (with sampling parameters)
    pkey TEXT NOT NULL,              -- sha256 without temperature/top_p/max_tokens (--cache-ignore-params)
    stage TEXT NOT NULL,
    model TEXT NOT NULL,             -- the model that answered, as the endpoint named it
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    batch INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
)"""
_KEY_INDEX = "CREATE UNIQUE INDEX responses_key ON responses(key)"
# Built by the first get_ignoring_params (--cache-ignore-params), not before: each index on a random hash
# dirties one more page per response (see the module docstring).
_PKEY_INDEX = "CREATE INDEX IF NOT EXISTS responses_pkey ON responses(pkey)"
_USAGE_TABLE = """
CREATE TABLE IF NOT EXISTS usage (
    stage TEXT NOT NULL,
    model TEXT NOT NULL,
    batch INTEGER NOT NULL,
    calls INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (stage, model, batch)
) WITHOUT ROWID"""

_INSERT = f"INSERT OR REPLACE INTO responses ({_RESPONSE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_USAGE = (
    "INSERT INTO usage (stage, model, batch, calls, prompt_tokens, completion_tokens, reasoning_tokens)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (stage, model, batch) DO UPDATE SET calls = calls + excluded.calls,"
    " prompt_tokens = prompt_tokens + excluded.prompt_tokens,"
    " completion_tokens = completion_tokens + excluded.completion_tokens,"
    " reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens"
)


_USAGE_COLUMNS = "stage, model, batch, calls, prompt_tokens, completion_tokens"
_ADD_USAGE = (
    f"INSERT INTO usage ({_USAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (stage, model, batch) DO UPDATE SET"
    " calls = calls + excluded.calls, prompt_tokens = prompt_tokens + excluded.prompt_tokens,"
    " completion_tokens = completion_tokens + excluded.completion_tokens"
)
UsageRow = tuple[str, str, int, int, int, int]  # stage, model, batch, calls, prompt tokens, completion tokens


class CachedResponse(NamedTuple):
    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def cache_keys(
    model: str,
    messages: list[dict[str, str]],
    temperature: float | None,
    top_p: float | None,
    max_tokens: int | None,
    schema_json: str | None,
    sample_index: int,
) -> tuple[str, str]:
    """(key, param-free key). The schema enters as its canonical JSON text (the class name does not matter)."""
    base: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "response_schema": schema_json,
        "sample_index": sample_index,
    }
    pkey = hashlib.sha256(canonical_json(base).encode()).hexdigest()
    base.update(temperature=temperature, top_p=top_p, max_tokens=max_tokens)
    key = hashlib.sha256(canonical_json(base).encode()).hexdigest()
    return key, pkey


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_encode_str: Any = getattr(json.encoder, "c_encode_basestring", None) or json.encoder.py_encode_basestring


def scalar_json(value: Any) -> str:
    """``json.dumps(value, ensure_ascii=False)`` for a str, int, float, bool or None, without the
    encoder's machinery (a dozen of these per request add up at a thousand requests a second)."""
    if value is None:
        return "null"
    kind = type(value)
    if kind is str:
        return _encode_str(value)
    if kind is float:
        # json writes a finite float as float.__repr__; nan/inf spelled as json does
        return float.__repr__(value) if value - value == 0.0 else _encode(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    return _encode(value)


def cache_keys_encoded(
    model: str,
    messages_json: str,
    temperature: float | None,
    top_p: float | None,
    max_tokens: int | None,
    schema_field: str,
    sample_index: int,
) -> tuple[str, str]:
    """``cache_keys`` from pre-encoded parts, byte for byte the same canonical JSON (the keys of a
    sorted dict are concatenated in order), without encoding the messages twice. ``messages_json``
    is ``canonical_json(messages)``; ``schema_field`` is ``_encode(schema_json)`` ("null" without)."""
    core = (
        f'"messages":{messages_json},"model":{scalar_json(model)},"response_schema":{schema_field},'
        f'"sample_index":{scalar_json(sample_index)}'
    )
    pkey = hashlib.sha256(("{" + core + "}").encode()).hexdigest()
    full = (
        f'{{"max_tokens":{scalar_json(max_tokens)},{core},"temperature":{scalar_json(temperature)},'
        f'"top_p":{scalar_json(top_p)}}}'
    )
    key = hashlib.sha256(full.encode()).hexdigest()
    return key, pkey


def _execute_when_unlocked(db: sqlite3.Connection, statement: str, wait: float) -> None:
    """``statement``, tried again for up to ``wait`` seconds while SQLite answers "database is locked"
    (some locks are refused at once, without the busy handler)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            db.execute(statement)
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.02 + random.random() * 0.08)


def _enable_wal(db: sqlite3.Connection) -> None:
    """Switch to WAL. SQLite answers "database is locked" at once, without its busy handler, while
    another process opening the same new database (two shards in one run directory) holds a lock:
    retry for up to 10 s."""
    _execute_when_unlocked(db, "PRAGMA journal_mode=WAL", wait=10.0)


def _begin_immediate(db: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, waiting up to 600 s: another process may be migrating a large cache (each
    attempt already waits the busy timeout)."""
    _execute_when_unlocked(db, "BEGIN IMMEDIATE", wait=600.0)


def _upgrade(db: sqlite3.Connection, path: Path) -> None:
    """Create the tables of a new cache, or convert one written before ``LAYOUT`` (a WITHOUT ROWID
    ``responses``), in one transaction: every row is kept, ``usage`` is left as it is (a column added
    at most). The layout is checked again under the write lock, so when several processes open one
    old cache at once the first converts it and the others find it converted."""
    _begin_immediate(db)
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > LAYOUT:
            raise UsageError(
                f"{path} was written by a newer glan-dataset (cache layout {version}, this one reads {LAYOUT}):"
                " upgrade glan-dataset to use it"
            )
        if version < LAYOUT:
            columns = {row[1] for row in db.execute("PRAGMA table_info(responses)")}
            if not columns:
                db.execute(_RESPONSES)
            elif columns >= set(_RESPONSE_COLUMNS.split(", ")):
                db.execute("ALTER TABLE responses RENAME TO responses_before")
                db.execute("DROP INDEX IF EXISTS responses_pkey")
                db.execute("DROP INDEX IF EXISTS responses_key")
                db.execute(_RESPONSES)
                db.execute(
                    f"INSERT INTO responses ({_RESPONSE_COLUMNS}) SELECT {_RESPONSE_COLUMNS} FROM responses_before"
                )
                db.execute("DROP TABLE responses_before")
            else:
                raise UsageError(
                    f"{path} has a 'responses' table that is not a glan-dataset response cache: move it aside to"
                    " start a new cache, or point --out at the run directory it belongs to"
                )
            db.execute(_KEY_INDEX)
            db.execute(_USAGE_TABLE)
            usage = {row[1] for row in db.execute("PRAGMA table_info(usage)")}
            if "reasoning_tokens" not in usage:  # a cache written before reasoning tokens were counted
                db.execute("ALTER TABLE usage ADD COLUMN reasoning_tokens INTEGER NOT NULL DEFAULT 0")
            db.execute(f"PRAGMA user_version={LAYOUT}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class ResponseCache:
    """Reads and writes happen on the event-loop thread: each is a few tens of microseconds."""

    def __init__(self, path: str | Path, *, group: int = 1) -> None:
        """``group``: responses buffered before a commit (1 = commit each ``put`` at once)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
        try:
            db.execute("PRAGMA busy_timeout=30000")
            _enable_wal(db)
            for pragma in _PRAGMAS:
                db.execute(pragma)
            if db.execute("PRAGMA user_version").fetchone()[0] != LAYOUT:
                _upgrade(db, path)
        except sqlite3.DatabaseError as error:  # not a database, or a damaged one: never replaced silently
            db.close()
            raise UsageError(
                f"{path} cannot be used as the response cache ({error}): restore it from a copy, or move it aside "
                "to start a new cache (calls answered before will be paid again)"
            ) from None
        except BaseException:
            db.close()
            raise
        self._db = db
        self.group = group
        self._pkey_indexed = False
        self._pending: dict[str, tuple[Any, ...]] = {}
        self._pending_usage: dict[tuple[str, str, int], list[int]] = {}

    def get(self, key: str) -> CachedResponse | None:
        pending = self._pending.get(key)
        if pending is not None:
            return CachedResponse(pending[4], pending[3], pending[5], pending[6])
        row = self._db.execute(
            "SELECT text, model, prompt_tokens, completion_tokens FROM responses WHERE key = ?", (key,)
        ).fetchone()
        return CachedResponse(*row) if row else None

    def get_ignoring_params(self, pkey: str) -> CachedResponse | None:
        """The newest response to this request whatever its temperature, top_p and max_tokens, buffered
        or committed. The buffer is not committed for it: with --cache-ignore-params this runs on every miss."""
        if not self._pkey_indexed:  # once per process; about a second for half a million responses
            self._db.execute(_PKEY_INDEX)
            self._pkey_indexed = True
        pending = self._pending
        found = [row for row in pending.values() if row[1] == pkey] if pending else []
        query = (
            "SELECT key, pkey, stage, model, text, prompt_tokens, completion_tokens, batch, created FROM responses"
            " WHERE pkey = ? ORDER BY created DESC LIMIT ?"
        )
        for row in self._db.execute(query, (pkey, len(found) + 1)):
            if row[0] not in pending:  # else a buffered row (in ``found``) replaces it
                found.append(row)
                break
        if not found:
            return None
        newest = max(found, key=lambda row: row[8])
        return CachedResponse(newest[4], newest[3], newest[5], newest[6])

    @property
    def pending(self) -> int:
        """Responses buffered and not yet committed."""
        return len(self._pending)

    def put(
        self,
        key: str,
        pkey: str,
        stage: str,
        model: str,
        text: str,
        prompt_tokens: int,
        completion_tokens: int,
        *,
        batch: bool = False,
        usage_model: str | None = None,
        reasoning_tokens: int = 0,
    ) -> None:
        """Buffer the response and its tokens; ``flush`` commits them together (see the module docstring)."""
        self._pending[key] = (key, pkey, stage, model, text, prompt_tokens, completion_tokens, int(batch), time.time())
        self._add(stage, usage_model or model, batch, 1, prompt_tokens, completion_tokens, reasoning_tokens)
        if len(self._pending) >= self.group:
            self.flush()

    def add_usage(
        self,
        stage: str,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        *,
        batch: bool = False,
        reasoning_tokens: int = 0,
    ) -> None:
        """Tokens paid for without a cached response (a reply truncated, refused or invalid)."""
        self._add(stage, model, batch, 1, prompt_tokens, completion_tokens, reasoning_tokens)

    def _add(
        self, stage: str, model: str, batch: bool, calls: int, prompt: int, completion: int, reasoning: int
    ) -> None:
        key = (stage, model, int(batch))
        old = self._pending_usage.get(key)
        if old is None:
            self._pending_usage[key] = [calls, prompt, completion, reasoning]
        else:
            old[0] += calls
            old[1] += prompt
            old[2] += completion
            old[3] += reasoning

    def flush(self) -> None:
        """Commit the buffered responses and usage in one transaction."""
        if not self._pending and not self._pending_usage:
            return
        rows, usage = list(self._pending.values()), self._pending_usage
        self._pending = {}
        self._pending_usage = {}
        db = self._db
        db.execute("BEGIN")
        try:
            db.executemany(_INSERT, rows)
            db.executemany(_USAGE, [(*key, *values) for key, values in usage.items()])
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def usage_totals(self) -> dict[tuple[str, str], UsageEntry]:
        self.flush()
        totals: dict[tuple[str, str], UsageEntry] = {}
        query = f"SELECT {_USAGE_COLUMNS}, reasoning_tokens FROM usage"
        for stage, model, batch, calls, prompt, completion, reasoning in self._db.execute(query):
            entry = totals.setdefault((stage, model), UsageEntry())
            entry.reasoning_tokens += reasoning
            if batch:
                entry.batch_calls += calls
                entry.batch_prompt_tokens += prompt
                entry.batch_completion_tokens += completion
            else:
                entry.calls += calls
                entry.prompt_tokens += prompt
                entry.completion_tokens += completion
        return totals

    def absorb(self, other: str | Path, counted: Sequence[UsageRow] = ()) -> tuple[int, list[UsageRow]]:
        """Add another run's cache (``glan merge-runs``): its responses (keys already here are kept)
        and its usage beyond ``counted``, what an earlier absorb of it already added. Returns the
        responses added and the other cache's usage now (to pass as ``counted`` next time)."""
        self.flush()
        db = self._db
        db.execute("ATTACH DATABASE ? AS other", (str(other),))
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                before = db.total_changes
                db.execute(
                    f"INSERT OR IGNORE INTO main.responses ({_RESPONSE_COLUMNS})"
                    f" SELECT {_RESPONSE_COLUMNS} FROM other.responses"
                )
                added = db.total_changes - before
                now: list[UsageRow] = [tuple(row) for row in db.execute(f"SELECT {_USAGE_COLUMNS} FROM other.usage")]
                seen = {row[:3]: row[3:] for row in counted}
                for stage, model, batch, calls, prompt, completion in now:
                    old_calls, old_prompt, old_completion = seen.get((stage, model, batch), (0, 0, 0))
                    delta = (calls - old_calls, prompt - old_prompt, completion - old_completion)
                    if any(delta):
                        db.execute(_ADD_USAGE, (stage, model, batch, *delta))
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.execute("DETACH DATABASE other")
        return added, now

    def has_keys(self, keys: Iterable[str]) -> set[str]:
        """Which of these keys are cached (batch mode checks a whole chunk at once)."""
        self.flush()
        found: set[str] = set()
        chunk: list[str] = []
        for key in keys:
            chunk.append(key)
            if len(chunk) == 500:
                found.update(self._has(chunk))
                chunk = []
        if chunk:
            found.update(self._has(chunk))
        return found

    def _has(self, chunk: list[str]) -> list[str]:
        marks = ",".join("?" * len(chunk))
        return [row[0] for row in self._db.execute(f"SELECT key FROM responses WHERE key IN ({marks})", chunk)]

    def count(self) -> int:
        self.flush()
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._db.close()
