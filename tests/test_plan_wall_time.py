"""glan plan --throughput/--endpoints: the wall time of a config beside its calls, tokens and cost."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from glan_dataset.errors import UsageError
from glan_dataset.plan import GenerationPlan, StagePlan, Throughput, format_duration, wall_time


def plan() -> GenerationPlan:
    stages = [
        StagePlan(stage="question", model="m", calls=1000, prompt_tokens=0, completion_tokens=200_000, cost=None),
        StagePlan(stage="answer", model="m", calls=1000, prompt_tokens=0, completion_tokens=600_000, cost=None),
    ]
    return GenerationPlan(disciplines=1, rows_per_discipline={}, records=1000, stages=stages)


def test_wall_time_from_calls_or_tokens_per_second_shared_by_the_endpoints() -> None:
    assert Throughput.parse("20") == Throughput.parse("20calls/s") == Throughput(per_second=20, unit="calls")
    assert Throughput.parse("2500tok/s") == Throughput(per_second=2500, unit="tokens")
    assert wall_time(plan(), Throughput.parse("20")) == 100.0  # 2,000 calls at 20/s
    assert wall_time(plan(), Throughput.parse("20"), endpoints=4) == 25.0
    assert wall_time(plan(), Throughput.parse("1000tok/s"), endpoints=2) == 400.0  # 800K tokens
    assert [format_duration(s) for s in (45, 185, 3 * 3600 + 300, 2 * 86400 + 4 * 3600)] == [
        "45s",
        "3m05s",
        "3h05m",
        "2d04h",
    ]
    for bad in ("fast", "0", "-3tok/s"):
        with pytest.raises(UsageError, match="--throughput"):
            Throughput.parse(bad)


def test_plan_prints_the_wall_time_on_n_endpoints() -> None:
    def plan_cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "glan_dataset", "plan", "--config", "physics", *args]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "160"}
        )

    four = plan_cli("--throughput", "10", "--endpoints", "4")
    assert four.returncode == 0, four.stderr
    assert "wall time" in four.stdout  # the column, per call of the plan
    line = next(text for text in four.stdout.splitlines() if text.startswith("Wall time"))
    assert "10 calls/s per endpoint on 4 endpoint(s)" in line
    bad = plan_cli("--throughput", "fast")
    assert bad.returncode == 2 and "--throughput 'fast'" in bad.stderr
