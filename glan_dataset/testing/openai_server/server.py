"""The aiohttp application and :class:`FakeOpenAIServer`, its background-thread runner.

The server runs its own event loop in a daemon thread so synchronous tests, async
tests (any loop) and the CLI all use it the same way; everything it shares with the
calling thread (stats, fault plan) is guarded by locks.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any

from aiohttp import web

from .batches import BatchStore, add_batch_routes
from .completions import CompletionEngine, RequestError, messages_sha, validate_body
from .faults import FaultPlan, FaultSampler
from .stats import ServerStats

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-3.5-turbo", "glan-fake")
_RATELIMIT_REQUESTS = 10_000
_RATELIMIT_TOKENS = 2_000_000
_MAX_UPLOAD = 256 * 1024 * 1024  # aiohttp limit; the 200 MB API limit is checked explicitly


def error_body(message: str, kind: str, code: str | None = None, param: str | None = None) -> bytes:
    """OpenAI-style error JSON, which the SDK surfaces as ``exc.body`` / ``exc.message``."""
    return json.dumps({"error": {"message": message, "type": kind, "param": param, "code": code}}).encode()


def error_response(
    status: int,
    message: str,
    kind: str,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return web.Response(
        status=status, body=error_body(message, kind, code, param), content_type="application/json", headers=headers
    )


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=json.dumps(data).encode(), content_type="application/json", headers=headers)


class _RateWindow:
    """Fixed one-minute window feeding the optional ``x-ratelimit-*`` headers."""

    def __init__(self) -> None:
        self._start = time.monotonic()
        self._requests = 0
        self._tokens = 0

    def headers(self, tokens: int) -> dict[str, str]:
        now = time.monotonic()
        if now - self._start >= 60.0:
            self._start, self._requests, self._tokens = now, 0, 0
        self._requests += 1
        self._tokens += tokens
        reset = max(0.0, 60.0 - (now - self._start))
        return {
            "x-ratelimit-limit-requests": str(_RATELIMIT_REQUESTS),
            "x-ratelimit-remaining-requests": str(max(0, _RATELIMIT_REQUESTS - self._requests)),
            "x-ratelimit-limit-tokens": str(_RATELIMIT_TOKENS),
            "x-ratelimit-remaining-tokens": str(max(0, _RATELIMIT_TOKENS - self._tokens)),
            "x-ratelimit-reset-requests": f"{reset:.3f}s",
            "x-ratelimit-reset-tokens": f"{reset:.3f}s",
        }


class FakeOpenAIServer:
    """A loopback OpenAI-compatible server: chat completions, files, batches, models.

    Use as a context manager (``with FakeOpenAIServer() as srv: OpenAI(base_url=srv.base_url)``)
    or call :meth:`start` / :meth:`stop`. Answers are deterministic (see
    :mod:`.completions`); faults follow :class:`FaultPlan`. Files and batches live in
    this object, so they survive client restarts and even a stop/start of the server
    (which re-binds the same port).
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        faults: FaultPlan | None = None,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        batch_delay: float = 0.2,
        ratelimit_headers: bool = False,
        demo: bool = False,
        record: bool = False,
        responder: Callable[[dict[str, Any]], str | None] | None = None,
        strict_schemas: bool = False,
        models: tuple[str, ...] | None = None,
        owned_by: str = "glan-fake",
        record_bodies: str | Path | None = None,
    ) -> None:
        """``strict_schemas``: reject JSON Schema keywords OpenAI's strict mode rejects (string
        length bounds), as api.openai.com does. ``models``: what GET /v1/models lists (None = the
        default list; an empty tuple makes /v1/models answer 404, like servers without it); ``owned_by``:
        their owner field (llama-server says "llamacpp"). ``record_bodies``: append every chat request's
        JSON body to this file, one line each (``bench/engine.py`` replays generate's own requests)."""
        self.latency = latency
        self.host = host
        self.port = port
        self.ratelimit_headers = ratelimit_headers
        self.demo = demo
        self.strict_schemas = strict_schemas
        self.models = _MODELS if models is None else models
        self.owned_by = owned_by
        self.stats = ServerStats(requests_log=[] if record else None)
        self.record_bodies = Path(record_bodies) if record_bodies is not None else None
        self._bodies: IO[str] | None = None
        self.engine = CompletionEngine(seed=seed, demo=demo, responder=responder)
        self._faults = FaultSampler(faults)
        self.batches = BatchStore(self.engine, self._faults, self.stats, batch_delay=batch_delay)
        self._request_ids = itertools.count(1)
        self._rate_window = _RateWindow()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # -- public control ------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1`` (valid after :meth:`start`)."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def faults(self) -> FaultPlan | None:
        return self._faults.plan

    def set_faults(self, faults: FaultPlan | None) -> None:
        """Swap the fault plan at runtime (its RNG restarts from ``faults.seed``)."""
        self._faults.set_plan(faults)

    def reset_stats(self) -> None:
        self.stats.reset()

    def start(self) -> FakeOpenAIServer:
        """Bind and serve in a background thread; returns once the port is listening."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start_site())
            except BaseException as exc:  # reported to the caller of start()
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name=f"fake-openai-{id(self):x}", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = self._loop = None
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop serving (in-flight requests such as hangs are cancelled) and join the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._stop_site(), loop)
        try:
            future.result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            self._loop = self._thread = None
            if self._bodies is not None:
                self._bodies.close()
                self._bodies = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- aiohttp plumbing ----------------------------------------------------------------

    def make_app(self) -> web.Application:
        """The aiohttp application (exposed so it can be mounted or tested in-process)."""
        app = web.Application(client_max_size=_MAX_UPLOAD, middlewares=[_json_errors])
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/v1/_stats", self._get_stats)
        app.router.add_post("/v1/_reset", self._reset)
        app.router.add_post("/v1/_faults", self._set_faults)
        add_batch_routes(app, self.batches)
        return app

    async def _start_site(self) -> None:
        runner = web.AppRunner(self.make_app(), access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, backlog=1024)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        self._runner = runner

    async def _stop_site(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- handlers --------------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/chat/completions: count, validate, inject a fault or answer."""
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            self.stats.count_call("<invalid>")
            return error_response(400, "We could not parse the JSON body of your request.", "invalid_request_error")
        if self.record_bodies is not None:
            if self._bodies is None:
                self._bodies = open(self.record_bodies, "a", encoding="utf-8")  # closed by stop()
            self._bodies.write(json.dumps(body, ensure_ascii=False) + "\n")
        model = body.get("model") if isinstance(body, dict) else None
        log_sha = messages_sha(body.get("messages")) if self.stats.requests_log is not None else None
        self.stats.count_call(model if isinstance(model, str) else "<none>", log_sha)
        try:
            validate_body(body, strict_schemas=self.strict_schemas)
        except RequestError as exc:
            return error_response(exc.status, exc.message, "invalid_request_error", param=exc.param)
        fault = self._faults.draw(self.engine.is_structured(body))
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        if fault is not None:
            self.stats.count_fault(fault)
            early = await self._early_fault(fault)
            if early is not None:
                return early
        if fault == "echo_key":
            return error_response(
                400,
                f"Invalid request (injected); received headers: Authorization: {request.headers.get('Authorization')}",
                "invalid_request_error",
            )
        try:
            completion = self.engine.complete(body, invalid_json=fault == "invalid_json")
        except RequestError as exc:
            return error_response(exc.status, exc.message, "invalid_request_error", param=exc.param)
        if fault in _CONTENT_FAULTS:
            apply_content_fault(completion, fault, structured=self.engine.is_structured(body))
        payload = json.dumps(completion, ensure_ascii=False).encode()
        headers = {"x-request-id": self._request_id()}
        if self.ratelimit_headers:
            headers.update(self._rate_window.headers(completion["usage"]["total_tokens"]))
        if fault == "truncated":
            return await _truncated(request, payload, headers)
        if fault == "drip":
            plan = self._faults.plan
            return await _drip(request, payload, headers, plan.drip_interval if plan else 0.5)
        self.stats.count_ok()
        return web.Response(body=payload, content_type="application/json", headers=headers)

    async def _early_fault(self, fault: str) -> web.Response | None:
        """Error answers for 429/500/503; sleeps for a hang (then answers normally)."""
        headers = {"x-request-id": self._request_id()}
        if fault == "429":
            plan = self._faults.plan
            delay = plan.retry_after if plan else 0.05
            headers["retry-after"] = _format_seconds(delay)
            headers["retry-after-ms"] = str(max(0, round(delay * 1000)))
            return error_response(
                429,
                "Rate limit reached (injected by the fake server).",
                "rate_limit_exceeded",
                "rate_limit_exceeded",
                headers=headers,
            )
        if fault == "500":
            return error_response(
                500,
                "The server had an error while processing your request (injected).",
                "server_error",
                "internal_error",
                headers=headers,
            )
        if fault == "503":
            return error_response(
                503,
                "The engine is currently overloaded, please try again later (injected).",
                "server_error",
                "service_unavailable",
                headers=headers,
            )
        if fault == "hang":
            plan = self._faults.plan
            await asyncio.sleep(plan.hang_seconds if plan else 30.0)
        return None

    def _request_id(self) -> str:
        return f"req_{next(self._request_ids):016x}"

    async def _models(self, request: web.Request) -> web.Response:
        if not self.models:
            return error_response(404, "Invalid URL (GET /v1/models)", "invalid_request_error")
        created = 1_700_000_000
        data = [{"id": m, "object": "model", "created": created, "owned_by": self.owned_by} for m in self.models]
        return json_response({"object": "list", "data": data})

    async def _get_stats(self, request: web.Request) -> web.Response:
        return json_response(self.stats.to_dict())

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset_stats()
        return json_response({"ok": True})

    async def _set_faults(self, request: web.Request) -> web.Response:
        """POST /v1/_faults with FaultPlan fields as JSON (``null`` or ``{}`` clears faults)."""
        try:
            data = json.loads(await request.read() or b"null")
            plan = FaultPlan.from_dict(data) if data else None
        except (ValueError, TypeError) as exc:
            return error_response(400, f"Invalid fault plan: {exc}", "invalid_request_error")
        self.set_faults(plan)
        return json_response({"ok": True, "faults": plan.to_dict() if plan else None})


def _format_seconds(seconds: float) -> str:
    """Retry-After value: an integer when whole, else a short decimal (the SDK accepts floats)."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:.3f}".rstrip("0")


async def _truncated(request: web.Request, payload: bytes, headers: dict[str, str]) -> web.StreamResponse:
    """Announce the full Content-Length, send half the body, then drop the connection.

    HTTP clients then fail while reading the body (aiohttp: ``ClientPayloadError``;
    httpx: ``RemoteProtocolError``), which the openai SDK raises as ``APIConnectionError``.
    """
    response = web.StreamResponse(status=200, headers=headers)
    response.content_type = "application/json"
    response.content_length = len(payload)
    await response.prepare(request)
    await response.write(payload[: len(payload) // 2])
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise asyncio.CancelledError  # nothing more can be written; end this handler quietly


_CONTENT_FAULTS = frozenset({"length", "refusal", "content_filter", "think", "reasoning"})
_REFUSAL_TEXT = "I'm sorry, but I can't help with that request."
_REASONING_TEXT = "The user wants an answer. Let me think about the key concepts first, then write it down. "


def apply_content_fault(completion: dict[str, Any], fault: str, *, structured: bool) -> None:
    """Rewrite a completion (in place) the way a real model misbehaves (see FaultPlan)."""
    choice = completion["choices"][0]
    message = choice["message"]
    usage = completion["usage"]
    content = message["content"] or ""
    if fault == "length":
        message["content"] = content[: max(1, len(content) // 2)]
        choice["finish_reason"] = "length"
    elif fault == "refusal":
        if structured:
            message["content"], message["refusal"] = None, _REFUSAL_TEXT
        else:
            message["content"] = _REFUSAL_TEXT
    elif fault == "content_filter":
        message["content"] = None
        choice["finish_reason"] = "content_filter"
    elif fault == "think":
        message["content"] = f"<think>{_REASONING_TEXT * 3}</think>\n\n{content}"
        usage["completion_tokens"] += 60
        usage["total_tokens"] += 60
    elif fault == "reasoning":
        message["reasoning_content"] = _REASONING_TEXT * 3
        reasoning_tokens = 60
        usage["completion_tokens"] += reasoning_tokens
        usage["total_tokens"] += reasoning_tokens
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}


async def _drip(request: web.Request, payload: bytes, headers: dict[str, str], interval: float) -> web.StreamResponse:
    """The whole body, one byte every ``interval`` seconds (a server that trickles its answer)."""
    response = web.StreamResponse(status=200, headers=headers)
    response.content_type = "application/json"
    response.content_length = len(payload)
    await response.prepare(request)
    for index in range(len(payload)):
        await response.write(payload[index : index + 1])
        await asyncio.sleep(interval)
    await response.write_eof()
    return response


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn aiohttp's HTML 404/405/413 pages into OpenAI-style JSON errors."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        kind = "invalid_request_error" if exc.status < 500 else "server_error"
        message = f"Invalid URL ({request.method} {request.path})" if exc.status in (404, 405) else exc.reason
        return error_response(exc.status, message, kind)
