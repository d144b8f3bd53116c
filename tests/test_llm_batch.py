"""Batch API mode against the loopback server's files and batches endpoints."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest
from pydantic import BaseModel, SecretStr, field_validator
from typer.testing import CliRunner

from glan_dataset.cli.batches import batches_app
from glan_dataset.llm import ChatFailure, ChatRequest, ChatResult, EngineConfig, LLMEngine
from glan_dataset.llm.batch import load_states
from glan_dataset.testing.openai_server import FakeOpenAIServer, FaultPlan

SECRET = "sk-batch-SECRET-777"


class Syllabus(BaseModel):
    title: str
    sessions: list[str]


@pytest.fixture(scope="module")
def server():
    with FakeOpenAIServer(latency=0.0, batch_delay=0.3) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _env(server, monkeypatch):
    server.set_faults(None)
    server.reset_stats()
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)


def config(**overrides) -> EngineConfig:
    values = dict(
        api_key=SecretStr(SECRET),
        mode="batch",
        batch_poll_interval=0.05,
        quiet=True,
        backoff_base=0.01,
        backoff_max=0.05,
        batch_max_requests=40,
    )
    values.update(overrides)
    return EngineConfig(**values)


def requests(n: int) -> list[ChatRequest]:
    return [
        ChatRequest(
            key=f"math/syllabus/{i}",
            stage="syllabus",
            model="gpt-test",
            temperature=1.0,
            messages=[{"role": "user", "content": f"Write the syllabus of course {i}."}],
            response_model=Syllabus,
        )
        for i in range(n)
    ]


def batch_count(server: FakeOpenAIServer) -> int:
    return len(server.batches.batches)


def test_batch_mode_results_cache_and_split(server, tmp_path):
    before = batch_count(server)

    async def main():
        async with LLMEngine(config(), tmp_path) as engine:
            outcomes = [o async for o in engine.stream(requests(100), stage="syllabus", total=100)]
            usage = engine.usage.to_dict()
        async with LLMEngine(config(), tmp_path) as engine:  # everything is cached now
            again = [o async for o in engine.stream(requests(100), stage="syllabus")]
        return outcomes, usage, again

    outcomes, usage, again = asyncio.run(main())
    assert sorted(o.key for o in outcomes) == sorted(r.key for r in requests(100))
    assert all(isinstance(o, ChatResult) and isinstance(o.parsed, Syllabus) for o in outcomes)
    assert batch_count(server) - before == 3  # 40 + 40 + 20 lines
    assert server.stats.chat_calls == 0 and server.stats.batch_requests == 100
    assert usage["session"][0]["batch_calls"] == 100
    assert all(o.cached for o in again) and {o.key: o.text for o in again} == {o.key: o.text for o in outcomes}
    states = load_states(tmp_path / "batches")
    assert all(s.status == "collected" for s in states)
    assert not list((tmp_path / "batches").glob("*.jsonl"))


def test_restart_between_submit_and_completion_resumes_polling(server, tmp_path):
    server.batches.batch_delay = 1.0
    before = batch_count(server)
    try:

        async def first_process():
            engine = LLMEngine(config(batch_poll_interval=0.05), tmp_path)
            task = asyncio.create_task(engine.complete(requests(30), stage="syllabus"))
            while not any(s.batch_id for s in load_states(tmp_path / "batches")):
                await asyncio.sleep(0.02)
            task.cancel()  # the process "dies" after the batch was submitted
            with pytest.raises(asyncio.CancelledError):
                await task
            await engine.aclose()

        asyncio.run(first_process())
        assert batch_count(server) - before == 1
        # worst case: killed between batches.create and saving its id -> adopted through its metadata
        (state_file,) = (tmp_path / "batches").glob("*.json")
        state = json.loads(state_file.read_text())
        state.update(batch_id=None, status="submitting")
        state_file.write_text(json.dumps(state))

        async def second_process():
            async with LLMEngine(config(), tmp_path) as engine:  # a new engine object
                return await engine.complete(requests(30), stage="syllabus")

        outcomes = asyncio.run(second_process())
    finally:
        server.batches.batch_delay = 0.3
    assert batch_count(server) - before == 1  # resumed, not resubmitted
    assert len(outcomes) == 30 and all(isinstance(o, ChatResult) for o in outcomes.values())


class PickySyllabus(Syllabus):
    """Rejects about a third of the fake server's answers, so some batch replies fail validation."""

    @field_validator("title")
    @classmethod
    def _picky(cls, title: str) -> str:
        if len(title) % 3 == 0:
            raise ValueError("title length must not be a multiple of 3")
        return title


def test_item_errors_are_requeued_and_bad_json_reasked_online(server, tmp_path):
    server.set_faults(FaultPlan(rate_batch_item_error=0.2, seed=3))
    before = batch_count(server)
    reqs = [r.model_copy(update={"response_model": PickySyllabus}) for r in requests(60)]

    async def main():
        async with LLMEngine(
            config(batch_max_requests=1000, batch_max_rounds=3, structured_attempts=4), tmp_path
        ) as engine:
            return [o async for o in engine.stream(reqs, stage="syllabus")]

    outcomes = asyncio.run(main())
    keys = [o.key for o in outcomes]
    assert len(keys) == len(set(keys)) == 60
    assert batch_count(server) - before >= 2  # the failed items went into a second batch
    assert server.stats.faults["batch_item_error"] > 0
    assert server.stats.chat_calls > 0  # validation failures were re-asked online
    results = [o for o in outcomes if isinstance(o, ChatResult)]
    failures = [o for o in outcomes if isinstance(o, ChatFailure)]
    assert len(results) >= 50 and all(isinstance(r.parsed, PickySyllabus) for r in results)
    if failures:
        logged = [json.loads(line)["key"] for line in (tmp_path / "failures.jsonl").read_text().splitlines()]
        assert sorted(logged) == sorted(f.key for f in failures)
    with sqlite3.connect(tmp_path / "llm-cache.sqlite") as db:
        for (text,) in db.execute("SELECT text FROM responses"):
            PickySyllabus.model_validate_json(text)


def test_cli_list_and_cancel(server, tmp_path):
    server.batches.batch_delay = 30.0
    try:

        async def submit_only():
            engine = LLMEngine(config(), tmp_path)
            task = asyncio.create_task(engine.complete(requests(10), stage="syllabus"))
            while not any(s.batch_id for s in load_states(tmp_path / "batches")):
                await asyncio.sleep(0.02)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await engine.aclose()

        asyncio.run(submit_only())
        batch_id = load_states(tmp_path / "batches")[0].batch_id
        runner = CliRunner(env={"COLUMNS": "200"})
        listed = runner.invoke(batches_app, ["list", str(tmp_path)])
        assert listed.exit_code == 0, listed.output
        assert batch_id in listed.output and "in_progress" in listed.output
        cancelled = runner.invoke(batches_app, ["cancel", str(tmp_path)])
        assert cancelled.exit_code == 0 and batch_id in cancelled.output
        assert server.batches.batches[batch_id].status in ("cancelling", "cancelled")

        async def rerun():
            async with LLMEngine(config(), tmp_path) as engine:
                return await engine.complete(requests(10), stage="syllabus")

        outcomes = asyncio.run(rerun())  # the cancelled batch's units become failures
        assert all(isinstance(o, ChatFailure) and o.reason == "batch cancelled" for o in outcomes.values())
        for path in tmp_path.rglob("*"):
            if path.is_file():
                assert SECRET.encode() not in path.read_bytes()
        assert SECRET not in listed.output + cancelled.output
    finally:
        server.batches.batch_delay = 0.3


def test_batch_truncation_grows_online_with_a_cap_and_fails_without(server, tmp_path):
    """The batch path judges replies with the same core as the online path: finish_reason "length"
    is never a result; with a cap the unit is asked again online with a larger budget."""

    def plain(n: int, **kw) -> list[ChatRequest]:
        return [
            ChatRequest(
                key=f"q/{i}",
                stage="answers",
                model="gpt-test",
                messages=[{"role": "user", "content": f"Answer question {i} in a few sentences."}],
                **kw,
            )
            for i in range(n)
        ]

    async def main(reqs, run_dir):
        async with LLMEngine(config(), run_dir) as engine:
            return [o async for o in engine.stream(reqs, stage="answers")]

    capped = asyncio.run(main(plain(3, max_tokens=4, max_tokens_cap=4096), tmp_path / "capped"))
    assert all(isinstance(o, ChatResult) for o in capped), capped
    uncapped = asyncio.run(main(plain(3, max_tokens=4), tmp_path / "uncapped"))
    assert all(isinstance(o, ChatFailure) and o.reason.startswith("truncated at 4 tokens") for o in uncapped)
    with sqlite3.connect(tmp_path / "uncapped" / "llm-cache.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 0
