"""--serve "COMMAND": a server started per worker from a template, used once /v1/models answers, then
stopped. The template starts the project's loopback server, as `vllm serve {model} --port {port}` would."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from glan_dataset.errors import ConfigurationError, UsageError
from glan_dataset.servers import render, serve
from tests.helpers import TINY_TAXONOMY

LOOPBACK = f"{sys.executable} -m glan_dataset.testing.openai_server --port {{port}}"
TINY = ["--subject-samples", "2", "--max-subjects", "3", "--questions-per-subject", "2"]


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def glan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "glan_dataset", *args], capture_output=True, text=True, timeout=300)


def test_generate_starts_uses_and_stops_its_own_server(tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = glan("generate", "--out", str(run), "--config", "physics", "--taxonomy", str(TINY_TAXONOMY),
                  *TINY, "--quiet", "--serve", LOOPBACK)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (run / "records" / "physics.parquet").exists()
    [log] = (run / "servers").glob("*.log")
    assert "listening" in log.read_text()
    assert not listening(int(log.stem.rsplit("-", 1)[1]))  # stopped at the end


def test_a_server_that_dies_or_a_template_without_port_is_one_line_exit_2(tmp_path: Path) -> None:
    result = glan("generate", "--out", str(tmp_path / "a"), "--taxonomy", str(TINY_TAXONOMY), "--config", "physics",
                  "--serve", f"{sys.executable} -c 'raise SystemExit(3)' {{port}}")  # fmt: skip
    assert result.returncode == 2
    assert "exited with code 3 before answering" in result.stderr and "Traceback" not in result.stderr
    with pytest.raises(UsageError, match="must contain \\{port\\}"):
        render("vllm serve {model}", model="m", port=1)


def test_serve_renders_the_template_and_stops_the_process_group(tmp_path: Path) -> None:
    assert render("vllm serve {model} --port {port}", model="org/My Model", port=8001) == [
        "vllm", "serve", "org/My Model", "--port", "8001",
    ]  # fmt: skip
    with serve(LOOPBACK, "m", tmp_path) as server:
        assert listening(server.port)
    assert server.process.poll() is not None and not listening(server.port)
    with pytest.raises(ConfigurationError, match="could not start"):
        with serve("/nonexistent/server --port {port}", "m", tmp_path):
            pass
