"""Scale-out benchmark: calls/s of a whole generation on 1, 2 and 4 endpoints, local and Ray executors.

Each endpoint is the project's loopback server in its own process with 50 ms latency per call (a
stand-in for a GPU server with a fixed number of slots: --concurrency, per endpoint, is its slots).
The same seeded config runs through ``flows.generate``: locally (one process, a fleet of N
endpoints) and on a local Ray instance (two workers, each with the same fleet). Prints calls/s and
the ratio to the single-endpoint rate of the same executor. Ray's start-up is not timed.

    python bench/scale_out.py [--concurrency 8] [--questions-per-subject 10]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from glan_dataset import flows
from glan_dataset.executors import LocalExecutor
from glan_dataset.llm import EngineConfig
from glan_dataset.servers import free_port
from glan_dataset.settings import GenerationSettings

TAXONOMY = Path(__file__).resolve().parent.parent / "tests" / "data" / "tiny_taxonomy.yaml"
LATENCY = 0.05


def start_servers(count: int) -> list[tuple[subprocess.Popen[bytes], str]]:
    servers = []
    for _ in range(count):
        port = free_port()
        command = [sys.executable, "-m", "glan_dataset.testing.openai_server", "--port", str(port)]
        process = subprocess.Popen([*command, "--latency", str(LATENCY)], stdout=subprocess.DEVNULL)
        servers.append((process, f"http://127.0.0.1:{port}/v1"))
    for _, url in servers:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{url}/models", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
    return servers


def calls(url: str) -> int:
    with urllib.request.urlopen(f"{url}/_stats", timeout=5) as response:
        return int(json.load(response)["chat_calls"])


def measure(executor_name: str, endpoints: int, args: argparse.Namespace) -> float:
    servers = start_servers(endpoints)
    urls = [url for _, url in servers]
    try:
        settings = GenerationSettings(
            config="all", subject_samples=2, max_subjects=6, questions_per_subject=args.questions_per_subject
        )
        config = EngineConfig(
            base_url=urls[0], base_urls=urls if endpoints > 1 else [], concurrency=args.concurrency, quiet=True
        )
        if executor_name == "ray":
            from glan_dataset.executors.ray import RayExecutor

            executor = RayExecutor(workers=2)
        else:
            executor = LocalExecutor()
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            flows.generate(Path(folder), settings, config, taxonomy_path=TAXONOMY, quiet=True, executor=executor)
            elapsed = time.perf_counter() - started
        return sum(calls(url) for url in urls) / elapsed
    finally:
        for process, _ in servers:
            process.terminate()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight per endpoint")
    parser.add_argument("--questions-per-subject", type=int, default=10)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    executors = ["local"] if args.no_ray else ["local", "ray"]
    if "ray" in executors:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    print(f"calls/s at {LATENCY * 1000:.0f} ms per call, --concurrency {args.concurrency} per endpoint")
    print(f"{'executor':<9} {'endpoints':>9} {'calls/s':>9} {'ratio':>6}")
    for name in executors:
        base = None
        for endpoints in (1, 2, 4):
            rate = measure(name, endpoints, args)
            base = base or rate
            print(f"{name:<9} {endpoints:>9} {rate:>9.1f} {rate / base:>5.2f}x", flush=True)


if __name__ == "__main__":
    main()
