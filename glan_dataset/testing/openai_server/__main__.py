"""``python -m glan_dataset.testing.openai_server``: serve until SIGTERM/SIGINT.

Prints exactly one line, ``listening http://HOST:PORT/v1``, once the port accepts
connections, so a parent process (benchmark, test) can read the URL from stdout.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from .faults import FaultPlan
from .server import FakeOpenAIServer


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m glan_dataset.testing.openai_server",
        description="Loopback OpenAI-compatible server (deterministic fake answers).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every chat request")
    parser.add_argument("--seed", type=int, default=0, help="content seed")
    parser.add_argument("--batch-delay", type=float, default=0.2, help="seconds a batch takes to complete")
    parser.add_argument("--ratelimit-headers", action="store_true", help="send x-ratelimit-* headers")
    parser.add_argument("--demo", action="store_true", help="mark every generated text as a demo placeholder")
    parser.add_argument("--record", action="store_true", help="keep a (model, messages sha) log in the stats")
    parser.add_argument("--record-bodies", metavar="FILE", help="append every chat request body to FILE (JSON lines)")
    faults = parser.add_argument_group("faults (per-request probabilities)")
    for name in (
        "429",
        "500",
        "503",
        "hang",
        "invalid-json",
        "truncated",
        "length",
        "refusal",
        "content-filter",
        "think",
        "reasoning",
        "drip",
        "echo-key",
        "batch-item-error",
    ):
        faults.add_argument(f"--rate-{name}", type=float, default=0.0)
    faults.add_argument("--drip-interval", type=float, default=0.5, help="seconds between bytes of a drip body")
    faults.add_argument("--retry-after", type=float, default=0.05, help="Retry-After seconds on 429")
    faults.add_argument("--hang-seconds", type=float, default=30.0)
    faults.add_argument("--fault-seed", type=int, default=0)
    return parser


def plan_from_args(args: argparse.Namespace) -> FaultPlan | None:
    """A FaultPlan when any rate is set, else None (no per-request draw at all)."""
    plan = FaultPlan(
        rate_429=args.rate_429,
        retry_after=args.retry_after,
        rate_500=args.rate_500,
        rate_503=args.rate_503,
        rate_hang=args.rate_hang,
        hang_seconds=args.hang_seconds,
        rate_invalid_json=args.rate_invalid_json,
        rate_truncated=args.rate_truncated,
        rate_length=args.rate_length,
        rate_refusal=args.rate_refusal,
        rate_content_filter=args.rate_content_filter,
        rate_think=args.rate_think,
        rate_reasoning=args.rate_reasoning,
        rate_drip=args.rate_drip,
        drip_interval=args.drip_interval,
        rate_echo_key=args.rate_echo_key,
        rate_batch_item_error=args.rate_batch_item_error,
        seed=args.fault_seed,
    )
    quiet = FaultPlan(
        retry_after=plan.retry_after, hang_seconds=plan.hang_seconds, drip_interval=plan.drip_interval, seed=plan.seed
    )
    return plan if plan != quiet else None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    server = FakeOpenAIServer(
        latency=args.latency,
        faults=plan_from_args(args),
        seed=args.seed,
        host=args.host,
        port=args.port,
        batch_delay=args.batch_delay,
        ratelimit_headers=args.ratelimit_headers,
        demo=args.demo,
        record=args.record,
        record_bodies=args.record_bodies,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    print(f"listening {server.base_url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
