"""``glan generate`` and ``glan plan`` as a user runs them: a real process, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl

from glan_dataset.testing.openai_server import FakeOpenAIServer
from tests.helpers import TINY_TAXONOMY

SECRET = "sk-test-secret-value-that-must-never-leak"


def glan(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    return subprocess.run(
        [sys.executable, "-m", "glan_dataset", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=120,
    )


def test_missing_endpoint_is_one_line_naming_the_fixes(tmp_path: Path) -> None:
    result = glan("generate", "--config", "physics", "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "--base-url"):
        assert name in lines[0]
    assert not (tmp_path / "run").exists()


def test_unknown_config_lists_closest_names(tmp_path: Path) -> None:
    result = glan(
        "generate", "--config", "phisics", "--out", str(tmp_path / "run"), "--base-url", "http://127.0.0.1:9/v1"
    )
    assert result.returncode == 2
    assert "physics" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unreachable_endpoint_fails_clearly_and_leaves_run_resumable(tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = glan(
        "generate", "--config", "physics", "--taxonomy", str(TINY_TAXONOMY), "--out", str(run),
        "--base-url", "http://127.0.0.1:9/v1", "--max-attempts", "2", "--quiet",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "127.0.0.1:9" in result.stderr and "again" in result.stderr and "Traceback" not in result.stderr


def test_generate_writes_records_and_never_the_key(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with FakeOpenAIServer() as server:
        result = glan(
            "generate", "--config", "physics", "--taxonomy", str(TINY_TAXONOMY), "--out", str(run),
            "--subject-samples", "1", "--max-subjects", "2", "--questions-per-subject", "2",
            "--price", "gpt-4.1=2/8", "--price", "gpt-4.1-mini=0.4/1.6",
            env={"OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": server.base_url},
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    subjects = pl.read_parquet(run / "subjects" / "physics.parquet").height
    assert 1 <= subjects <= 2
    assert pl.read_parquet(run / "records" / "physics.parquet").height == 2 * subjects
    assert "records" in result.stderr
    assert SECRET not in result.stdout + result.stderr
    for path in run.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_plan_counts_calls_and_cost_without_calling(tmp_path: Path) -> None:
    result = glan(
        "plan", "--config", "physical-sciences", "--taxonomy", str(TINY_TAXONOMY), "--subject-samples", "10",
        "--max-subjects", "100", "--questions-per-subject", "5", "--price", "gpt-4.1=2/8", "--price", "gpt-4.1-mini=0.4/1.6",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # 2 disciplines x 100 subjects x 5 questions
    assert "1,000 instruction pairs" in result.stdout
    assert "$" in result.stdout and "n/a" not in result.stdout


def test_bad_price_is_a_clear_error() -> None:
    result = glan("plan", "--config", "physics", "--price", "gpt-4.1=cheap")
    assert result.returncode == 2 and "MODEL=IN/OUT" in result.stderr and "Traceback" not in result.stderr


def test_ctrl_c_is_one_line_and_the_same_command_resumes(tmp_path: Path) -> None:
    import signal
    import time

    run = tmp_path / "run"
    args = [
        sys.executable, "-m", "glan_dataset", "generate", "--config", "physics", "--taxonomy", str(TINY_TAXONOMY),
        "--out", str(run), "--subject-samples", "2", "--max-subjects", "3", "--questions-per-subject", "4",
        "--concurrency", "1", "--quiet",
    ]  # fmt: skip
    with FakeOpenAIServer(latency=0.05) as server:
        env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"} | {"OPENAI_BASE_URL": server.base_url}
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        while server.stats.chat_ok < 5:
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 130, stderr
        assert "Traceback" not in stderr and "run the same command again" in stderr
        answered = server.stats.chat_ok
        server.reset_stats()
        resumed = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
        assert resumed.returncode == 0, resumed.stderr
        # 34 calls in all; those answered before Ctrl-C are not paid again (at most one was in flight)
        assert 34 - answered <= server.stats.chat_calls <= 34 - answered + 1
    assert pl.read_parquet(run / "records" / "physics.parquet").height == 12


def test_two_processes_generate_different_disciplines_into_one_run(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with FakeOpenAIServer(latency=0.01) as server:
        env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"} | {"OPENAI_BASE_URL": server.base_url}
        processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "glan_dataset",
                    "generate",
                    "--config",
                    config,
                    "--out",
                    str(run),
                    "--taxonomy",
                    str(TINY_TAXONOMY),
                    "--subject-samples",
                    "2",
                    "--max-subjects",
                    "3",
                    "--questions-per-subject",
                    "4",
                    "--quiet",
                ],  # fmt: skip
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for config in ("physics", "chemistry")
        ]
        for process in processes:
            _, stderr = process.communicate(timeout=120)
            assert process.returncode == 0, stderr
    assert {p.stem for p in (run / "records").glob("*.parquet")} == {"physics", "chemistry"}
    assert json.loads((run / "run.json").read_text())["disciplines"] == ["chemistry", "physics"]


def test_custom_prompts_need_only_the_generation_templates(tmp_path: Path) -> None:
    import shutil

    prompts = tmp_path / "prompts"
    shutil.copytree(Path(__file__).resolve().parents[1] / "prompts", prompts, ignore=shutil.ignore_patterns("*.py"))
    (prompts / "taxonomy.j2").unlink()  # only `glan taxonomy propose` uses it
    plan = glan("plan", "--config", "physics", "--taxonomy", str(TINY_TAXONOMY), "--prompts", str(prompts))
    assert plan.returncode == 0, plan.stderr
    (prompts / "answer.j2").unlink()
    missing = glan("plan", "--config", "physics", "--taxonomy", str(TINY_TAXONOMY), "--prompts", str(prompts))
    assert missing.returncode == 2 and "answer.j2" in missing.stderr and "Traceback" not in missing.stderr
