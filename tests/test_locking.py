"""Run-directory locks: one holder at a time, named when taken, released by the OS when the holder dies."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from glan_dataset.errors import UsageError
from glan_dataset.locking import LockTaken, RunLocks


def test_a_taken_discipline_is_refused_naming_the_holder(tmp_path: Path) -> None:
    locks = RunLocks(tmp_path)
    with locks.disciplines(["physics", "chemistry"]):
        with pytest.raises(LockTaken) as refused:
            with RunLocks(tmp_path).disciplines(["biology", "physics"]):
                pass
        message = str(refused.value)
        assert isinstance(refused.value, UsageError) and "\n" not in message
        assert f"pid {os.getpid()}" in message and socket.gethostname() in message and "physics" in message
        assert refused.value.holder is not None and refused.value.holder.pid == os.getpid()
        # what the refused attempt took on the way (biology) was given back
        with RunLocks(tmp_path).disciplines(["biology"]):
            pass
    with RunLocks(tmp_path).disciplines(["physics"]):  # released at the end of the block
        pass


def test_the_lock_of_a_killed_holder_is_free(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable, "-c",
            "import sys, time; from glan_dataset.locking import RunLocks\n"
            f"with RunLocks({str(tmp_path)!r}).disciplines(['physics']):\n"
            "    print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        with pytest.raises(LockTaken, match=f"pid {holder.pid} "):
            with RunLocks(tmp_path).disciplines(["physics"]):
                pass
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        with RunLocks(tmp_path).disciplines(["physics"]):  # no stale lock to clean up
            pass
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_waiting_for_a_lock_and_shared_locks(tmp_path: Path) -> None:
    locks = RunLocks(tmp_path)
    first = locks.lock("writers")
    second = locks.lock("writers")
    assert first.acquire(shared=True) and second.acquire(shared=True)
    assert not first.try_exclusive()  # someone else shares it: not alone
    second.release()
    assert not locks.lock("writers").acquire()  # the refused conversion left first's shared lock held
    assert second.acquire(shared=True)
    second.release()
    assert first.try_exclusive()
    start = time.monotonic()
    assert not locks.lock("writers").acquire(wait=True, timeout=0.2)
    assert time.monotonic() - start >= 0.2
    first.release()
    with locks.run():
        assert not locks.lock("run").acquire()
