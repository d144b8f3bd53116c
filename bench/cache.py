"""CPU per call of the response cache, the layout before PRAGMA user_version 2 beside the current one,
in one run, at a few table sizes; and the time to convert an old cache when it is opened.

    .venv/bin/python bench/cache.py                          # 20,000 calls at 0, 100k and 400k rows
    .venv/bin/python bench/cache.py --sizes 0,50000 --calls 5000 --migrate-rows 20000

A call is what the engine does for a request the cache has not seen: one ``get`` that misses, then
one ``put`` (answers of ~600 bytes of text, committed in groups of 64: the engine commits every
``EngineConfig.commit_every`` (256) answers or every 0.1 s, whichever comes first, so busy runs commit
smaller groups than 256). A hit is one ``get`` of a random cached key. Both are process CPU time over
the calls (so SQLite's page writes and WAL checkpoints count), in microseconds per call. The old layout runs through
the same ``ResponseCache`` methods on a connection opened the old way (its DDL and pragmas), so only
the layout and pragmas differ. At each size the table is first filled in bulk (not timed) to exactly
that many rows (plus the calls timed before), and the old and new caches are measured one after the other.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # measure the tree this file is in, not an installed copy of glan_dataset

from glan_dataset.llm.cache import ResponseCache  # noqa: E402

OLD_DDL = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY, pkey TEXT NOT NULL, stage TEXT NOT NULL, model TEXT NOT NULL, text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, batch INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS responses_pkey ON responses(pkey);
CREATE TABLE IF NOT EXISTS usage (
    stage TEXT NOT NULL, model TEXT NOT NULL, batch INTEGER NOT NULL, calls INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (stage, model, batch)
) WITHOUT ROWID;
"""
COLUMNS = "key, pkey, stage, model, text, prompt_tokens, completion_tokens, batch, created"
WORDS = (
    "the of and to in is that for it as was with be by on not this are or from at which but have an they you "
    "energy force mass velocity theorem proof integral matrix vector function equation system value example"
).split()


class OldLayout(ResponseCache):
    """``ResponseCache`` on a file opened as the code before layout 2 opened it (WITHOUT ROWID, default
    page cache and checkpoints): the methods timed are the same, only the layout and pragmas differ."""

    def __init__(self, path: Path, *, group: int) -> None:
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(OLD_DDL)
        self.group = group
        self._pkey_indexed = True
        self._pending = {}
        self._pending_usage = {}


def digest(kind: str, n: int) -> str:
    return hashlib.sha256(f"{kind}{n}".encode()).hexdigest()


def texts(count: int, size: int) -> list[str]:
    draw = random.Random(0)
    return [" ".join(draw.choice(WORDS) for _ in range(size // 4))[:size] for _ in range(count)]


def fill(path: Path, start: int, stop: int, answers: list[str]) -> None:
    """Rows start..stop-1 in one transaction, through a connection of its own (both layouts have these columns)."""
    db = sqlite3.connect(path, isolation_level=None, timeout=60.0)
    db.execute("BEGIN IMMEDIATE")
    rows = (
        (digest("k", n), digest("p", n), "answers", "model", answers[n % len(answers)], 50, 150, 0, time.time())
        for n in range(start, stop)
    )
    db.executemany(f"INSERT INTO responses ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def misses(cache: ResponseCache, first: int, calls: int, answers: list[str]) -> float:
    """CPU µs per call of a get that misses then a put (keys never seen: first..first+calls-1)."""
    keys = [(digest("k", n), digest("p", n)) for n in range(first, first + calls)]
    start = time.process_time()
    for n, (key, pkey) in enumerate(keys):
        if cache.get(key) is not None:
            raise SystemExit(f"bench bug: {key} was cached")
        cache.put(key, pkey, "answers", "model", answers[n % len(answers)], 50, 150)
    cache.flush()
    return (time.process_time() - start) / calls * 1e6


def hits(cache: ResponseCache, rows: int, first: int, calls: int) -> float:
    """CPU µs per get of a random cached key: a filled row (0..rows-1) or one of the calls just timed."""
    draw = random.Random(1)
    picks = (draw.randrange(rows + calls) for _ in range(calls))
    keys = [digest("k", n if n < rows else first + n - rows) for n in picks]
    start = time.process_time()
    for key in keys:
        if cache.get(key) is None:
            raise SystemExit(f"bench bug: {key} was not cached")
    return (time.process_time() - start) / calls * 1e6


def migration(directory: Path, rows: int, answers: list[str]) -> tuple[float, float, int]:
    """Wall and CPU seconds of opening an old cache of ``rows`` rows (the conversion), and its rows after."""
    path = directory / "migrate.sqlite"
    OldLayout(path, group=1).close()
    fill(path, 0, rows, answers)
    wall, cpu = time.perf_counter(), time.process_time()
    cache = ResponseCache(path)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    count = cache.count()
    cache.close()
    return wall, cpu, count


LAYOUTS = {
    "old": "layout 0 (WITHOUT ROWID, key and pkey indexes)",
    "new": "layout 2 (rowid, key index)",
    "new+pkey": "layout 2 with the pkey index (built by a first --cache-ignore-params lookup)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0,100000,400000", help="rows in the table before each measurement")
    parser.add_argument("--calls", type=int, default=20_000, help="calls timed at each size, per layout")
    parser.add_argument("--rounds", type=int, default=4, help="the calls split in rounds, layouts taking turns")
    parser.add_argument("--group", type=int, default=64, help="responses per commit (EngineConfig.commit_every)")
    parser.add_argument("--text-bytes", type=int, default=600, help="length of each cached answer")
    parser.add_argument("--migrate-rows", type=int, default=100_000, help="rows of the old cache converted (0: skip)")
    parser.add_argument("--dir", type=Path, default=None, help="where the cache files go (default: a temporary dir)")
    args = parser.parse_args()
    answers = texts(1000, args.text_bytes)
    sizes = sorted(int(size) for size in args.sizes.split(","))
    per_round = args.calls // args.rounds
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        directory = Path(tmp)
        paths = {name: directory / f"{name}.sqlite" for name in LAYOUTS}
        caches = {
            "old": OldLayout(paths["old"], group=args.group),
            "new": ResponseCache(paths["new"], group=args.group),
            "new+pkey": ResponseCache(paths["new+pkey"], group=args.group),
        }
        caches["new+pkey"].get_ignoring_params("0" * 64)
        rows = 0
        next_key = 10**9  # keys of the timed calls, apart from the filled rows 0..size-1
        print(
            f"CPU µs per call: median of {args.rounds} rounds of {per_round:,} calls per layout, layouts taking turns;"
        )
        print(f"{args.text_bytes}-byte answers, commits of {args.group}. Layouts:")
        for name, description in LAYOUTS.items():
            print(f"  {name:<9} {description}")
        print()
        header = ["rows", "miss+put old", "new", "new+pkey", "new/old", "hit old", "hit new"]
        print(" | ".join(f"{title:>12}" for title in header))
        for size in sizes:
            if size > rows:
                for path in paths.values():
                    fill(path, rows, size, answers)
                rows = size
            timed: dict[str, list[float]] = {name: [] for name in caches}
            looked: dict[str, list[float]] = {name: [] for name in caches}
            for _ in range(args.rounds):
                for name, cache in caches.items():
                    timed[name].append(misses(cache, next_key, per_round, answers))
                    looked[name].append(hits(cache, rows, next_key, per_round))
                next_key += per_round
            miss = {name: statistics.median(values) for name, values in timed.items()}
            hit = {name: statistics.median(values) for name, values in looked.items()}
            cells = [miss["old"], miss["new"], miss["new+pkey"], miss["new"] / miss["old"], hit["old"], hit["new"]]
            formatted = [
                f"{cell:>12.2f}" if title == "new/old" else f"{cell:>12.1f}"
                for title, cell in zip(header[1:], cells, strict=True)
            ]
            print(" | ".join([f"{size:>12,}", *formatted]), flush=True)
        total = caches["new"].count()
        start = time.perf_counter()
        caches["new"].get_ignoring_params("0" * 64)
        built = time.perf_counter() - start
        for cache in caches.values():
            cache.close()
        megabytes = {name: sum(p.stat().st_size for p in directory.glob(f"{name}.sqlite*")) / 1e6 for name in paths}
        print("\nfile sizes at the end (MB): " + ", ".join(f"{name} {mb:.0f}" for name, mb in megabytes.items()))
        print(
            f"building the pkey index on demand (a first --cache-ignore-params lookup), {total:,} rows: {built:.2f} s"
        )
        if args.migrate_rows:
            wall, cpu, count = migration(directory, args.migrate_rows, answers)
            print(f"converting an old cache of {args.migrate_rows:,} rows on open: {wall:.2f} s wall, {cpu:.2f} s CPU")
            if count != args.migrate_rows:
                raise SystemExit(f"conversion lost rows: {count} of {args.migrate_rows}")


if __name__ == "__main__":
    main()
