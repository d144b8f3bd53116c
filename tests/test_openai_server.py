"""The loopback OpenAI-compatible server, exercised through the real ``openai`` client."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import openai
import pydantic
import pytest
from openai import DefaultAioHttpClient
from pydantic import BaseModel, Field

from glan_dataset.testing.openai_server import DEMO_MARKER, FakeOpenAIServer, FaultPlan, ServerStats
from glan_dataset.testing.openai_server.schema_faker import GenContext, SchemaFaker
from glan_dataset.testing.openai_server.text import TextMaker

ROOT = Path(__file__).resolve().parents[1]
USER = [{"role": "user", "content": "List 8 subjects of Physics, such as quantum optics"}]


class Session(BaseModel):
    name: str
    description: str
    key_concepts: list[str] = Field(min_length=3, max_length=6)
    hours: int = Field(ge=1, le=4)


class Syllabus(BaseModel):
    subject: str
    level: Literal["undergraduate", "graduate"]
    sessions: list[Session]
    prerequisites: list[str] | None = None
    weight: float = Field(gt=0, lt=1)


class Subjects(BaseModel):
    subjects: list[str]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(seed=1, ratelimit_headers=True, record=True) as srv:
        yield srv


@pytest.fixture()
def client(server: FakeOpenAIServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)


def _chat(client: openai.OpenAI, **kwargs: Any) -> str:
    response = client.chat.completions.create(model="gpt-4o-mini", messages=USER, **kwargs)
    return response.choices[0].message.content or ""


# -- chat completions --------------------------------------------------------------------


def test_plain_chat_is_a_readable_numbered_list_with_usage_and_headers(
    server: FakeOpenAIServer, client: openai.OpenAI
) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=USER)
    completion = raw.parse()
    assert raw.headers["x-request-id"].startswith("req_")
    assert int(raw.headers["x-ratelimit-limit-requests"]) >= int(raw.headers["x-ratelimit-remaining-requests"])
    assert completion.model == "gpt-4o-mini" and completion.object == "chat.completion"
    assert completion.choices[0].finish_reason == "stop"
    lines = (completion.choices[0].message.content or "").splitlines()
    assert [line.split(".")[0] for line in lines] == [str(i) for i in range(1, 9)]
    assert len({line.split(":")[0] for line in lines}) == 8, "list items must be distinct"
    assert "Physics" in completion.choices[0].message.content or "Optics" in completion.choices[0].message.content
    usage = completion.usage
    assert usage and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_prose_answer_without_list_request(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Explain entropy in thermodynamics."}]
    )
    text = response.choices[0].message.content or ""
    assert text.count(".") >= 5 and "\n\n" in text


def test_same_body_same_answer_and_seed_varies_it(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    first = client.chat.completions.create(model="gpt-4o-mini", messages=USER, seed=7)
    again = client.chat.completions.create(model="gpt-4o-mini", messages=USER, seed=7)
    other = client.chat.completions.create(model="gpt-4o-mini", messages=USER, seed=8)
    assert first.choices[0].message.content == again.choices[0].message.content
    assert first.id == again.id
    assert first.choices[0].message.content != other.choices[0].message.content
    with FakeOpenAIServer(seed=2) as other_server:
        other_client = openai.OpenAI(base_url=other_server.base_url, api_key="t", max_retries=0)
        assert _chat(other_client, seed=7) != first.choices[0].message.content


def test_parse_nested_pydantic_models_is_valid_and_varied(client: openai.OpenAI) -> None:
    seen_subjects = set()
    for seed in range(10):
        completion = client.chat.completions.parse(
            model="gpt-4o",
            seed=seed,
            response_format=Syllabus,
            messages=[{"role": "user", "content": "Design a syllabus for Quantum Optics"}],
        )
        syllabus = completion.choices[0].message.parsed
        assert isinstance(syllabus, Syllabus)
        seen_subjects.add(syllabus.subject)
        assert 3 <= len(syllabus.sessions) <= 6
        names = [s.name for s in syllabus.sessions]
        assert len(set(names)) == len(names)
        for session in syllabus.sessions:
            assert len(set(session.key_concepts)) == len(session.key_concepts)
            assert session.description.endswith(".")
    assert len(seen_subjects) >= 8
    assert any("Optics" in s or "Quantum" in s for s in seen_subjects)


def test_list_of_subjects_uses_prompt_words_and_is_distinct(client: openai.OpenAI) -> None:
    parsed = (
        client.chat.completions.parse(
            model="gpt-4o",
            response_format=Subjects,
            messages=[{"role": "user", "content": "Subjects of the discipline Physics"}],
        )
        .choices[0]
        .message.parsed
    )
    assert parsed is not None
    assert 3 <= len(parsed.subjects) <= 6 and len(set(parsed.subjects)) == len(parsed.subjects)
    assert all(s[0].isupper() and " " in s or s.istitle() for s in parsed.subjects)


def test_async_aiohttp_client_and_stats(server: FakeOpenAIServer) -> None:
    server.reset_stats()

    async def run() -> list[str]:
        async with openai.AsyncOpenAI(
            base_url=server.base_url, api_key="t", max_retries=0, http_client=DefaultAioHttpClient()
        ) as aclient:
            results = await asyncio.gather(
                *(aclient.chat.completions.create(model="gpt-4.1", messages=USER, seed=i) for i in range(40))
            )
        return [r.choices[0].message.content or "" for r in results]

    contents = asyncio.run(run())
    assert len(set(contents)) == 40
    stats = server.stats.snapshot()
    assert stats.chat_calls == stats.chat_ok == 40 and stats.by_model["gpt-4.1"] == 40
    assert stats.requests_log is not None and len(stats.requests_log) == 40
    assert len({sha for _, sha in stats.requests_log}) == 1  # same messages, different seeds
    # busy time spans the calls (what bench/engine.py divides by), and a reset clears it
    assert stats.busy_seconds is not None and 0 < stats.busy_seconds < 30
    assert server.stats.to_dict()["busy_seconds"] == pytest.approx(stats.busy_seconds, abs=1e-3)
    server.reset_stats()
    assert server.stats.to_dict()["busy_seconds"] is None


def test_json_object_and_token_limit(client: openai.OpenAI) -> None:
    content = _chat(client, response_format={"type": "json_object"})
    assert isinstance(json.loads(content), dict)
    cut = client.chat.completions.create(model="m", messages=USER, max_tokens=5)
    assert cut.choices[0].finish_reason == "length" and cut.usage and cut.usage.completion_tokens <= 7
    with pytest.raises(openai.LengthFinishReasonError):
        client.chat.completions.parse(model="m", messages=USER, response_format=Syllabus, max_tokens=10)


def test_schema_faker_supports_refs_recursion_patterns_formats_and_bounds() -> None:
    class Node(BaseModel):
        label: str = Field(max_length=24)
        code: str = Field(pattern=r"^[a-z]+-[0-9]{3}$")
        children: list[Node] = Field(max_length=2)
        parent: Node | None = None

    class Everything(BaseModel):
        tree: Node
        when: dt.datetime
        day: dt.date
        ident: uuid.UUID
        scores: dict[str, int]
        ratio: float = Field(gt=0.5, le=0.6)
        step: int = Field(gt=10, lt=13, multiple_of=2)
        tags: list[Literal["a", "b", "c"]] = Field(min_length=1, max_length=3)
        fixed: Literal["only"]
        flag: bool
        nothing: None
        summary: str = Field(min_length=80, description="A detailed paragraph")

    schema = openai.lib._pydantic.to_strict_json_schema(Everything)
    faker = SchemaFaker(schema)
    for seed in range(30):
        from random import Random

        rng = Random(seed)
        value = faker.generate(GenContext(rng, TextMaker(rng, ("Physics", "Optics"))))
        parsed = Everything.model_validate(value)
        assert parsed.step == 12 and parsed.fixed == "only"
        assert len(parsed.tree.label) <= 24 and len(parsed.summary) >= 80


def test_demo_marker_on_text_and_json_strings() -> None:
    with FakeOpenAIServer(demo=True) as srv:
        demo_client = openai.OpenAI(base_url=srv.base_url, api_key="t", max_retries=0)
        assert _chat(demo_client).startswith(f"{DEMO_MARKER} ")
        parsed = demo_client.chat.completions.parse(model="m", messages=USER, response_format=Syllabus)
        syllabus = parsed.choices[0].message.parsed
        assert syllabus is not None
        assert syllabus.subject.startswith(DEMO_MARKER)
        assert all(s.description.startswith(DEMO_MARKER) for s in syllabus.sessions)


def test_errors_are_openai_shaped(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="m", messages=[])
    request = urllib.request.Request(
        f"{server.base_url}/chat/completions",
        data=b"{not json",
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as bad:
        urllib.request.urlopen(request, timeout=5)
    assert bad.value.code == 400 and "error" in json.loads(bad.value.read())
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{server.base_url}/nope", timeout=5)
    assert missing.value.code == 404 and json.loads(missing.value.read())["error"]["type"]
    assert {m.id for m in client.models.list()} >= {"gpt-4o", "gpt-4o-mini"}


# -- faults ------------------------------------------------------------------------------


def _fault_client(srv: FakeOpenAIServer, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.base_url, api_key="t", **{"max_retries": 0, **kwargs})


def test_fault_rates_and_error_classes() -> None:
    plan = FaultPlan(rate_429=0.15, rate_500=0.1, rate_503=0.1, seed=3)
    with FakeOpenAIServer(faults=plan) as srv:

        async def run() -> list[BaseException | None]:
            async with openai.AsyncOpenAI(
                base_url=srv.base_url, api_key="t", max_retries=0, http_client=DefaultAioHttpClient()
            ) as aclient:

                async def one(i: int) -> BaseException | None:
                    try:
                        await aclient.chat.completions.create(model="m", messages=USER, seed=i)
                    except openai.APIError as exc:
                        return exc
                    return None

                return await asyncio.gather(*(one(i) for i in range(400)))

        outcomes = asyncio.run(run())
        stats = srv.stats.snapshot()
    n429 = sum(isinstance(o, openai.RateLimitError) for o in outcomes)
    n5xx = sum(isinstance(o, openai.InternalServerError) for o in outcomes)
    assert n429 == stats.faults["429"] and 40 <= n429 <= 80
    assert n5xx == stats.faults["500"] + stats.faults["503"] and 55 <= n5xx <= 110
    assert stats.chat_ok == outcomes.count(None) == 400 - n429 - n5xx
    assert stats.chat_calls == 400


def test_429_carries_retry_after_and_client_honours_it() -> None:
    with FakeOpenAIServer(faults=FaultPlan(rate_429=1.0, retry_after=0.25)) as srv:
        with pytest.raises(openai.RateLimitError) as caught:
            _fault_client(srv).chat.completions.create(model="m", messages=USER)
        assert caught.value.response.headers["retry-after-ms"] == "250"
        assert float(caught.value.response.headers["retry-after"]) == 0.25
        assert caught.value.code == "rate_limit_exceeded"
        start = time.monotonic()
        with pytest.raises(openai.RateLimitError):
            _fault_client(srv, max_retries=2).chat.completions.create(model="m", messages=USER)
        assert time.monotonic() - start >= 0.5
        assert srv.stats.chat_calls == 4
    with FakeOpenAIServer(faults=FaultPlan(rate_429=0.3, retry_after=0.01, seed=2)) as srv:
        retrying = _fault_client(srv, max_retries=10)
        assert all(_chat(retrying, seed=i) for i in range(20))
        assert srv.stats.chat_ok == 20 and srv.stats.faults["429"] > 0


def test_hang_times_out_client() -> None:
    with FakeOpenAIServer(faults=FaultPlan(rate_hang=1.0, hang_seconds=5)) as srv:
        start = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            _fault_client(srv, timeout=0.2).chat.completions.create(model="m", messages=USER)
        assert time.monotonic() - start < 2 and srv.stats.faults["hang"] == 1
    with FakeOpenAIServer(faults=FaultPlan(rate_hang=1.0, hang_seconds=0.05)) as srv:
        assert _chat(_fault_client(srv))  # a short hang then a normal answer


def test_truncated_body_is_a_connection_error_for_both_transports() -> None:
    with FakeOpenAIServer(faults=FaultPlan(rate_truncated=1.0)) as srv:
        with pytest.raises(openai.APIConnectionError) as sync_error:
            _fault_client(srv).chat.completions.create(model="m", messages=USER)
        assert not isinstance(sync_error.value, openai.APITimeoutError)

        async def run() -> None:
            async with openai.AsyncOpenAI(
                base_url=srv.base_url, api_key="t", max_retries=0, http_client=DefaultAioHttpClient()
            ) as aclient:
                with pytest.raises(openai.APIConnectionError) as async_error:
                    await aclient.chat.completions.create(model="m", messages=USER)
                assert not isinstance(async_error.value, openai.APITimeoutError)

        asyncio.run(run())
        assert srv.stats.faults["truncated"] == 2 and srv.stats.chat_ok == 0


def test_invalid_json_only_for_structured_requests() -> None:
    with FakeOpenAIServer(faults=FaultPlan(rate_invalid_json=1.0)) as srv:
        fault_client = _fault_client(srv)
        for seed in range(6):
            with pytest.raises(pydantic.ValidationError):
                fault_client.chat.completions.parse(model="m", messages=USER, response_format=Syllabus, seed=seed)
        assert _chat(fault_client)  # plain text is unaffected and not counted
        assert srv.stats.faults["invalid_json"] == 6
        srv.set_faults(None)
        assert fault_client.chat.completions.parse(model="m", messages=USER, response_format=Syllabus)


# -- Batch API ----------------------------------------------------------------------------


def _batch_file(client: openai.OpenAI, count: int, prefix: str = "r") -> str:
    lines = [
        json.dumps(
            {
                "custom_id": f"{prefix}{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "gpt-4o-mini", "seed": i, "messages": USER},
            }
        )
        for i in range(count)
    ]
    return client.files.create(file=("requests.jsonl", "\n".join(lines).encode()), purpose="batch").id


def _wait(client: openai.OpenAI, batch_id: str, statuses: tuple[str, ...]) -> Any:
    for _ in range(200):
        batch = client.batches.retrieve(batch_id)
        if batch.status in statuses:
            return batch
        time.sleep(0.02)
    raise AssertionError(f"batch stuck in {batch.status}")


def test_batch_round_trip_with_item_errors_and_resume() -> None:
    with FakeOpenAIServer(batch_delay=0.2, faults=FaultPlan(rate_batch_item_error=0.2, seed=5)) as srv:
        first_client = _fault_client(srv)
        file_id = _batch_file(first_client, 60)
        batch = first_client.batches.create(
            input_file_id=file_id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={"stage": "answers"},
        )
        assert batch.status == "validating" and batch.request_counts and batch.request_counts.total == 60
        first_client.close()
        resumed = _fault_client(srv)  # a "restarted" client polls the same id
        done = _wait(resumed, batch.id, ("completed",))
        counts = done.request_counts
        assert counts and counts.completed + counts.failed == 60 and 3 <= counts.failed <= 25
        assert done.metadata == {"stage": "answers"} and done.usage and done.usage.total_tokens > 0
        outputs = [json.loads(line) for line in resumed.files.content(done.output_file_id).text.splitlines()]
        errors = [json.loads(line) for line in resumed.files.content(done.error_file_id).text.splitlines()]
        assert len(outputs) == counts.completed and len(errors) == counts.failed
        assert all(o["response"]["status_code"] == 200 and o["error"] is None for o in outputs)
        assert all(e["error"] or e["response"]["status_code"] == 500 for e in errors)
        assert srv.stats.batch_requests == 60 and srv.stats.faults["batch_item_error"] == counts.failed
        # a batch item gets the same answer as the same body sent directly
        item = outputs[0]
        seed = int(item["custom_id"][1:])
        direct = resumed.chat.completions.create(model="gpt-4o-mini", messages=USER, seed=seed)
        assert item["response"]["body"]["choices"][0]["message"]["content"] == direct.choices[0].message.content
        assert resumed.files.retrieve(file_id).bytes > 0
        assert resumed.files.delete(file_id).deleted


def test_batch_cancel_keeps_partial_output_and_list_paginates() -> None:
    with FakeOpenAIServer(batch_delay=0.5) as srv:
        client = _fault_client(srv)
        file_id = _batch_file(client, 100)
        batch = client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
        time.sleep(0.15)
        assert client.batches.retrieve(batch.id).status == "in_progress"
        assert client.batches.cancel(batch.id).status == "cancelling"
        cancelled = _wait(client, batch.id, ("cancelled",))
        assert cancelled.request_counts and 0 < cancelled.request_counts.completed < 100
        partial = client.files.content(cancelled.output_file_id).text.splitlines()
        assert len(partial) == cancelled.request_counts.completed
        ids = [
            client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h").id
            for _ in range(3)
        ]
        page = client.batches.list(limit=2)
        assert [b.id for b in page.data] == ids[::-1][:2] and page.has_more
        assert [b.id for b in client.batches.list(limit=2)] == [*ids[::-1], batch.id]  # auto-pagination
        assert [b.id for b in client.batches.list(after=ids[1])] == [ids[0], batch.id]


def test_batch_validation() -> None:
    with FakeOpenAIServer(batch_delay=0.05) as srv:
        client = _fault_client(srv)
        good = _batch_file(client, 2)
        with pytest.raises(openai.BadRequestError):
            client.batches.create(input_file_id=good, endpoint="/v1/embeddings", completion_window="24h")
        with pytest.raises(openai.NotFoundError):
            client.batches.create(
                input_file_id="file-missing", endpoint="/v1/chat/completions", completion_window="24h"
            )
        bad = client.files.create(
            file=("bad.jsonl", b'{"custom_id": "a", "method": "POST", "url": "/v1/x", "body": {}}\nnot json\n'),
            purpose="batch",
        )
        failed = client.batches.create(input_file_id=bad.id, endpoint="/v1/chat/completions", completion_window="24h")
        failed = _wait(client, failed.id, ("failed",))
        assert failed.errors and [e.code for e in failed.errors.data or []] == [
            "mismatched_endpoint",
            "invalid_json_line",
        ]


# -- process mode ---------------------------------------------------------------------------


def test_subprocess_mode_prints_listening_line_and_serves_stats(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    bodies = tmp_path / "bodies.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "glan_dataset.testing.openai_server",
            "--port",
            "0",
            "--latency",
            "0.01",
            "--rate-500",
            "0.0",
            "--record-bodies",
            str(bodies),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("listening http://127.0.0.1:") and line.endswith("/v1")
        base_url = line.split(" ", 1)[1]
        sub_client = openai.OpenAI(base_url=base_url, api_key="t", max_retries=0)
        assert _chat(sub_client)
        stats = ServerStats.from_dict(json.load(urllib.request.urlopen(f"{base_url}/_stats", timeout=5)))
        assert stats.chat_calls == stats.chat_ok == 1
        faults = json.dumps({"rate_503": 1.0}).encode()
        urllib.request.urlopen(urllib.request.Request(f"{base_url}/_faults", data=faults, method="POST"), timeout=5)
        with pytest.raises(openai.InternalServerError):
            _chat(sub_client)
        urllib.request.urlopen(urllib.request.Request(f"{base_url}/_reset", data=b"", method="POST"), timeout=5)
        assert json.load(urllib.request.urlopen(f"{base_url}/_stats", timeout=5))["chat_calls"] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stdout is not None and proc.stdout.read() == ""
    # every chat body as the client sent it, one JSON line each (bench/engine.py replays them)
    recorded = [json.loads(line) for line in bodies.read_text().splitlines()]
    assert len(recorded) == 2 and all(body["messages"] == USER for body in recorded)


# -- what real models and servers do (FaultPlan's model faults) ----------------------------


def _raw(srv: FakeOpenAIServer, **kwargs: Any) -> dict[str, Any]:
    return _fault_client(srv).chat.completions.create(model="gpt-4o-mini", messages=USER, **kwargs).model_dump()


def test_model_faults_look_like_real_model_replies() -> None:
    with FakeOpenAIServer() as srv:
        full = _raw(srv)["choices"][0]["message"]["content"]
        srv.set_faults(FaultPlan(rate_length=1.0))
        cut = _raw(srv)["choices"][0]
        assert cut["finish_reason"] == "length" and full.startswith(cut["message"]["content"])
        assert len(cut["message"]["content"]) < len(full)
        srv.set_faults(FaultPlan(rate_refusal=1.0))
        assert _raw(srv)["choices"][0]["message"]["content"].startswith("I'm sorry, but I can't")
        structured = _raw(srv, response_format={"type": "json_object"})["choices"][0]["message"]
        assert structured["content"] is None and structured["refusal"].startswith("I'm sorry")
        srv.set_faults(FaultPlan(rate_content_filter=1.0))
        filtered = _raw(srv)["choices"][0]
        assert filtered["finish_reason"] == "content_filter" and filtered["message"]["content"] is None
        srv.set_faults(FaultPlan(rate_think=1.0))
        thought = _raw(srv)["choices"][0]["message"]["content"]
        assert thought.startswith("<think>") and thought.endswith(full)
        srv.set_faults(FaultPlan(rate_reasoning=1.0))
        reasoned = _raw(srv)
        assert reasoned["choices"][0]["message"]["content"] == full
        assert reasoned["choices"][0]["message"]["reasoning_content"]
        assert reasoned["usage"]["completion_tokens_details"]["reasoning_tokens"] == 60
        assert srv.stats.faults["length"] == srv.stats.faults["think"] == srv.stats.faults["reasoning"] == 1


def test_drip_sends_the_body_a_byte_at_a_time_and_echo_key_quotes_the_header() -> None:
    with FakeOpenAIServer(faults=FaultPlan(rate_drip=1.0, drip_interval=0.001)) as srv:
        start = time.monotonic()
        assert _chat(_fault_client(srv, timeout=30))  # complete, only slow
        assert time.monotonic() - start > 0.2  # hundreds of bytes, one per write
        srv.set_faults(FaultPlan(rate_echo_key=1.0))
        client = openai.OpenAI(base_url=srv.base_url, api_key="sk-echo-me", max_retries=0)
        with pytest.raises(openai.BadRequestError) as error:
            client.chat.completions.create(model="m", messages=USER)
        assert "Bearer sk-echo-me" in str(error.value)


class Titled(BaseModel):
    title: str = Field(max_length=40)


def test_o_series_reject_max_tokens_and_strict_schemas_reject_length_bounds() -> None:
    with FakeOpenAIServer(strict_schemas=True) as srv:
        client = _fault_client(srv)
        with pytest.raises(openai.BadRequestError, match="max_completion_tokens"):
            client.chat.completions.create(model="o3-mini", messages=USER, max_tokens=50)
        assert client.chat.completions.create(model="o3-mini", messages=USER, max_completion_tokens=50)
        assert client.chat.completions.create(model="gpt-4o", messages=USER, max_tokens=50)
        with pytest.raises(openai.BadRequestError, match="maxLength"):
            client.chat.completions.parse(model="m", messages=USER, response_format=Titled)
        assert client.chat.completions.parse(model="m", messages=USER, response_format=Syllabus)  # items bounds pass
    with FakeOpenAIServer(models=()) as bare:
        with pytest.raises(openai.NotFoundError):
            _fault_client(bare).models.list()
