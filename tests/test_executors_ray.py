"""--executor ray on a local Ray instance with two worker processes (started once per test session:
it takes tens of seconds on a busy machine). Skipped, with the reason, when Ray is not installed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from glan_dataset import flows
from glan_dataset.executors.ray import PARTS, RayExecutor, describe_worker
from glan_dataset.llm import EngineConfig
from glan_dataset.testing.openai_server import FakeOpenAIServer
from tests.helpers import TINY_TAXONOMY, engine_config, tiny_settings

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]' runs the Ray executor tests")


def lost_at_kill(concurrency: int, latency: float) -> int:
    """What a kill -9 can cost again: the calls in flight, and those answered within one commit interval."""
    interval = EngineConfig().commit_interval
    return concurrency + int(concurrency * interval / latency + 0.999)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def records(run: Path) -> dict[str, list[tuple[str, str, str]]]:
    """Every discipline's records as (id, question, answer), in file order."""
    out = {}
    for path in sorted((run / "records").glob("*.parquet")):
        frame = pl.read_parquet(path)
        out[path.stem] = list(zip(frame["id"], frame["question"], frame["answer"], strict=True))
    return out


def local_run(run: Path, **settings: Any) -> tuple[dict[str, list[tuple[str, str, str]]], int]:
    with FakeOpenAIServer() as server:
        flows.generate(run, tiny_settings(**settings), engine_config(server), taxonomy_path=TINY_TAXONOMY, quiet=True)
        return records(run), server.stats.chat_calls


def test_ray_run_on_a_fleet_equals_a_local_run_and_a_rerun_pays_nothing(ray_cluster: None, tmp_path: Path) -> None:
    expected, local_calls = local_run(tmp_path / "local", config="all")
    with FakeOpenAIServer() as server, FakeOpenAIServer() as second:
        run = tmp_path / "ray"
        config = engine_config(server, base_urls=[server.base_url, second.base_url])  # a fleet of two endpoints
        manifest = flows.generate(
            run, tiny_settings(config="all"), config, taxonomy_path=TINY_TAXONOMY, quiet=True, executor=RayExecutor()
        )
        assert records(run) == expected  # ids and texts, for every discipline
        assert manifest.disciplines == sorted(expected)
        assert server.stats.chat_calls + second.stats.chat_calls == local_calls
        assert min(server.stats.chat_calls, second.stats.chat_calls) > local_calls // 4  # both endpoints worked
        parts = {p.name for p in (run / PARTS).iterdir() if p.is_dir()}
        assert parts == set(expected)
        assert len({describe_worker(run / PARTS / p)["pid"] for p in parts}) == 2  # both worker processes worked

        # a restarted driver resumes like a local run: finished parts are reused, nothing is paid again
        server.reset_stats()
        second.reset_stats()
        flows.generate(
            run, tiny_settings(config="all"), config, taxonomy_path=TINY_TAXONOMY, quiet=True, executor=RayExecutor()
        )
        assert server.stats.chat_calls == second.stats.chat_calls == 0
        assert records(run) == expected
        # and the gathered run is an ordinary run directory: a local run on it pays nothing either
        flows.generate(run, tiny_settings(config="all"), config, quiet=True)
        assert server.stats.chat_calls == second.stats.chat_calls == 0


def test_a_worker_killed_mid_discipline_is_restarted_and_repays_only_calls_in_flight(
    ray_cluster: None, tmp_path: Path
) -> None:
    settings = {"config": "physics", "max_subjects": 6, "questions_per_subject": 6}
    expected, local_calls = local_run(tmp_path / "local", **settings)
    concurrency = 4
    run = tmp_path / "ray"
    with FakeOpenAIServer(latency=0.05) as server:
        errors: list[BaseException] = []

        def drive() -> None:
            try:
                flows.generate(
                    run,
                    tiny_settings(**settings),
                    engine_config(server, concurrency=concurrency),
                    taxonomy_path=TINY_TAXONOMY,
                    quiet=True,
                    executor=RayExecutor(),
                )
            except BaseException as error:  # noqa: BLE001 (re-raised in the test thread)
                errors.append(error)

        driver = threading.Thread(target=drive)
        driver.start()
        deadline = time.monotonic() + 120
        worker = None
        while time.monotonic() < deadline and server.stats.chat_calls < local_calls // 3:
            time.sleep(0.05)
        worker = describe_worker(run / PARTS / "physics")
        assert worker is not None and server.stats.chat_calls < local_calls, "the discipline ended before the kill"
        os.kill(worker["pid"], signal.SIGKILL)
        driver.join(180)
        assert not driver.is_alive() and not errors, errors
        assert records(run) == expected
        assert describe_worker(run / PARTS / "physics")["pid"] != worker["pid"]  # another process finished it
        repaid = server.stats.chat_calls - local_calls
        # at most the calls in flight when the worker died, plus the replies of its last cache commit
        # interval (the engine commits in groups; README "durability")
        assert 0 <= repaid <= lost_at_kill(concurrency, 0.05)


def test_serve_starts_one_server_per_worker_and_stops_them(ray_cluster: None, tmp_path: Path) -> None:
    run = tmp_path / "run"
    template = f"{sys.executable} -m glan_dataset.testing.openai_server --port {{port}}"
    config = EngineConfig(quiet=True, concurrency=8)  # no endpoint: each worker's own server is the endpoint
    flows.generate(
        run, tiny_settings(config="all", max_subjects=2, questions_per_subject=2), config,
        taxonomy_path=TINY_TAXONOMY, quiet=True, executor=RayExecutor(), serve=template,
    )  # fmt: skip
    assert len(records(run)) == 4
    logs = sorted((run / "servers").glob("*.log"))
    assert len(logs) == 2  # one per worker, not one per discipline
    for log in logs:
        port = int(log.stem.rsplit("-", 1)[1])
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0  # stopped


def test_a_killed_driver_restarted_with_the_same_command_resumes(ray_cluster: None, tmp_path: Path) -> None:
    settings = {"config": "physical-sciences", "max_subjects": 4, "questions_per_subject": 5}
    expected, local_calls = local_run(tmp_path / "local", **settings)
    run, concurrency = tmp_path / "ray", 4
    with FakeOpenAIServer(latency=0.05) as server:
        command = [
            sys.executable, "-m", "glan_dataset", "generate", "--out", str(run), "--taxonomy", str(TINY_TAXONOMY),
            "--config", "physical-sciences", "--subject-samples", "2", "--max-subjects", "4",
            "--questions-per-subject", "5", "--base-url", server.base_url, "--concurrency", str(concurrency),
            "--executor", "ray", "--ray-address", "auto", "--quiet",
        ]  # fmt: skip
        driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while server.stats.chat_calls < local_calls // 3 and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.05)
        assert driver.poll() is None and server.stats.chat_calls < local_calls, "the run ended before the kill"
        driver.kill()  # the driver, not a worker: Ray stops its workers
        driver.wait()
        again = subprocess.run(command, capture_output=True, text=True, timeout=180)
        assert again.returncode == 0, again.stderr
        assert records(run) == expected
        # at most the calls in flight on the two workers when the driver died are paid twice
        assert 0 <= server.stats.chat_calls - local_calls <= 2 * lost_at_kill(concurrency, 0.05)
