"""One writer per unit of work: advisory locks on files under ``RUN/locks/``.

Two processes that generate the same discipline into the same run directory would pay every call
twice and overwrite each other's files; two on different disciplines are fine, as long as what they
share (``run.json``, ``failures.jsonl``, the taxonomy snapshot) is updated under a short run-level lock.

Why ``flock(2)`` on a file that stays: the kernel releases the lock when its holder exits, however it
exits (kill -9 included), so there is no stale lock to clean up and no pid to guess about. The lock
file holds the holder's pid, host, start time and command, written once it holds the lock, so a
process that finds it taken can name who has it. A lock belongs to one open file, so a second lock
on the same name in the same process is refused too (two pipelines in one process are two writers).
``flock`` works on local filesystems and on NFSv4 (Linux emulates it with byte-range locks there);
it is POSIX only.

A lock that is taken is never waited for by default: :meth:`RunLocks.discipline` raises
:class:`LockTaken` (a one-line :class:`~glan_dataset.errors.UsageError`, exit code 2) naming the
holder and what to do. ``wait=True`` waits instead (the run-level lock always waits: it is held for
milliseconds).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from glan_dataset.errors import UsageError

LOCKS_DIR = "locks"
RUN_LOCK = "run"
"""The run-level lock: held while run.json, failures.jsonl or the taxonomy snapshot change."""
WRITERS_LOCK = "writers"
"""Held shared by every generating process for its lifetime; exclusive means "no one else writes"."""
DECONTAMINATE_LOCK = "decontaminate"
"""Held by ``glan decontaminate`` for its whole run: clean files and report.json come from one run."""
MERGE_LOCK = "merge"
"""Held on the target of ``glan merge-runs`` while it writes: its ledger of merged usage is read-modify-write."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as the holder wrote it into the lock file."""

    pid: int
    host: str
    started_at: str
    command: str

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} (since {self.started_at}: {self.command})"


class LockTaken(UsageError):
    """Another live process holds a lock this one needs."""

    def __init__(self, message: str, holder: Holder | None) -> None:
        super().__init__(message)
        self.holder = holder


class FileLock:
    """An exclusive (or shared) ``flock`` on one file; the file is kept, only the lock comes and goes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def acquire(self, *, wait: bool = False, shared: bool = False, timeout: float | None = None) -> bool:
        """Take the lock; ``False`` if it is taken and ``wait`` is false (or ``timeout`` passed)."""
        if self._file is not None:
            raise RuntimeError(f"{self.path} is already held by this object")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # never truncates: the holder's note stays readable
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                try:
                    fcntl.flock(handle.fileno(), mode | (0 if wait and deadline is None else fcntl.LOCK_NB))
                    break
                except BlockingIOError:
                    if not wait or (deadline is not None and time.monotonic() >= deadline):
                        handle.close()
                        return False
                    time.sleep(0.05)
        except BaseException:
            handle.close()
            raise
        if not shared:  # a shared lock has several holders: no single note to write
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(_me()) + "\n")
            handle.flush()
        self._file = handle
        return True

    def try_exclusive(self) -> bool:
        """Turn a held shared lock into an exclusive one if no one else shares it (never waits)."""
        if self._file is None:
            raise RuntimeError(f"{self.path} is not held")
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            # Linux converts by dropping the held lock first: a refused conversion leaves nothing held
            fcntl.flock(self._file.fileno(), fcntl.LOCK_SH)
            return False

    def share(self) -> None:
        """Turn a held exclusive lock into a shared one."""
        if self._file is None:
            raise RuntimeError(f"{self.path} is not held")
        fcntl.flock(self._file.fileno(), fcntl.LOCK_SH)

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def holder(self) -> Holder | None:
        """The note the current (or last) exclusive holder wrote; None if there is none yet."""
        for _ in range(20):  # a holder that just took the lock may not have written its note yet
            try:
                text = self.path.read_text(encoding="utf-8").strip()
            except FileNotFoundError:
                return None
            if text:
                try:
                    data = json.loads(text.splitlines()[0])
                    return Holder(int(data["pid"]), str(data["host"]), str(data["started_at"]), str(data["command"]))
                except (ValueError, KeyError, TypeError):
                    return None
            time.sleep(0.01)
        return None

    def __enter__(self) -> FileLock:
        self.acquire(wait=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class RunLocks:
    """The locks of one run directory: one per discipline, one for the run's shared files.

    ``with RunLocks(run).disciplines(["physics"]):`` holds physics until the block ends (or the process
    dies). Lock files are ``RUN/locks/<name>.lock``.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.dir = self.root / LOCKS_DIR

    def lock(self, name: str) -> FileLock:
        return FileLock(self.dir / f"{name}.lock")

    def discipline_lock(self, slug: str) -> FileLock:
        return self.lock(f"discipline-{slug}")

    def take(self, slug: str, *, wait: bool = False, action: str = "generated") -> FileLock:
        """Take one discipline's lock or raise :class:`LockTaken` naming its holder."""
        lock = self.discipline_lock(slug)
        if not lock.acquire(wait=wait):
            holder = lock.holder()
            who = holder.describe() if holder is not None else "another process"
            raise LockTaken(
                f"discipline {slug} in {self.root} is being {action} by {who}; wait for it to finish, "
                "or run a config without that discipline (or another --out)",
                holder,
            )
        return lock

    @contextmanager
    def disciplines(self, slugs: list[str], *, wait: bool = False, action: str = "generated") -> Iterator[None]:
        """Hold every discipline of ``slugs`` (in sorted order, so two waiting processes cannot deadlock)."""
        held: list[FileLock] = []
        try:
            for slug in sorted(set(slugs)):
                held.append(self.take(slug, wait=wait, action=action))
            yield
        finally:
            for lock in reversed(held):
                lock.release()

    @contextmanager
    def alone(self, name: str, *, action: str) -> Iterator[None]:
        """Hold lock ``name`` for an operation that must not run twice at once in this run directory;
        raise :class:`LockTaken` naming the holder (never wait: the other may take hours)."""
        lock = self.lock(name)
        if not lock.acquire():
            holder = lock.holder()
            who = holder.describe() if holder is not None else "another process"
            raise LockTaken(
                f"{self.root} is being {action} by {who}; wait for it to finish, then run the same command again",
                holder,
            )
        try:
            yield
        finally:
            lock.release()

    @contextmanager
    def run(self) -> Iterator[None]:
        """The short run-level lock (waits): read-modify-write of run.json and friends happens inside."""
        with self.lock(RUN_LOCK):
            yield


def _me() -> dict[str, object]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": _command(),
    }


def _command() -> str:
    """The program and its subcommand only: other arguments may hold a URL with credentials."""
    program = os.path.basename(sys.argv[0]) or "python"
    if program == "__main__.py":
        program = "glan"
    words = [program] + [arg for arg in sys.argv[1:2] if not arg.startswith("-")]
    return " ".join(words)[:80]
