"""Engine throughput against the loopback server (a subprocess with 50 ms latency), beside a bare
aiohttp client on the same server in the same run, and ``glan generate`` beside the engine.

    .venv/bin/python bench/engine.py                 # 20,000 calls, concurrency 256: engine vs bare aiohttp
    .venv/bin/python bench/engine.py --generate --repeat 3        # + glan generate (the CLI), same calls
    .venv/bin/python bench/engine.py --transport all --repeat 3   # + SDK over aiohttp and over httpx2

Each measurement runs in a fresh child process (so CPU time and peak RSS belong to that run only),
on the event loop glan runs on (``glan_dataset.eventloop``: uvloop where installed), after 1,000
unmeasured warm-up calls (imports, model building and first connections are one-off costs).
The engine runs with the cache and structured-output validation on; the bare client posts the same
JSON bodies with one aiohttp session and decodes the replies, nothing more: the wire's own rate on
this machine. ``--generate`` runs ``glan generate -c all`` (126 disciplines, the CLI in a subprocess,
cache and stage files on) sized to about the same number of calls, and the engine runs exactly as many
calls as generate made. A client's rate is its calls over the server's busy time (first request in to
last answer out), so interpreter start-up and imports are not counted as calls' time: they are printed
apart as the wall time of ``glan --help``. Prints calls/s, the ratios to bare aiohttp and to the engine,
client CPU ms per call, peak RSS. Targets (issue 10): engine >= 0.8x bare, <= 0.2 ms CPU/call,
``glan generate`` >= 0.9x the engine, ``glan --help`` < 0.3 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # measure the tree this file is in, not an installed copy of glan_dataset


WARM_UP = 1000  # calls each client makes before it is measured


class Question(BaseModel):
    question: str
    difficulty: int


def replayed_requests(bodies: list[dict[str, Any]]) -> Iterator[Any]:
    """ChatRequests asking exactly what a recorded ``glan generate`` asked (server --record-bodies), made
    as the engine pulls them (as the synthetic ones are); a structured call gets its response model
    back by its schema's name."""
    from glan_dataset import records
    from glan_dataset.llm import ChatRequest

    for i, body in enumerate(bodies):
        schema_name = (body.get("response_format") or {}).get("json_schema", {}).get("name")
        yield ChatRequest(
            key=f"replay/{i}",
            stage="replay",
            model=body["model"],
            messages=body["messages"],
            temperature=body.get("temperature"),
            top_p=body.get("top_p"),
            max_tokens=body.get("max_tokens") or body.get("max_completion_tokens"),
            sample_index=body.get("seed", 0),
            response_model=getattr(records, schema_name) if schema_name else None,
        )


def child(base_url: str, n: int, concurrency: int, transport: str, bodies_file: str = "") -> dict[str, float]:
    from glan_dataset import eventloop
    from glan_dataset.llm import ChatRequest, ChatResult, EngineConfig, LLMEngine

    prompt = "Write one exam question about the key concepts of this session. " * 8

    def requests(start: int = 0, count: int = n):
        for i in range(start, start + count):
            yield ChatRequest(
                key=f"bench/{i}",
                stage="questions",
                model="gpt-bench",
                temperature=1.0,
                top_p=0.95,
                messages=[
                    {"role": "system", "content": "You are a teacher."},
                    {"role": "user", "content": f"{prompt} (#{i})"},
                ],
                response_model=Question,
            )

    bodies = [json.loads(line) for line in Path(bodies_file).read_text().splitlines()] if transport == "replay" else []
    if bodies:
        n, transport = len(bodies), "direct"

    async def run(run_dir: str, requests: Iterator[Any], count: int) -> int:
        config = EngineConfig(base_url=base_url, concurrency=concurrency, quiet=True, transport=transport)
        ok = 0
        async with LLMEngine(config, run_dir) as engine:
            async for outcome in engine.stream(requests, stage="questions", total=count):
                ok += isinstance(outcome, ChatResult)
        return ok

    with tempfile.TemporaryDirectory() as warm_dir, tempfile.TemporaryDirectory() as run_dir:
        warm_up(base_url, lambda: eventloop.run(run(warm_dir, requests(10**9, WARM_UP), WARM_UP)))
        work = replayed_requests(bodies) if bodies else requests()
        return timed(n, lambda: eventloop.run(run(run_dir, work, n)))


def bare_child(base_url: str, n: int, concurrency: int) -> dict[str, float]:
    """The same bodies through one aiohttp session: POST, read, json.loads. No cache, no validation."""
    import aiohttp

    from glan_dataset import eventloop

    prompt = "Write one exam question about the key concepts of this session. " * 8
    schema = Question.model_json_schema()
    url = base_url.rstrip("/") + "/chat/completions"

    async def run(start: int = 0, count: int = n) -> int:
        ok = 0
        counter = iter(range(start, start + count))
        headers = {"Authorization": "Bearer no-key-needed", "Content-Type": "application/json"}
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def worker() -> None:
                nonlocal ok
                for i in counter:
                    body = {
                        "model": "gpt-bench",
                        "messages": [
                            {"role": "system", "content": "You are a teacher."},
                            {"role": "user", "content": f"{prompt} (#{i})"},
                        ],
                        "seed": 0,
                        "temperature": 1.0,
                        "top_p": 0.95,
                        "response_format": {
                            "type": "json_schema",
                            "json_schema": {"name": "Question", "schema": schema, "strict": True},
                        },
                    }
                    async with session.post(url, data=json.dumps(body).encode(), headers=headers) as response:
                        data = json.loads(await response.read())
                    ok += bool(data["choices"][0]["message"]["content"])

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return ok

    warm_up(base_url, lambda: eventloop.run(run(10**9, WARM_UP)))
    return timed(n, lambda: eventloop.run(run()))


def warm_up(base_url: str, run: Callable[[], int]) -> None:
    """``WARM_UP`` calls before the measured ones, in the same process, then the server's counters
    reset: imports, schema and model building and the first connections are one-off costs, not
    per-call ones (they show in ``glan --help``'s wall time and at the start of a run)."""
    run()
    reset_server(base_url)


def reset_server(url: str) -> None:
    """Zero the loopback server's counters (calls, busy time) before a measured run."""
    urllib.request.urlopen(urllib.request.Request(url + "/_reset", data=b"", method="POST")).read()


def timed(n: int, run: Callable[[], int]) -> dict[str, float]:
    """``run()`` (which makes ``n`` calls and returns how many succeeded) with its wall time, this
    process's CPU time per call and peak RSS."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    ok = run()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "n": n,
        "ok": ok,
        "wall": wall,
        "calls_per_s": n / wall,
        "cpu_ms_per_call": cpu / n * 1000,
        "peak_rss_mb": after.ru_maxrss / 1024,
    }


def generate_child(base_url: str, questions_per_subject: int, concurrency: int) -> dict[str, float]:
    """``glan generate`` as a user runs it: the CLI in a subprocess, every discipline, one subject list
    sample each (the loopback server's lists give ~450 subjects), ``questions_per_subject`` questions."""
    with tempfile.TemporaryDirectory() as run_dir:
        command = [
            *(sys.executable, "-m", "glan_dataset", "generate", "--out", run_dir, "--config", "all"),
            *("--subject-samples", "1", "--questions-per-subject", str(questions_per_subject)),
            *("--concurrency", str(concurrency), "--quiet"),
        ]
        environment = {**os.environ, "OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": "no-key-needed"}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(command, env=environment, cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"glan generate failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "wall": wall,
        "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "peak_rss_mb": after.ru_maxrss / 1024,
    }


def help_wall(repeat: int = 3) -> float:
    """Best wall time of ``python -m glan_dataset --help`` (what ``glan --help`` runs)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "glan_dataset", "--help"], cwd=ROOT, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return min(times)


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of another process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def start_server(latency: float, record_bodies: str | None = None) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "glan_dataset.testing.openai_server", "--port", "0", "--latency", str(latency)]
    process = subprocess.Popen(
        command + (["--record-bodies", record_bodies] if record_bodies else []),
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("listening "):
        process.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    return process, line.split()[1]


def measure(
    server: subprocess.Popen[str],
    url: str,
    n: int,
    concurrency: int,
    transport: str,
    questions_per_subject: int = 0,
    bodies_file: str = "",
) -> dict[str, float]:
    """One run in a fresh child process, with the server's call count, busy time and CPU for that run."""
    reset_server(url)
    server_cpu = process_cpu(server.pid)
    if transport == "generate":
        result = generate_child(url, questions_per_subject, concurrency)
    else:
        command = [sys.executable, __file__, "--child", url, str(n), str(concurrency), transport, bodies_file]
        out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        assert result["ok"] == n, result
    stats = json.load(urllib.request.urlopen(url + "/_stats"))
    calls = result["n"] = stats["chat_calls"]
    assert stats["chat_ok"] == calls, stats
    result["calls_per_s"] = calls / stats["busy_seconds"]
    if transport == "generate":
        result["cpu_ms_per_call"] = result["cpu"] / calls * 1000
    result["server_cpu_ms_per_call"] = (process_cpu(server.pid) - server_cpu) / calls * 1000
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="20000")
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--transport", choices=["aiohttp", "httpx", "direct", "all"], default="direct")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare aiohttp client")
    parser.add_argument(
        "--generate", action="store_true", help="also run glan generate; the engine then makes as many calls"
    )
    parser.add_argument(
        "--questions-per-subject", type=int, default=20, help="glan generate's size (20: ~19,000 calls)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per size; the fastest is shown (shared machines)")
    parser.add_argument("--child", nargs=5, metavar=("URL", "N", "CONC", "TRANSPORT", "BODIES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        url, n, concurrency, transport, bodies_file = args.child
        if transport == "bare":
            print(json.dumps(bare_child(url, int(n), int(concurrency))))
        else:
            print(json.dumps(child(url, int(n), int(concurrency), transport, bodies_file)))
        return

    ideal = args.concurrency / args.latency
    transports = ["aiohttp", "direct", "httpx"] if args.transport == "all" else [args.transport]
    if not args.no_bare:
        transports = ["bare", *transports]
    bodies_file = ""
    if args.generate:
        # the engine's fair comparison is on generate's own requests (long question prompts, conversions
        # with schemas): one unmeasured generate run against a recording server gives them
        transports = ["generate", "replay", *transports]
        bodies_file = str(Path(tempfile.mkdtemp()) / "bodies.jsonl")
        recorder, record_url = start_server(args.latency, record_bodies=bodies_file)
        try:
            generate_child(record_url, args.questions_per_subject, args.concurrency)
        finally:
            recorder.terminate()
            recorder.wait(10)
    server, url = start_server(args.latency)
    print(f"server {url}  latency {args.latency * 1000:.0f} ms  concurrency {args.concurrency}", end="  ")
    print(f"ideal {ideal:,.0f} calls/s")
    header = ("client", "calls", "calls/s", "of ideal", "x bare", "x engine", "CPU ms/call", "peak RSS", "server CPU")
    widths = (7, 8, 8, 6, 8, 11, 9, 10)
    print(f"{header[0]:9} " + " ".join(f"{h:>{w}}" for h, w in zip(header[1:], widths, strict=True)))
    try:
        for n in (int(s) for s in args.sizes.split(",")):
            # interleaved runs (generate, bare, engine, bare, ...) so a noisy neighbour hits all alike;
            # with --generate every other client makes as many calls as generate just made
            runs: dict[str, list[dict[str, float]]] = {t: [] for t in transports}
            for _ in range(max(1, args.repeat)):
                calls = n
                for transport in transports:
                    result = measure(
                        server, url, calls, args.concurrency, transport, args.questions_per_subject, bodies_file
                    )
                    runs[transport].append(result)
                    if transport == "generate":
                        calls = int(result["n"])
            best = {t: max(r, key=lambda r: r["calls_per_s"]) for t, r in runs.items()}
            bare = best.get("bare")
            engine = best.get("replay") or best.get("direct")  # generate is compared on its own requests
            for transport in transports:
                result = best[transport]
                x_bare = f"{result['calls_per_s'] / bare['calls_per_s']:.2f}x" if bare else "-"
                x_engine = f"{result['calls_per_s'] / engine['calls_per_s']:.2f}x" if engine else "-"
                print(
                    f"{transport:9} {result['n']:>7,} {result['calls_per_s']:>8,.0f} {result['calls_per_s'] / ideal:>8.1%} "
                    f"{x_bare:>6} {x_engine:>8} {result['cpu_ms_per_call']:>11.3f} {result['peak_rss_mb']:>7.0f}MB "
                    f"{result['server_cpu_ms_per_call']:>10.2f}"
                )
                if len(runs[transport]) > 1:
                    rates = ", ".join(f"{r['calls_per_s']:,.0f}" for r in runs[transport])
                    print(f"{'':9} every run: {rates} calls/s")
    finally:
        server.terminate()
        server.wait(10)
    print(f"glan --help: {help_wall():.2f} s wall (best of 3)")


if __name__ == "__main__":
    main()
