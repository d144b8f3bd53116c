"""The engine against what real models and servers do (truncation, refusals, content filters,
<think> blocks, reasoning_content, slow-drip bodies, keys echoed in errors, o-series token fields,
strict-schema dialects, /models preflight), each injected by the loopback server over real sockets."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import openai  # noqa: F401 (imported up front: the deadline test times calls, not the SDK's import)
import pytest
from pydantic import BaseModel, Field, SecretStr
from rich.console import Console

from glan_dataset.errors import ConfigurationError
from glan_dataset.llm import ChatFailure, ChatRequest, ChatResult, EngineConfig, LLMEngine
from glan_dataset.llm.cache import cache_keys
from glan_dataset.llm.core import schema_dialect, token_field
from glan_dataset.testing.openai_server import FakeOpenAIServer, FaultPlan
from tests.helpers import engine_config

SECRET = "sk-core-SECRET-9191-do-not-leak"


class Subject(BaseModel):
    name: str
    level: int


class Bounded(BaseModel):
    title: str = Field(max_length=80)
    points: list[str] = Field(min_length=1, max_length=5)


@pytest.fixture(scope="module")
def server():
    with FakeOpenAIServer(latency=0.0, seed=0) as srv:
        yield srv


@pytest.fixture(params=["aiohttp", "direct"])
def transport(request) -> str:
    return request.param


@pytest.fixture(autouse=True)
def _clean(server, monkeypatch):
    server.set_faults(None)
    server.reset_stats()
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def config(server: FakeOpenAIServer, **overrides) -> EngineConfig:
    values = dict(api_key=SecretStr(SECRET), concurrency=16, backoff_max=0.05, timeout=5.0)
    return engine_config(server, **{**values, **overrides})


def requests(
    n: int, *, structured: bool = False, stage: str = "answers", model: str = "gpt-test", **kw
) -> list[ChatRequest]:
    return [
        ChatRequest(
            key=f"physics/{stage}/{i}",
            stage=stage,
            model=model,
            messages=[{"role": "user", "content": f"Explain concept number {i} of physics in a few sentences."}],
            temperature=1.0,
            response_model=Subject if structured else None,
            **kw,
        )
        for i in range(n)
    ]


def run(cfg: EngineConfig, run_dir: Path, reqs: list[ChatRequest], stage: str = "answers"):
    async def main():
        async with LLMEngine(cfg, run_dir) as engine:
            outcomes = [o async for o in engine.stream(reqs, stage=stage, total=len(reqs))]
            kinds = engine.failure_kinds()
            assert sum(sum(c.values()) for c in kinds.values()) == sum(isinstance(o, ChatFailure) for o in outcomes)
            return outcomes, engine.usage.to_dict(), _render(engine)

    return asyncio.run(main())


def _render(engine: LLMEngine) -> str:
    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(engine.summary())
    return console.export_text()


def cached_rows(run_dir: Path) -> list[str]:
    with sqlite3.connect(run_dir / "llm-cache.sqlite") as db:
        return [row[0] for row in db.execute("SELECT text FROM responses")]


def failure_lines(run_dir: Path) -> list[dict]:
    path = run_dir / "failures.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# ----- finish_reason "length" ----------------------------------------------------------------------


@pytest.mark.parametrize("structured", [False, True])
def test_truncation_is_a_failure_with_its_reason_never_a_result(server, tmp_path, structured):
    server.set_faults(FaultPlan(rate_length=1.0))
    outcomes, _, summary = run(config(server), tmp_path, requests(4, structured=structured, max_tokens=300))
    assert all(isinstance(o, ChatFailure) for o in outcomes)
    assert {o.reason for o in outcomes} == {"truncated at 300 tokens: raise --max-tokens (or the server's limit)"}
    assert server.stats.chat_calls == 4  # the same budget would be cut again: no blind retry
    assert cached_rows(tmp_path) == []
    assert {line["kind"] for line in failure_lines(tmp_path)} == {"truncated"}
    assert "truncated" in summary


def test_truncated_request_with_a_cap_grows_its_budget_until_it_fits(server, tmp_path):
    # the server cuts at max_tokens itself (finish_reason "length"): 4 tokens never hold an answer
    outcomes, _, _ = run(config(server), tmp_path, requests(3, max_tokens=4, max_tokens_cap=4096))
    assert all(isinstance(o, ChatResult) for o in outcomes), outcomes
    assert server.stats.chat_calls > 3  # each was asked again with a larger budget

    # the result is cached under the request as the caller made it (its first budget)
    async def lookup():
        async with LLMEngine(config(server), tmp_path) as engine:
            return [engine.lookup(r) for r in requests(3, max_tokens=4, max_tokens_cap=4096)]

    assert all(hit is not None and hit.cached for hit in asyncio.run(lookup()))


def test_truncated_request_fails_at_its_cap(server, tmp_path):
    outcomes, _, _ = run(config(server), tmp_path, requests(2, max_tokens=2, max_tokens_cap=8))
    assert [o.reason for o in outcomes] == ["truncated at 8 tokens: raise --max-tokens (or the server's limit)"] * 2
    assert server.stats.chat_calls == 2 * 3  # 2 -> 4 -> 8 tokens


# ----- refusals, content filter --------------------------------------------------------------------


@pytest.mark.parametrize("structured", [False, True])
def test_refusal_is_its_own_reason(server, tmp_path, structured):
    server.set_faults(FaultPlan(rate_refusal=1.0))
    outcomes, _, summary = run(config(server), tmp_path, requests(3, structured=structured))
    assert all(isinstance(o, ChatFailure) and o.reason.startswith("refused: I'm sorry") for o in outcomes)
    assert server.stats.chat_calls == 3
    assert cached_rows(tmp_path) == [] and {line["kind"] for line in failure_lines(tmp_path)} == {"refused"}
    assert "refused" in summary


def test_content_filter_is_its_own_reason(server, tmp_path):
    server.set_faults(FaultPlan(rate_content_filter=1.0))
    outcomes, _, _ = run(config(server), tmp_path, requests(3, structured=True))
    assert all(isinstance(o, ChatFailure) and o.reason.startswith("content filter") for o in outcomes)
    assert {line["kind"] for line in failure_lines(tmp_path)} == {"content_filter"}


def test_reasons_are_counted_per_stage_in_the_summary(server, tmp_path):
    server.set_faults(FaultPlan(rate_refusal=0.5, rate_length=0.5, seed=3))
    outcomes, _, summary = run(config(server), tmp_path, requests(20))
    kinds = [line["kind"] for line in failure_lines(tmp_path)]
    assert len(kinds) == 20 and set(kinds) == {"refused", "truncated"}
    for kind in ("refused", "truncated"):
        assert any(kind in row and f"{kinds.count(kind)}" in row for row in summary.splitlines()), summary


# ----- reasoning ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["think", "reasoning"])
@pytest.mark.parametrize("structured", [False, True])
def test_reasoning_never_reaches_the_text_and_its_tokens_are_counted(server, tmp_path, fault, structured):
    server.set_faults(FaultPlan(**{f"rate_{fault}": 1.0}))
    outcomes, usage, _ = run(config(server), tmp_path, requests(4, structured=structured))
    assert all(isinstance(o, ChatResult) for o in outcomes), outcomes
    for outcome in outcomes:
        assert "<think" not in outcome.text and "Let me think" not in outcome.text
        assert outcome.reasoning_tokens > 0 and outcome.completion_tokens >= outcome.reasoning_tokens
        if structured:
            assert isinstance(outcome.parsed, Subject)
    assert usage["reasoning_tokens"] == sum(o.reasoning_tokens for o in outcomes)
    assert all("<think" not in text and "Let me think" not in text for text in cached_rows(tmp_path))


def test_a_reply_that_never_leaves_its_think_block_is_not_an_answer(server, tmp_path):
    # <think> opened, the budget ran out inside it: finish_reason "length"
    server.set_faults(FaultPlan(rate_think=1.0))
    outcomes, _, _ = run(config(server), tmp_path, requests(2, max_tokens=10))
    assert all(isinstance(o, ChatFailure) and o.reason.startswith("truncated") for o in outcomes)


# ----- deadlines, secrets --------------------------------------------------------------------------


def test_a_drip_body_is_cut_at_the_deadline_and_retried(server, transport, tmp_path):
    server.set_faults(FaultPlan(rate_drip=1.0, drip_interval=0.05))  # ~300 bytes: ~15 s per body
    cfg = config(server, transport=transport, timeout=0.6, max_attempts=2)
    started = time.monotonic()
    outcomes, _, _ = run(cfg, tmp_path, requests(2))
    elapsed = time.monotonic() - started
    assert all(isinstance(o, ChatFailure) and o.reason == "timed out after 0.6s" for o in outcomes)
    assert server.stats.chat_calls == 4 and elapsed < 4, elapsed
    assert {line["kind"] for line in failure_lines(tmp_path)} == {"timeout"}


def test_an_error_body_echoing_the_key_is_scrubbed(server, transport, tmp_path, capsys, caplog):
    server.set_faults(FaultPlan(rate_echo_key=1.0))
    caplog.set_level("DEBUG")
    outcomes, _, summary = run(config(server, transport=transport, quiet=False), tmp_path, requests(2))
    assert all(isinstance(o, ChatFailure) and "[redacted]" in o.reason and SECRET not in o.reason for o in outcomes)
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err + caplog.text + summary
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


# ----- token field, schema dialect ----------------------------------------------------------------


def test_o_series_models_get_max_completion_tokens_and_keep_their_cache_key(server, tmp_path):
    assert token_field("o3-mini") == token_field("gpt-5.1") == token_field("o1") == "max_completion_tokens"
    assert token_field("gpt-4o") == token_field("llama-3.1-8b") == token_field("gemma3") == "max_tokens"
    reqs = requests(2, model="o3-mini", max_tokens=500)
    outcomes, _, _ = run(config(server), tmp_path, reqs)  # the server answers 400 to max_tokens for o3
    assert all(isinstance(o, ChatResult) for o in outcomes), outcomes

    async def keys():
        async with LLMEngine(config(server), tmp_path) as engine:
            return [engine.prepare(r).key for r in reqs]

    request = reqs[0]
    expected = cache_keys(request.model, request.messages, 1.0, None, 500, None, 0)[0]
    assert asyncio.run(keys())[0] == expected  # the key is the request's, not the wire body's


def test_schema_bounds_degrade_for_strict_openai_and_stay_elsewhere(tmp_path):
    assert schema_dialect("https://api.openai.com/v1") == schema_dialect(None) == "openai"
    assert schema_dialect("https://x.openai.azure.com/openai") == "openai"
    assert schema_dialect("http://127.0.0.1:8080/v1") == "full"
    request = ChatRequest(
        key="k", stage="syllabus", model="gpt-test", messages=[{"role": "user", "content": "A syllabus."}]
    ).model_copy(update={"response_model": Bounded})
    with FakeOpenAIServer(strict_schemas=True) as strict:
        base = dict(base_url=strict.base_url, api_key=SecretStr(SECRET), quiet=True, max_attempts=1)
        full, _, _ = run(EngineConfig(**base, schema_dialect="full"), tmp_path / "full", [request], "syllabus")
        degraded, _, _ = run(EngineConfig(**base, schema_dialect="openai"), tmp_path / "openai", [request], "syllabus")
    assert isinstance(full[0], ChatFailure) and "maxLength" in full[0].reason
    assert isinstance(degraded[0], ChatResult) and isinstance(degraded[0].parsed, Bounded)

    async def keys(dialect: str) -> str:
        async with LLMEngine(EngineConfig(**{**base, "schema_dialect": dialect}), tmp_path / dialect) as engine:
            return engine.prepare(request).key

    assert asyncio.run(keys("full")) == asyncio.run(keys("openai"))  # one cache key whatever the server


# ----- preflight ----------------------------------------------------------------------------------


def test_preflight_fails_a_missing_model_in_one_line_before_any_call(server, tmp_path):
    async def check(models):
        async with LLMEngine(config(server), tmp_path) as engine:
            return await engine.preflight(models)

    assert asyncio.run(check(["gpt-4o", "gpt-4o-mini"])) == []
    with pytest.raises(ConfigurationError) as caught:
        asyncio.run(check(["gpt-4o", "gpt-9-imaginary"]))
    message = str(caught.value)
    assert "'gpt-9-imaginary'" in message and "\n" not in message and SECRET not in message
    assert server.stats.chat_calls == 0


def test_preflight_passes_with_a_note_when_the_endpoint_has_no_models_route(tmp_path):
    with FakeOpenAIServer(models=()) as bare:

        async def check():
            cfg = EngineConfig(base_url=bare.base_url, quiet=True)
            async with LLMEngine(cfg, tmp_path) as engine:
                return await engine.preflight(["anything"])

        notes = asyncio.run(check())
    assert len(notes) == 1 and "404" in notes[0]


# ----- durability ---------------------------------------------------------------------------------


def test_a_result_is_committed_within_the_commit_interval_while_the_stream_runs(server, tmp_path):
    cfg = config(server, concurrency=1, commit_every=1000, commit_interval=0.05)

    async def main():
        async with LLMEngine(cfg, tmp_path) as engine:
            async for _ in engine.stream(requests(3), stage="answers"):
                await asyncio.sleep(0.3)  # the stream is still open: only the timer can have committed
                with sqlite3.connect(tmp_path / "llm-cache.sqlite") as db:
                    return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    assert asyncio.run(main()) >= 1


def _nodes(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)


@pytest.mark.parametrize("model", ["SubjectList", "Syllabus"])
def test_conversion_schemas_are_bounded_so_constrained_decoding_terminates(model, tmp_path):
    from glan_dataset import records
    from glan_dataset.llm.core import RequestCore, Scrubber

    response_model = getattr(records, model)

    def schema(dialect):
        core = RequestCore(None, None, Scrubber([]), dialect=dialect)  # type: ignore[arg-type]
        return core.response_format(response_model)[1]["json_schema"]["schema"]

    full = list(_nodes(schema("full")))
    assert all("maxLength" in n for n in full if n.get("type") == "string")
    assert all("maxItems" in n for n in full if n.get("type") == "array")
    openai_nodes = list(_nodes(schema("openai")))
    assert not any("maxLength" in n or "minLength" in n for n in openai_nodes)
    assert all("maxItems" in n for n in openai_nodes if n.get("type") == "array")


@pytest.mark.parametrize(
    ("messages", "temperature", "top_p", "max_tokens", "structured", "index"),
    [
        ([{"role": "user", "content": "plain"}], None, None, None, False, 0),
        (
            [
                {"role": "system", "content": 'Ünïcode \u2014 "quotes" \\ and\nnewlines'},
                {"content": "x", "role": "user"},
            ],
            1.0,
            0.95,
            1024,
            True,
            7,
        ),
        ([{"role": "user", "content": "🙂 emoji"}], 0.0, None, 5, False, 3),
    ],
)
def test_prepared_keys_and_body_equal_the_canonical_definition(
    messages, temperature, top_p, max_tokens, structured, index
):
    from glan_dataset.llm.cache import cache_keys, canonical_json
    from glan_dataset.llm.core import RequestCore, Scrubber

    core = RequestCore(None, None, Scrubber([]))  # type: ignore[arg-type]
    request = ChatRequest(
        key="k",
        stage="s",
        model="gpt-4o",
        messages=messages,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        sample_index=index,
        response_model=Subject if structured else None,
    )
    prepared = core.prepare(request)
    schema = core.response_format(Subject)[0] if structured else None
    assert (prepared.key, prepared.pkey) == cache_keys(
        "gpt-4o", messages, temperature, top_p, max_tokens, schema, index
    )
    assert json.loads(prepared.payload) == prepared.body
    assert canonical_json(json.loads(prepared.payload)) == canonical_json(prepared.body)


def test_preflight_notes_what_it_cannot_check(tmp_path):
    async def check(cfg):
        async with LLMEngine(cfg, tmp_path) as engine:
            return await engine.preflight(["my-deployment"])

    azure = EngineConfig(base_url="https://res.openai.azure.com/openai/v1", api_key=SecretStr(SECRET), quiet=True)
    assert "deployment" in asyncio.run(check(azure))[0]  # and no connection was made (the network guard)
    with FakeOpenAIServer(models=("/models/gemma-3-270m.gguf",), owned_by="llamacpp") as llama:
        notes = asyncio.run(check(EngineConfig(base_url=llama.base_url, quiet=True)))
    assert len(notes) == 1 and "llama-server" in notes[0]


def test_the_proxy_from_the_environment_is_used(tmp_path, monkeypatch):
    """trust_env is off (it cost half the engine's CPU): the proxy is resolved once, and still used."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens at the base URL: only the proxy can answer
    with FakeOpenAIServer() as proxy:
        for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        cfg = EngineConfig(base_url=f"http://127.0.0.1:{port}/v1", quiet=True, max_attempts=1)
        outcomes, _, _ = run(cfg, tmp_path, requests(3))
        assert all(isinstance(o, ChatResult) for o in outcomes) and proxy.stats.chat_calls == 3


def test_a_proxy_refusing_its_credentials_stops_the_run_in_one_line(tmp_path, monkeypatch):
    """An http proxy's 407 is a configuration error for the whole run (like a refused key), not a
    failure per unit, and the message never shows the proxy's password."""
    seen: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n")
        writer.write(b"Content-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(proxy, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://bob:pw-SECRET-77@127.0.0.1:{port}")
        cfg = EngineConfig(base_url="http://127.0.0.1:9/v1", quiet=True, max_attempts=3)
        try:
            async with LLMEngine(cfg, tmp_path) as engine:
                async for _ in engine.stream(requests(3), stage="answers"):
                    pass
        finally:
            server.close()

    with pytest.raises(ConfigurationError, match="407") as raised:
        asyncio.run(main())
    assert "pw-SECRET-77" not in str(raised.value)
    assert len(seen) == 1 and b"Proxy-Authorization: Basic" in seen[0]  # the preflight's GET /models stopped it


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("I'm sorry, but I can't help with that request.", True),
        ("I’m sorry, I cannot assist with this.", True),
        ("I can't help with that.", True),
        ("Sorry, but I am unable to help with this request.", True),
        ("I cannot help but notice that entropy always grows in an isolated system.", False),
        ("I'm sorry to say the textbook is wrong: the answer is 42.", False),
        ("The refusal of the committee was based on ...", False),
    ],
)
def test_refusal_pattern(text, refused):
    from glan_dataset.llm.core import REFUSAL

    assert bool(REFUSAL.match(text)) is refused
