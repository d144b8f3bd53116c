"""The online engine against the loopback server over real sockets: results, cache, structured
output, faults, configuration errors and secrets."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import time
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr

from glan_dataset.errors import ConfigurationError
from glan_dataset.llm import (
    ChatFailure,
    ChatRequest,
    ChatResult,
    EndpointUnreachableError,
    EngineConfig,
    LLMEngine,
    PriceTable,
)
from glan_dataset.testing.openai_server import FakeOpenAIServer, FaultPlan
from tests.helpers import engine_config

SECRET = "sk-test-SECRET-4242-do-not-leak"


class Subject(BaseModel):
    name: str
    level: int


@pytest.fixture(params=["aiohttp", "direct"])
def transport(request) -> str:
    """The SDK path and the direct path must behave the same."""
    return request.param


@pytest.fixture(scope="module")
def server():
    with FakeOpenAIServer(latency=0.0, seed=0) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean(server, monkeypatch):
    server.set_faults(None)
    server.reset_stats()
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def config(server: FakeOpenAIServer, **overrides) -> EngineConfig:
    values = dict(api_key=SecretStr(SECRET), concurrency=32, backoff_max=0.05, timeout=5.0)
    return engine_config(server, **{**values, **overrides})


def requests(n: int, *, structured: bool = True, stage: str = "subjects", **kw) -> list[ChatRequest]:
    return [
        ChatRequest(
            key=f"physics/{stage}/{i}",
            stage=stage,
            model="gpt-test",
            messages=[{"role": "user", "content": f"List subject number {i} of physics."}],
            temperature=1.0,
            top_p=0.95,
            response_model=Subject if structured else None,
            **kw,
        )
        for i in range(n)
    ]


async def collect(engine: LLMEngine, reqs, stage="subjects", **kw) -> list[ChatResult | ChatFailure]:
    return [outcome async for outcome in engine.stream(reqs, stage=stage, **kw)]


def test_stream_results_are_cached_and_replayed(server, transport, tmp_path):
    async def main():
        async with LLMEngine(config(server, transport=transport), tmp_path) as engine:
            first = await collect(engine, requests(50), total=50)
            assert engine.usage.session[("subjects", "gpt-test")].calls == 50
        calls = server.stats.chat_calls
        async with LLMEngine(config(server, transport=transport), tmp_path) as engine:
            second = await collect(engine, requests(50))
            hit = engine.lookup(requests(1)[0])
        return first, calls, second, hit

    first, calls, second, hit = asyncio.run(main())
    assert calls == 50 and server.stats.chat_calls == 50  # the replay sent nothing
    assert all(isinstance(o, ChatResult) and not o.cached for o in first)
    assert all(isinstance(o, ChatResult) and o.cached for o in second)
    assert {o.key: o.text for o in first} == {o.key: o.text for o in second}
    assert all(isinstance(o.parsed, Subject) for o in second)
    assert hit is not None and hit.cached and isinstance(hit.parsed, Subject)


def test_sample_index_and_params_are_in_the_cache_key(server, tmp_path):
    base = requests(1, structured=False)[0]

    async def main():
        async with LLMEngine(config(server), tmp_path) as engine:
            a = await engine.complete([base, base.model_copy(update={"key": "b", "sample_index": 1})], stage="s")
            assert engine.lookup(base.model_copy(update={"temperature": 0.2})) is None
        async with LLMEngine(config(server, cache_ignore_params=True), tmp_path) as engine:
            changed = base.model_copy(update={"temperature": 0.2, "top_p": None, "max_tokens": 99})
            hit = engine.lookup(changed)
        return a, hit

    a, hit = asyncio.run(main())
    assert a[base.key].text != a["b"].text  # different seed -> different sample
    assert hit is not None and hit.text == a[base.key].text


def test_lazy_pull_bounds_units_in_memory(server, tmp_path):
    pulled = 0
    max_ahead = 0

    def endless():
        nonlocal pulled
        for request in requests(400, structured=False):
            pulled += 1
            yield request

    async def main():
        nonlocal max_ahead
        done = 0
        async with LLMEngine(config(server, concurrency=8), tmp_path) as engine:
            async for _ in engine.stream(endless(), stage="subjects"):
                done += 1
                max_ahead = max(max_ahead, pulled - done)
        return done

    assert asyncio.run(main()) == 400
    assert max_ahead <= 2 * 8 + 1


def test_faults_every_unit_done_or_failed_once(server, transport, tmp_path):
    server.set_faults(
        FaultPlan(
            rate_429=0.10,
            retry_after=0.05,
            rate_500=0.05,
            rate_hang=0.02,
            hang_seconds=2,
            rate_invalid_json=0.03,
            rate_truncated=0.02,  # beyond the list: bodies cut short mid-read
            seed=1,
        )
    )
    n, max_attempts = 300, 4
    cfg = config(server, transport=transport, timeout=0.5, max_attempts=max_attempts, concurrency=64)

    async def main():
        async with LLMEngine(cfg, tmp_path) as engine:
            return await collect(engine, requests(n), total=n)

    started = time.monotonic()
    outcomes = asyncio.run(main())
    elapsed = time.monotonic() - started
    keys = [o.key for o in outcomes]
    assert len(keys) == len(set(keys)) == n
    failures = [o for o in outcomes if isinstance(o, ChatFailure)]
    results = [o for o in outcomes if isinstance(o, ChatResult)]
    assert all(isinstance(r.parsed, Subject) and r.text for r in results)
    assert all(1 <= f.attempts <= max_attempts and f.reason for f in failures)
    lines = [json.loads(line) for line in (tmp_path / "failures.jsonl").read_text().splitlines()] if failures else []
    assert sorted(line["key"] for line in lines) == sorted(f.key for f in failures)
    assert server.stats.chat_calls <= n * max_attempts
    assert all(server.stats.faults[kind] for kind in ("429", "500", "hang", "invalid_json", "truncated"))
    with sqlite3.connect(tmp_path / "llm-cache.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == len(results)
    assert elapsed < 30


def test_failed_unit_is_recorded_and_retried_next_run(server, transport, tmp_path):
    server.set_faults(FaultPlan(rate_500=1.0))

    async def main():
        async with LLMEngine(config(server, transport=transport, max_attempts=2), tmp_path) as engine:
            failed = await collect(engine, requests(3))
        server.set_faults(None)
        async with LLMEngine(config(server, transport=transport, max_attempts=2), tmp_path) as engine:
            again = await collect(engine, requests(3))
        return failed, again

    failed, again = asyncio.run(main())
    assert all(isinstance(o, ChatFailure) and o.attempts == 2 and "500" in o.reason for o in failed)
    lines = (tmp_path / "failures.jsonl").read_text().splitlines()
    assert len(lines) == 3 and set(json.loads(lines[0])) == {"stage", "key", "reason", "kind", "attempts", "time"}
    assert all(isinstance(o, ChatResult) and not o.cached for o in again)


def test_invalid_structured_output_is_reasked_with_the_error(server, tmp_path):
    server.set_faults(FaultPlan(rate_invalid_json=1.0))

    async def main():
        async with LLMEngine(config(server, structured_attempts=2, max_attempts=6), tmp_path) as engine:
            return await collect(engine, requests(5))

    outcomes = asyncio.run(main())
    assert server.stats.chat_calls <= 10  # at most two asks each, bounded by structured_attempts
    failures = [o for o in outcomes if isinstance(o, ChatFailure)]
    assert failures and all(o.attempts == 2 and o.reason.startswith("invalid structured output") for o in failures)
    # a Markdown-fenced JSON reply is accepted as the JSON inside the fence
    assert all(
        isinstance(o.parsed, Subject) and not o.text.startswith("`") for o in outcomes if isinstance(o, ChatResult)
    )
    with sqlite3.connect(tmp_path / "llm-cache.sqlite") as db:
        cached = db.execute("SELECT text FROM responses").fetchall()
    for (text,) in cached:  # only valid replies are cached
        Subject.model_validate_json(text)


def test_missing_key_and_base_url_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        LLMEngine(EngineConfig(), tmp_path)


def test_base_url_without_key_uses_a_placeholder(server, tmp_path):
    async def main():
        async with LLMEngine(EngineConfig(base_url=server.base_url, quiet=True), tmp_path) as engine:
            return await collect(engine, requests(2, structured=False))

    assert all(isinstance(o, ChatResult) for o in asyncio.run(main()))


def test_unreachable_endpoint_raises_fast(transport, tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    cfg = EngineConfig(
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key=SecretStr(SECRET),
        quiet=True,
        max_attempts=3,
        backoff_base=0.01,
        backoff_max=0.02,
        transport=transport,
    )

    async def main():
        async with LLMEngine(cfg, tmp_path) as engine:
            await collect(engine, requests(20))

    started = time.monotonic()
    with pytest.raises(EndpointUnreachableError) as caught:
        asyncio.run(main())
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message and "same command" in message and SECRET not in message
    assert not (tmp_path / "failures.jsonl").exists()


def test_bad_request_fails_the_unit_without_retries(server, transport, tmp_path):
    bad = ChatRequest(key="bad", stage="s", model="gpt-test", messages=[])

    async def main():
        async with LLMEngine(config(server, transport=transport), tmp_path) as engine:
            return await collect(engine, [bad, *requests(2, structured=False)], stage="s")

    outcomes = {o.key: o for o in asyncio.run(main())}
    assert (
        isinstance(outcomes["bad"], ChatFailure) and outcomes["bad"].attempts == 1 and "400" in outcomes["bad"].reason
    )
    assert sum(isinstance(o, ChatResult) for o in outcomes.values()) == 2


def test_usage_and_cost_are_cumulative_across_runs(server, tmp_path):
    prices = PriceTable.parse(["gpt-test=2/8"])

    async def main():
        async with LLMEngine(config(server, prices=prices), tmp_path) as engine:
            await collect(engine, requests(10))
            first = engine.usage.to_dict()
        async with LLMEngine(config(server, prices=prices), tmp_path) as engine:
            await collect(engine, requests(20))
            return first, engine.usage.to_dict(), engine.summary()

    first, second, summary = asyncio.run(main())
    assert first["session_cost_usd"] > 0
    assert second["session"][0]["calls"] == 10 and second["session"][0]["cache_hits"] == 10
    assert second["cumulative"][0]["calls"] == 20
    assert second["cumulative_cost_usd"] == pytest.approx(2 * first["session_cost_usd"], rel=0.3)
    assert summary is not None


def test_secret_never_written_or_shown(server, transport, tmp_path, capsys, caplog):
    server.set_faults(FaultPlan(rate_500=1.0))
    caplog.set_level("DEBUG")

    async def main():
        cfg = config(server, transport=transport, max_attempts=2, quiet=False)
        async with LLMEngine(cfg, tmp_path) as engine:
            await collect(engine, requests(3))
            text = repr(engine) + repr(cfg) + str(cfg.model_dump()) + repr(engine.usage.to_dict())
        return text

    text = asyncio.run(main())
    captured = capsys.readouterr()
    assert SECRET not in text + captured.out + captured.err + caplog.text
    for path in Path(tmp_path).rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
