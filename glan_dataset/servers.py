"""``--serve "COMMAND"``: an inference server started for one worker, used, and stopped.

For maintainers with GPUs: each worker (the local process, or each Ray worker) runs its own server
from a template such as ``vllm serve {model} --port {port}``, waits until ``/v1/models`` answers, points
the engine at it and stops it at the end (SIGTERM to its process group, then SIGKILL). The server's
output goes to ``RUN/servers/<host>-<port>.log``, never to the terminal.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from glan_dataset.errors import ConfigurationError, UsageError
from glan_dataset.llm import EngineConfig

STARTUP_TIMEOUT = 900.0  # a large model loads for minutes
STOP_GRACE = 15.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def render(template: str, *, model: str, port: int) -> list[str]:
    """The command's argv: ``{model}`` and ``{port}`` filled in, split like a shell would."""
    if "{port}" not in template:
        raise UsageError(f"--serve {template!r}: the command must contain {{port}} (each worker picks its own)")
    try:
        return shlex.split(template.replace("{model}", shlex.quote(model)).replace("{port}", str(port)))
    except ValueError as error:
        raise UsageError(f"--serve {template!r}: {error}") from None


class Server:
    """One started server process; :meth:`stop` is idempotent."""

    def __init__(self, argv: list[str], port: int, log_path: Path) -> None:
        self.argv = argv
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}/v1"
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        except OSError as error:
            self._log.close()
            raise ConfigurationError(f"--serve could not start {argv[0]!r}: {error.strerror or error}") from None

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Until ``GET /v1/models`` answers 200; a server that exits or never answers is one clear error."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise ConfigurationError(
                    f"--serve: {shlex.join(self.argv)} exited with code {code} before answering; see {self.log_path}"
                )
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2.0) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise ConfigurationError(f"--serve: {shlex.join(self.argv)} did not answer /v1/models in {timeout:.0f} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass
        self._log.close()


@contextmanager
def serve(template: str, model: str, log_dir: Path, *, timeout: float = STARTUP_TIMEOUT) -> Iterator[Server]:
    """Start the server of ``template`` on a free port, wait until it answers, stop it on exit."""
    port = free_port()
    server = Server(render(template, model=model, port=port), port, log_dir / f"{socket.gethostname()}-{port}.log")
    try:
        server.wait_ready(timeout)
        yield server
    finally:
        server.stop()


@contextmanager
def served(template: str | None, model: str, engine_config: EngineConfig, run_dir: Path) -> Iterator[EngineConfig]:
    """``engine_config`` as is without a template; else pointed at a server started for this block."""
    if template is None:
        yield engine_config
        return
    with serve(template, model, Path(run_dir) / "servers") as server:
        yield engine_config.model_copy(update={"base_url": server.base_url, "base_urls": []})
