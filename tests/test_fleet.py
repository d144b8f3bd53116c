"""A fleet of endpoints (--base-url given several times): load by least outstanding, a dead endpoint
out of rotation and probed back in, per-endpoint 429 handling, per-endpoint figures in the summary."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import polars as pl
import pytest
from rich.console import Console

from glan_dataset import flows
from glan_dataset.errors import UsageError
from glan_dataset.llm.fleet import PROBE_FIRST, Fleet, read_base_urls
from glan_dataset.testing.openai_server import FakeOpenAIServer, FaultPlan
from tests.helpers import TINY_TAXONOMY, engine_config, tiny_settings

PAYLOAD = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hello"}]}).encode()
SETTINGS = {"config": "physics", "max_subjects": 6, "questions_per_subject": 6}


def records(run: Path) -> list[tuple[str, str, str]]:
    frame = pl.read_parquet(run / "records" / "physics.parquet")
    return list(zip(frame["id"], frame["question"], frame["answer"], strict=True))


def test_three_endpoints_one_killed_mid_run_finish_on_the_live_ones(tmp_path: Path) -> None:
    with FakeOpenAIServer() as single:
        flows.generate(tmp_path / "one", tiny_settings(**SETTINGS), engine_config(single), taxonomy_path=TINY_TAXONOMY)
        expected, total = records(tmp_path / "one"), single.stats.chat_calls

    servers = [FakeOpenAIServer(latency=0.03).start() for _ in range(3)]
    try:
        urls = [s.base_url for s in servers]
        config = engine_config(servers[0], base_urls=urls, concurrency=12)
        at_kill: list[int] = []

        def kill_the_second() -> None:
            while sum(s.stats.chat_calls for s in servers) < total // 3:
                time.sleep(0.01)
            servers[1].stop()  # then count: a call that lands between a count and the stop is not "after"
            at_kill.extend(s.stats.chat_calls for s in servers)

        killer = threading.Thread(target=kill_the_second)
        killer.start()
        flows.generate(tmp_path / "fleet", tiny_settings(**SETTINGS), config, taxonomy_path=TINY_TAXONOMY)
        killer.join()
        assert records(tmp_path / "fleet") == expected  # nothing lost, same texts
        assert (
            not (tmp_path / "fleet" / "failures.jsonl").exists()
            or not (tmp_path / "fleet" / "failures.jsonl").read_text()
        )
        assert all(n > 0 for n in at_kill)  # all three shared the load before the kill
        after = [s.stats.chat_calls - n for s, n in zip(servers, at_kill, strict=True)]
        assert after[1] == 0
        assert min(after[0], after[2]) >= 0.3 * (after[0] + after[2])  # spread over the two live ones
    finally:
        for server in servers:
            server.stop()


def test_a_dead_endpoint_is_probed_back_in_and_the_summary_shows_each_endpoint() -> None:
    with FakeOpenAIServer() as one, FakeOpenAIServer() as two:

        async def scenario() -> Fleet:
            fleet = Fleet([one.base_url, two.base_url], "key", timeout=5, concurrency=4)
            try:
                two.stop()
                await asyncio.gather(*(fleet.post(PAYLOAD) for _ in range(10)))
                assert fleet.endpoints[1].dead and fleet.endpoints[1].errors >= 1
                two.start()  # the same port again
                await asyncio.sleep(PROBE_FIRST + 0.1)
                await asyncio.gather(*(fleet.post(PAYLOAD) for _ in range(20)))
                assert not fleet.endpoints[1].dead
            finally:
                await fleet.aclose()
            return fleet

        fleet = asyncio.run(scenario())
        assert two.stats.chat_calls > 0 and one.stats.chat_calls + two.stats.chat_calls == 30
        console = Console(record=True, width=200)
        console.print(fleet.summary())
        text = console.export_text()
        assert one.base_url in text and two.base_url in text and "live" in text
        assert fleet.endpoints[0].completion_tokens > 0


def test_an_endpoint_answering_429_is_paused_and_its_requests_go_elsewhere() -> None:
    plan = FaultPlan(rate_429=1.0, retry_after=30.0)
    with FakeOpenAIServer(faults=plan) as limited, FakeOpenAIServer() as free:

        async def scenario() -> Fleet:
            fleet = Fleet([limited.base_url, free.base_url], "key", timeout=5, concurrency=4)
            try:
                await asyncio.gather(*(fleet.post(PAYLOAD) for _ in range(20)))
            finally:
                await fleet.aclose()
            return fleet

        fleet = asyncio.run(scenario())
        assert free.stats.chat_ok == 20  # every request answered, none failed
        assert 1 <= limited.stats.chat_calls <= 4  # at most the first wave, then paused for Retry-After
        assert fleet.endpoints[0].concurrency.limit < 4


def test_base_urls_from_flags_and_files(tmp_path: Path) -> None:
    listing = tmp_path / "urls.txt"
    listing.write_text("# GPU servers\nhttp://a:8000/v1\n\nhttp://b:8000/v1  # second\n")
    assert read_base_urls(["http://x/v1", str(listing), "http://a:8000/v1"]) == [
        "http://x/v1", "http://a:8000/v1", "http://b:8000/v1",
    ]  # fmt: skip
    with pytest.raises(UsageError, match="expected an http"):
        read_base_urls(["localhost:8000"])
