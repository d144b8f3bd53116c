"""The LLM engine: many chat completions through any OpenAI-compatible endpoint, cached and resumable.

How one unit goes: cache lookup -> (limits) -> POST /chat/completions -> read and judge (see
llm/core.py: truncation, refusals, content filter, <think> blocks, validation) -> commit to the cache
(in small groups, see ``EngineConfig.commit_every``) -> yield. Transport faults (429, 5xx, timeouts, resets, truncated bodies) are retried with
jittered exponential backoff, honouring Retry-After; a structured reply that does not validate is
re-asked with the validation error. A unit that exhausts ``max_attempts`` HTTP calls is yielded as a
ChatFailure and appended to RUN/failures.jsonl; it is not cached, so the next run retries it.

Transports for chat calls (``EngineConfig.transport``): ``direct`` (default) posts the JSON over
llm/http1.py (proxy resolved once per transport, not per request), ``aiohttp``/``httpx`` go through
``AsyncOpenAI(max_retries=0)``: the SDK's request layers cost ~1 ms of CPU per call more. The SDK
path uses ``client.post(..., content=bytes, cast_to=httpx2.Response)``: the SDK's auth, headers and
errors without building a typed ChatCompletion we would throw away. Retries are ours in every case:
the SDK's loop cannot share our backoff, our attempt budget or our AIMD signal. ``bench/engine.py``
measures the engine beside a bare aiohttp client on the same server.

Preparing, reading, judging and committing a request live in llm/core.py, shared with the Batch API
runner (llm/batch.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping, Sized
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, TypeVar

from rich.console import Console, Group, RenderableType

from glan_dataset.errors import ConfigurationError
from glan_dataset.llm.cache import ResponseCache
from glan_dataset.llm.core import (
    MalformedResponse,
    Prepared,
    Problem,
    RequestCore,
    Scrubber,
    aiter_requests,
    failure_kind,
    read_completion,
    reask_body,
    schema_dialect,
)
from glan_dataset.llm.cost import UsageLedger
from glan_dataset.llm.limits import Limits, retry_after_seconds
from glan_dataset.llm.progress import ProgressDisplay, StageStats
from glan_dataset.llm.types import (
    ChatFailure,
    ChatRequest,
    ChatResult,
    EndpointUnreachableError,
    EngineConfig,
    endpoint_host,
)
from glan_dataset.rundir import RunDir

if TYPE_CHECKING:
    import openai

    from glan_dataset.llm import transport
    from glan_dataset.llm.fleet import Fleet

log = logging.getLogger(__name__)

_PLACEHOLDER_KEY = "no-key-needed"
_MISSING_ENDPOINT = (
    "no API key or base URL: set OPENAI_API_KEY (and OPENAI_BASE_URL for vLLM, Ollama or another server) "
    "or pass --base-url"
)
_MAX_REASON = 500
T = TypeVar("T")  # what LLMEngine.map pairs with each request


class _Retry(Exception):
    """A transient fault: try again after a backoff."""

    def __init__(
        self, reason: str, *, retry_after: float | None = None, overload: bool = False, connect: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.overload = overload
        self.connect = connect


class _GiveUp(Exception):
    """A fault that another attempt will not fix for this unit (HTTP 400, 413, 422, ...)."""


class LLMEngine:
    """See the module docstring. Use as ``async with LLMEngine(config, run_dir) as engine``."""

    def __init__(self, config: EngineConfig, run_dir: str | Path, *, console: Console | None = None) -> None:
        """``console``: where progress is drawn; pass the caller's own so its messages and the bars
        share one live display (by default a console on stderr, keeping stdout for data)."""
        base_url = config.base_url or os.environ.get("OPENAI_BASE_URL") or None
        api_key = config.api_key.get_secret_value() if config.api_key else os.environ.get("OPENAI_API_KEY") or None
        if not api_key and not base_url:
            raise ConfigurationError(_MISSING_ENDPOINT)
        self.config = config
        self.base_url = base_url
        self.host = endpoint_host(base_url)
        self._api_key = api_key or _PLACEHOLDER_KEY
        self.run_dir = RunDir(run_dir)
        self.run_dir.root.mkdir(parents=True, exist_ok=True)
        self.opened_at = time.time()
        self._cache = ResponseCache(self.run_dir.llm_cache, group=config.commit_every)
        self.usage = UsageLedger(config.prices, self._cache.usage_totals())
        self.scrub = Scrubber([api_key] if api_key else [])
        self.core = RequestCore(
            self._cache,
            self.usage,
            self.scrub,
            dialect=schema_dialect(base_url, config.schema_dialect),
            token_setting=config.token_field,
            ignore_params=config.cache_ignore_params,
        )
        # --concurrency is per endpoint: a fleet of N takes N times as many requests in flight
        self._limits = Limits(config.concurrency * max(1, len(config.base_urls)), config.rpm, config.tpm)
        self._rng = random.Random()
        self._flush_handle: asyncio.TimerHandle | None = None
        self._expected_models: list[str] = []  # checked against GET /models before the first paid call
        self._models_checked = False
        self._failures_file: IO[str] | None = None
        self._progress = ProgressDisplay(self.usage, quiet=config.quiet, console=console or Console(stderr=True))
        self._client_instance: openai.AsyncOpenAI | None = None
        self._direct_instance: transport.DirectTransport | Fleet | None = None
        self._fleet: Fleet | None = None  # several --base-url: the fleet is the transport
        # httpx2 logs every request at INFO: at a thousand calls a second that is a flood of lines
        # and measurable CPU. Quiet it unless the application chose a level for it.
        transport_log = logging.getLogger("httpx2")
        if transport_log.level == logging.NOTSET:
            transport_log.setLevel(logging.WARNING)

    def __repr__(self) -> str:
        return f"LLMEngine(host={self.host!r}, run_dir={str(self.run_dir.root)!r}, mode={self.config.mode!r})"

    # ----- lifecycle -------------------------------------------------------------------------------

    @property
    def _direct(self) -> transport.DirectTransport | Fleet | None:
        if self.config.base_urls and len(self.config.base_urls) > 1:
            if self._direct_instance is None:
                from glan_dataset.llm.fleet import Fleet  # aiohttp: imported when the first call is made

                self._direct_instance = self._fleet = Fleet(
                    self.config.base_urls, self._api_key, self.config.timeout, self.config.concurrency
                )
            return self._direct_instance
        if self.config.transport != "direct":
            return None
        if self._direct_instance is None:
            base_url = self.base_url or "https://api.openai.com/v1"
            from glan_dataset.llm import transport  # aiohttp: imported when the first call is made

            self._direct_instance = transport.DirectTransport(base_url, self._api_key, self.config.timeout)
        return self._direct_instance

    @property
    def openai_client(self) -> openai.AsyncOpenAI:
        """The SDK client (Batch API control plane, and chat calls with ``transport="aiohttp"/"httpx"``)."""
        if self._client_instance is None:
            import openai

            use_httpx = self.config.transport == "httpx"
            http_client = openai.DefaultAsyncHttpxClient() if use_httpx else openai.DefaultAioHttpClient()
            self._client_instance = openai.AsyncOpenAI(
                base_url=self.base_url,
                api_key=self._api_key,
                max_retries=0,
                timeout=self.config.timeout,
                http_client=http_client,
            )
        return self._client_instance

    async def __aenter__(self) -> LLMEngine:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def flush(self) -> None:
        """Commit the responses buffered in the cache (see ``EngineConfig.commit_every``)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._cache.flush()

    def _committed(self) -> None:
        """After a commit to the buffer: make sure it reaches the disk within ``commit_interval``."""
        if self._flush_handle is None and self._cache.pending:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(self.config.commit_interval, self._timed_flush)

    def _timed_flush(self) -> None:
        self._flush_handle = None
        self._cache.flush()

    async def aclose(self) -> None:
        self.flush()
        self._progress.stop()
        if self._client_instance is not None:
            await self._client_instance.close()
            self._client_instance = None
        if self._direct_instance is not None:
            await self._direct_instance.aclose()
            self._direct_instance = None
        if self._failures_file is not None:
            self._failures_file.close()
            self._failures_file = None
        self._cache.close()

    def summary(self) -> RenderableType:
        """One screen: per stage calls, cache hits, retries, failures, tokens, cost, wall time."""
        if self._fleet is not None:
            return Group(self._progress.summary(), self._fleet.summary())
        return self._progress.summary()

    def failure_kinds(self) -> dict[str, dict[str, int]]:
        """Failures of this process by stage and kind (truncated, refused, timeout, http_500, ...)."""
        return {name: dict(stats.reasons) for name, stats in self._progress.stages.items() if stats.reasons}

    # ----- requests --------------------------------------------------------------------------------

    async def preflight(self, models: list[str]) -> list[str]:
        """Check, before any paid call, that the endpoint serves these models (one GET /models).
        Raises ConfigurationError naming a missing model; returns notes for what could not be
        checked (an endpoint without /models, llama-server's single model that answers any name)."""
        wanted = list(dict.fromkeys(m for m in models if m))
        if ".openai.azure.com" in (self.base_url or "").lower():
            # Azure's /models lists base models, not the deployment names a request carries
            return [f"Azure OpenAI at {self.host}: deployment names are not listed by /models; not checked"]
        from glan_dataset.llm import transport

        direct = transport.DirectTransport(
            self.base_url or "https://api.openai.com/v1", self._api_key, self.config.timeout
        )
        try:
            status, data = await direct.get_json("/models")
        except (transport.ConnectFault, transport.TimeoutFault, transport.ConnectionFault) as fault:
            await direct.aclose()
            raise EndpointUnreachableError(
                f"cannot reach the LLM endpoint at {self.host} ({self.scrub(str(fault))[:200] or 'timed out'}): "
                "check that the server is running and --base-url is right, then run the same command again "
                "to resume (finished calls are cached)"
            ) from None
        await direct.aclose()
        if status in (401, 403, 407):
            raise self._status_fault(status, {}, "", time.monotonic(), {})
        listed = data.get("data") if isinstance(data, dict) else None
        if status >= 300 or not isinstance(listed, list):
            return [f"the endpoint at {self.host} does not list its models (GET /models: HTTP {status}); not checked"]
        entries = [item for item in listed if isinstance(item, dict) and isinstance(item.get("id"), str)]
        ids = {item["id"] for item in entries}
        if len(entries) == 1 and entries[0].get("owned_by") == "llamacpp":
            return [f"llama-server at {self.host} serves one model ({entries[0]['id']}) whatever the name asked"]
        missing = [m for m in wanted if m not in ids]
        if missing:
            shown = ", ".join(sorted(ids)[:12]) + (", ..." if len(ids) > 12 else "")
            raise ConfigurationError(
                f"model {missing[0]!r} is not served by the endpoint at {self.host} (it lists: {shown or 'none'}): "
                "check --model / --question-model and --base-url"
            )
        return []

    def expect_models(self, models: list[str]) -> None:
        """Models this engine will be asked for: :meth:`preflight` checks them all before the first call
        that is not in the cache (a fully cached re-run needs no endpoint), once per engine."""
        self._expected_models = list(dict.fromkeys(m for m in models if m))
        self._models_checked = not self._expected_models

    async def _check_models(self) -> None:
        if self._models_checked:
            return
        self._models_checked = True
        for note in await self.preflight(self._expected_models):
            log.info("%s", note)

    def prepare(self, request: ChatRequest) -> Prepared:
        """The request's cache keys and wire body (see ``RequestCore.prepare``)."""
        return self.core.prepare(request)

    def lookup(self, request: ChatRequest) -> ChatResult | None:
        """The cached result for this request, or None. Never calls the endpoint."""
        return self.core.cached(self.core.prepare(request))

    # ----- streaming -------------------------------------------------------------------------------

    async def complete(
        self, requests: Iterable[ChatRequest] | AsyncIterable[ChatRequest], *, stage: str
    ) -> dict[str, ChatResult | ChatFailure]:
        """Run all requests; outcomes by request key."""
        total = len(requests) if isinstance(requests, Sized) else None
        return {outcome.key: outcome async for outcome in self.stream(requests, stage=stage, total=total)}

    async def stream(
        self,
        requests: Iterable[ChatRequest] | AsyncIterable[ChatRequest],
        *,
        stage: str,
        total: int | None = None,
    ) -> AsyncIterator[ChatResult | ChatFailure]:
        """Yield every request's outcome as it completes (any order). Requests are pulled lazily:
        at most about ``2 x concurrency`` units exist at once, whatever the input's length."""
        stats = self._progress.stage(stage, total)
        try:
            if self.config.mode == "batch":
                from glan_dataset.llm.batch import BatchRunner, control_errors

                await self._check_models()
                with control_errors(self):
                    async for outcome in BatchRunner(self, stage, stats).run(requests):
                        yield outcome
            else:
                async for outcome in self._stream_online(requests, stage, stats):
                    yield outcome
        finally:
            self.flush()  # before the caller's loop ends: what it has seen is on disk
            self._progress.end_stage(stats)

    async def map(
        self,
        pairs: Iterable[tuple[T, ChatRequest]] | AsyncIterable[tuple[T, ChatRequest]],
        *,
        stage: str,
        total: int | None = None,
    ) -> AsyncIterator[tuple[T, ChatResult | ChatFailure]]:
        """:meth:`stream` for (source, request) pairs: yield each outcome with its own source (any order).
        Pairs are pulled as lazily as ``stream`` pulls requests; a source is held only while its request
        is in flight. Request keys must be unique among the requests in flight."""
        waiting: dict[str, T] = {}

        async def requests() -> AsyncIterator[ChatRequest]:
            if isinstance(pairs, AsyncIterable):
                async for source, request in pairs:
                    hold(source, request)
                    yield request
            else:
                for source, request in pairs:
                    hold(source, request)
                    yield request

        def hold(source: T, request: ChatRequest) -> None:
            if request.key in waiting:
                raise ValueError(f"two requests in flight share the key {request.key!r}; give each unit its own key")
            waiting[request.key] = source

        async for outcome in self.stream(requests(), stage=stage, total=total):
            yield waiting.pop(outcome.key), outcome

    async def _stream_online(
        self, requests: Iterable[ChatRequest] | AsyncIterable[ChatRequest], stage: str, stats: StageStats
    ) -> AsyncIterator[ChatResult | ChatFailure]:
        source = aiter_requests(requests)
        core = self.core
        finished: asyncio.Queue[asyncio.Task[ChatResult | ChatFailure]] = asyncio.Queue()
        running: set[asyncio.Task[ChatResult | ChatFailure]] = set()
        # Units sleeping in a backoff hold no HTTP slot, so allow more units than slots.
        max_units = 2 * self.config.concurrency
        exhausted = False
        loop = asyncio.get_running_loop()

        def on_done(task: asyncio.Task[ChatResult | ChatFailure]) -> None:
            running.discard(task)
            finished.put_nowait(task)

        try:
            while True:
                while not exhausted and len(running) < max_units:
                    try:
                        request = await anext(source)
                    except StopAsyncIteration:
                        exhausted = True
                        break
                    prepared = core.prepare(request)
                    hit = core.cached(prepared)
                    if hit is not None:
                        stats.cached += 1
                        stats.done += 1
                        self.usage.record_cache_hit(request.stage, request.model)
                        yield hit
                        if stats.cached % 1024 == 0:
                            await asyncio.sleep(0)  # a long cached replay still lets the progress display run
                        continue
                    await self._check_models()
                    task = loop.create_task(self.run_unit(prepared, stats))
                    running.add(task)
                    task.add_done_callback(on_done)
                if not running and finished.empty():
                    break
                task = await finished.get()
                while True:
                    outcome = task.result()  # a fatal error (unreachable endpoint, bad key) propagates here
                    stats.done += 1
                    yield outcome
                    try:
                        task = finished.get_nowait()
                    except asyncio.QueueEmpty:
                        break
        finally:
            for task in list(running):
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)
            while not finished.empty():  # retrieve (and drop) outcomes nobody will read
                leftover = finished.get_nowait()
                if not leftover.cancelled():
                    leftover.exception()

    async def run_unit(
        self,
        prepared: Prepared,
        stats: StageStats,
        *,
        already_asked: int = 0,
        body: dict[str, Any] | None = None,
    ) -> ChatResult | ChatFailure:
        """One unit to its end: a result (committed to the cache) or a failure (in failures.jsonl).
        ``already_asked``/``body``: a Batch API reply that needs asking again online (a re-ask with
        the validation error, or a larger token budget)."""
        request = prepared.request
        config = self.config
        core = self.core
        base = prepared.body  # the request as asked, with the current token budget
        budget = prepared.budget
        body = body or base
        attempts = already_asked
        structured_tries = already_asked
        connect_failures = 0
        reason = "no attempt made"
        limit = config.max_attempts  # a larger token budget is a new ask, bounded by the cap, not a retry
        while attempts < limit:
            attempts += 1
            if attempts > 1:
                stats.retries += 1
            try:
                payload = prepared.payload if body is prepared.body else _dumps(body).encode()
                data = await self._send(payload, body, prepared.estimate, stats)
                completion = read_completion(data, self.scrub)
            except _Retry as fault:
                reason = fault.reason
                connect_failures += fault.connect
                if attempts < limit:
                    await asyncio.sleep(self._backoff(attempts, fault.retry_after))
                continue
            except MalformedResponse as fault:
                reason = str(fault)
                if attempts < limit:
                    await asyncio.sleep(self._backoff(attempts, None))
                continue
            except _GiveUp as fault:
                reason = str(fault)
                break
            core.note_completion(request.stage, completion.completion_tokens)
            verdict = core.judge(completion, request.response_model, budget=budget, cap=request.max_tokens_cap)
            if isinstance(verdict, Problem):
                core.charge(request.stage, request.model, completion)
                reason = verdict.reason
                if verdict.retry == "grow":
                    budget = core.grown_budget(budget, request.max_tokens_cap or 0, completion)
                    body = base = core.with_budget(base, budget)
                    limit += 1
                    continue
                if verdict.retry == "reask":
                    structured_tries += 1
                    if structured_tries >= config.structured_attempts:
                        break
                    body = reask_body(base, completion.text, reason)
                    continue
                if verdict.retry == "again":
                    continue
                break
            parsed, text = verdict
            core.commit(prepared.key, prepared.pkey, request.stage, request.model, completion, text)
            self._committed()
            return core.result(request.key, request.model, completion, text, parsed)
        if connect_failures and connect_failures == attempts - already_asked:
            raise EndpointUnreachableError(
                f"cannot reach the LLM endpoint at {self.host} after {attempts} attempts ({reason}); "
                "check that the server is running and --base-url is right, then run the same command again "
                "to resume (finished calls are cached)"
            )
        return self.record_failure(request.stage, request.key, reason, attempts, stats)

    def record_failure(
        self, stage: str, key: str, reason: str, attempts: int, stats: StageStats | None = None
    ) -> ChatFailure:
        """Append to RUN/failures.jsonl (one line, no rewrite) and make the ChatFailure. The reason is
        scrubbed of the API key; its kind (truncated, refused, http_500, ...) is counted per stage."""
        reason = self.scrub(reason)[:_MAX_REASON]
        kind = failure_kind(reason)
        if self._failures_file is None:
            self._failures_file = open(self.run_dir.failures, "a", encoding="utf-8", buffering=1)
        line = {
            "stage": stage,
            "key": key,
            "reason": reason,
            "kind": kind,
            "attempts": attempts,
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self._failures_file.write(json.dumps(line, ensure_ascii=False) + "\n")
        if stats is None:
            stats = self._progress.stages.get(stage)
        if stats is not None:
            stats.failures += 1
            stats.reasons[kind] = stats.reasons.get(kind, 0) + 1
        return ChatFailure(key=key, stage=stage, reason=reason, attempts=attempts)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after * (1.0 + 0.1 * self._rng.random()), 600.0)
        ceiling = min(self.config.backoff_max, self.config.backoff_base * 2 ** (attempt - 1))
        return ceiling * (0.5 + 0.5 * self._rng.random())

    async def _send(self, payload: bytes, body: dict[str, Any], estimate: int, stats: StageStats) -> dict[str, Any]:
        """One HTTP call under the limits (``payload`` is ``body`` encoded). Returns the decoded JSON
        body; raises _Retry or _GiveUp."""
        limits = self._limits
        await limits.acquire(estimate)
        sent_at = time.monotonic()
        stats.in_flight += 1
        stats.calls += 1
        try:
            if self._direct is not None:
                content, headers = await self._post_direct(payload, sent_at, body)
            else:
                content, headers = await self._post_sdk(payload, sent_at, body)
        finally:
            stats.in_flight -= 1
            limits.release()
        try:
            data = json.loads(content)
        except ValueError as error:
            raise _Retry(f"invalid response body: {type(error).__name__}") from None
        limits.concurrency.on_success()
        if "x-ratelimit-remaining-requests" in headers or "x-ratelimit-remaining-tokens" in headers:
            limits.observe_headers(headers, estimate)
        if limits.tpm is not None:
            usage = data.get("usage") if isinstance(data, dict) else None
            if isinstance(usage, dict):
                limits.settle_tokens(estimate, int(usage.get("total_tokens") or 0))
        return data

    async def _post_sdk(self, payload: bytes, sent_at: float, body: dict[str, Any]) -> tuple[bytes, Mapping[str, str]]:
        import httpx2
        import openai

        try:
            # bytes pass through the SDK untouched (no deep copy of the options, no re-encoding);
            # the SDK's timeout is per read: the deadline for the whole call is ours
            async with asyncio.timeout(self.config.timeout):
                response = await self.openai_client.post("/chat/completions", content=payload, cast_to=httpx2.Response)
                return response.content, response.headers
        except TimeoutError:
            raise _Retry(f"timed out after {self.config.timeout:g}s") from None
        except openai.APIStatusError as error:
            raise self._status_fault(
                error.status_code, error.response.headers, self.scrub(_error_message(error)), sent_at, body
            ) from None
        except openai.APIConnectionError as error:  # includes APITimeoutError
            if _is_connect_error(error):
                raise _Retry(f"cannot connect: {_root_message(error)}", connect=True) from None
            if isinstance(error, openai.APITimeoutError) and _is_timeout(error):
                raise _Retry(f"timed out after {self.config.timeout:g}s") from None
            raise _Retry(f"connection error: {_root_message(error)}") from None
        except httpx2.HTTPError as error:  # a body cut short while being read
            raise _Retry(f"connection error: {_root_message(error)}") from None

    async def _post_direct(
        self, payload: bytes, sent_at: float, body: dict[str, Any]
    ) -> tuple[bytes, Mapping[str, str]]:
        from glan_dataset.llm import transport

        assert self._direct is not None
        try:
            return await self._direct.post(payload)
        except transport.HTTPStatusFault as fault:
            raise self._status_fault(fault.status, fault.headers, self.scrub(fault.message), sent_at, body) from None
        except transport.ConnectFault as fault:
            raise _Retry(f"cannot connect: {fault}"[:200], connect=True) from None
        except transport.TimeoutFault:
            raise _Retry(f"timed out after {self.config.timeout:g}s") from None
        except transport.ConnectionFault as fault:
            raise _Retry(f"connection error: {fault}") from None

    def _status_fault(
        self, status: int, headers: Mapping[str, str], message: str, sent_at: float, body: dict[str, Any]
    ) -> Exception:
        """What a non-2xx status means for the unit (and for the whole run: a bad key stops it)."""
        if status in (429, 503):
            self._limits.concurrency.on_overload(sent_at)
        if status in (401, 403):
            return ConfigurationError(
                f"the LLM endpoint at {self.host} refused the API key (HTTP {status}): check OPENAI_API_KEY"
            )
        if status == 407:  # an http proxy in front of an http endpoint (for https it is a ConnectFault)
            return ConfigurationError(
                "the proxy refused its credentials (HTTP 407): check the user:password in HTTP_PROXY / ALL_PROXY"
            )
        if status == 404:
            return ConfigurationError(
                f"the LLM endpoint at {self.host} answered 404 for /chat/completions with model "
                f"{body.get('model')!r}: check --base-url (it usually ends in /v1) and the model name"
            )
        if status in (408, 409, 429) or status >= 500:
            return _Retry(f"HTTP {status}", retry_after=retry_after_seconds(headers), overload=status in (429, 503))
        return _GiveUp(f"HTTP {status}: {message}")


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _error_message(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"][:300]
    return str(error.message)[:300]


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


_CONNECT_ERRORS = {"ClientConnectorError", "ClientConnectorDNSError", "ConnectionTimeoutError", "gaierror"}


def _is_connect_error(error: BaseException) -> bool:
    """True when no connection could be opened (refused, DNS, connect timeout), as opposed to one
    dropped mid-call. The aiohttp transport maps both to httpx2.ConnectTimeout, so look at the root."""
    import httpx2

    for item in _chain(error):
        if isinstance(item, (httpx2.ConnectError, ConnectionRefusedError)) or type(item).__name__ in _CONNECT_ERRORS:
            return True
    return False


def _is_timeout(error: BaseException) -> bool:
    """A real timeout; aiohttp's disconnects also arrive as APITimeoutError (via httpx2.ConnectTimeout)."""
    for item in _chain(error):
        if type(item).__name__ in ("ServerDisconnectedError", "ClientOSError", "ClientPayloadError"):
            return False
    return True


def _root_message(error: BaseException) -> str:
    current = error
    while current.__cause__ is not None:
        current = current.__cause__
    return (type(current).__name__ + (f": {current}" if str(current) else ""))[:200]
