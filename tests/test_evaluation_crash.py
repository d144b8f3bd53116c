"""kill -9 in the middle of judging, then the same command again: the server sees exactly the calls
whose replies were not yet persisted, and the results equal those of an uninterrupted evaluation."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

from glan_dataset.evaluation import EvalSettings, RoleEndpoints, evaluate, load_test_set
from glan_dataset.llm import EngineConfig
from glan_dataset.testing.openai_server import FakeOpenAIServer
from tests.evaluation_support import BASELINE, CANDIDATE, JUDGE, PlantedJudge
from tests.publishing_support import make_run

QUESTIONS = 30  # 6 held out in each of the 5 disciplines of make_run
CALLS = 2 * QUESTIONS + 2 * QUESTIONS  # candidate + baseline answers, then two verdicts per pair


def _command(run: Path, base_url: str, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "glan_dataset", "eval", str(run), "--model", CANDIDATE, "--baseline", BASELINE,
        "--judge-model", JUDGE, "--base-url", base_url, "--out", str(out), "--concurrency", "2", "-q",
    ]  # fmt: skip


def _persisted(directory: Path) -> int:
    total = 0
    for cache in directory.glob("*/llm-cache.sqlite"):
        try:
            with sqlite3.connect(cache) as db:
                total += db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
        except sqlite3.OperationalError:  # tables not created yet
            pass
    return total


def test_kill_9_mid_judging_then_rerun_repays_nothing(tmp_path):
    run = make_run(tmp_path / "run")
    crashed, fresh = tmp_path / "crashed", tmp_path / "fresh"
    name = f"{CANDIDATE}-vs-{BASELINE}-by-{JUDGE}"
    with FakeOpenAIServer(latency=0.05, responder=PlantedJudge()) as server:
        process = subprocess.Popen(_command(run, server.base_url, crashed), stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.stats.by_model[JUDGE] < 12:
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        persisted = _persisted(crashed / "eval" / name)
        judged = server.stats.by_model[JUDGE]
        assert 12 <= judged < 2 * QUESTIONS, "killed too late: not mid-judging"
        assert 2 * QUESTIONS < persisted < CALLS
        assert not (crashed / "eval" / name / "results.parquet").exists()

        server.reset_stats()
        assert subprocess.run(_command(run, server.base_url, crashed), timeout=120).returncode == 0
        assert server.stats.chat_calls == CALLS - persisted
        assert server.stats.by_model[CANDIDATE] == server.stats.by_model[BASELINE] == 0

        # the same evaluation uninterrupted, in-process through the Python API
        config = EngineConfig(base_url=server.base_url, quiet=True)
        settings = EvalSettings(model=CANDIDATE, baseline=BASELINE, judge_model=JUDGE)
        evaluate(load_test_set(str(run)), settings, RoleEndpoints(candidate=config, judge=config), fresh)
    resumed = pl.read_parquet(crashed / "eval" / name / "results.parquet")
    uninterrupted = pl.read_parquet(fresh / "eval" / name / "results.parquet")
    assert resumed.height > 0 and resumed.equals(uninterrupted)
