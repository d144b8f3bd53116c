"""Several `glan generate` processes on one run directory: nothing is paid twice, nothing is lost.

Real processes against one loopback server that counts every call."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

from glan_dataset.locking import RunLocks
from glan_dataset.pipeline import generate
from glan_dataset.testing.openai_server import FakeOpenAIServer
from tests.helpers import TINY_TAXONOMY, engine_config, tiny_settings


def single_run_calls(tmp_path: Path, config: str) -> int:
    """What one uninterrupted run of ``config`` costs, in calls."""
    with FakeOpenAIServer() as server:
        generate(
            tmp_path / f"reference-{config}",
            tiny_settings(config),
            engine_config(server),
            taxonomy_path=TINY_TAXONOMY,
            quiet=True,
        )
        return server.stats.chat_calls


def command(run: Path, server: FakeOpenAIServer, config: str) -> list[str]:
    return [
        "generate", "--out", str(run), "--config", config,
        "--taxonomy", str(TINY_TAXONOMY), "--subject-samples", "2", "--max-subjects", "3",
        "--questions-per-subject", "4", "--concurrency", "2", "--base-url", server.base_url, "--quiet",
    ]  # fmt: skip


# `glan` with its modules imported, started on a line on stdin: on a busy machine importing takes
# seconds, and the race under test must not depend on how long each interpreter takes to start.
WARM = (
    "import sys\n"
    "from glan_dataset.cli import main\n"
    "import glan_dataset.flows, glan_dataset.pipeline\n"
    "print('ready', flush=True)\n"
    "sys.stdin.readline()\n"
    "sys.argv = ['glan', *sys.argv[1:]]\n"
    "main()\n"
)


def warm(args: list[str]) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", WARM, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


def go(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.write("go\n")
    process.stdin.flush()


def cache_rows(run: Path) -> int:
    try:
        with sqlite3.connect(run / "llm-cache.sqlite") as db:
            return int(db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_a_second_process_on_the_same_discipline_is_refused_and_nothing_is_paid_twice(tmp_path: Path) -> None:
    run = tmp_path / "run"
    expected = single_run_calls(tmp_path, "physics")
    with FakeOpenAIServer(latency=0.15) as server:  # the first run lasts ~3 s
        first, second = warm(command(run, server, "physics")), warm(command(run, server, "physics"))
        go(first)
        deadline = time.monotonic() + 60
        while cache_rows(run) < 2:  # the first one is paying
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        go(second)
        _, stderr = second.communicate(timeout=120)
        assert first.poll() is None, "the first run ended before the second one started: make it slower"
        assert first.wait(timeout=120) == 0
        assert server.stats.chat_calls == expected  # what one run costs
    assert second.returncode == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert f"pid {first.pid} on {socket.gethostname()}" in lines[0] and "physics" in lines[0]
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["counts"]["physics"]["records"] == pl.read_parquet(run / "records" / "physics.parquet").height > 0


def test_two_processes_on_different_disciplines_merge_run_json(tmp_path: Path) -> None:
    run = tmp_path / "run"
    expected = single_run_calls(tmp_path, "physical-sciences")  # physics and chemistry
    with FakeOpenAIServer(latency=0.1) as server:  # each run lasts ~2 s: they overlap
        processes = [warm(command(run, server, slug)) for slug in ("physics", "chemistry")]
        for process in processes:
            go(process)
        for process in processes:
            _, stderr = process.communicate(timeout=180)
            assert process.returncode == 0, stderr
        assert server.stats.chat_calls == expected
    manifest = json.loads((run / "run.json").read_text())
    heights = {d: pl.read_parquet(run / "records" / f"{d}.parquet").height for d in ("physics", "chemistry")}
    assert {d: c["records"] for d, c in manifest["counts"].items()} == heights and all(heights.values())
    assert manifest["disciplines"] == ["chemistry", "physics"]
    assert set(manifest["configs"]) == {"physics", "chemistry"}
    calls = sum(row["calls"] for row in manifest["usage"]["cumulative"])
    assert calls == expected  # the run's spend, not the last writer's


def test_failures_of_other_disciplines_and_live_processes_are_kept(
    tmp_path: Path, openai_server: FakeOpenAIServer
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    other = json.dumps({"stage": "subjects", "key": "chemistry/subjects/0", "reason": "HTTP 500", "attempts": 6})
    mine = json.dumps({"stage": "subjects", "key": "physics/subjects/1", "reason": "HTTP 500", "attempts": 6})
    (run / "failures.jsonl").write_text(other + "\n" + mine + "\n")
    writers = RunLocks(run).lock("writers")
    assert writers.acquire(shared=True)  # another generation is live: it may append at any time
    try:
        generate(run, tiny_settings("physics"), engine_config(openai_server), taxonomy_path=TINY_TAXONOMY, quiet=True)
    finally:
        writers.release()
    assert (run / "failures.jsonl").read_text().splitlines() == [other, mine]  # not rewritten under it
    generate(run, tiny_settings("physics"), engine_config(openai_server), taxonomy_path=TINY_TAXONOMY, quiet=True)
    assert (run / "failures.jsonl").read_text().splitlines() == [other]  # alone: only physics' lines rotate
    assert (run / "failures.previous.jsonl").read_text().splitlines() == [mine]
