"""Batch API mode: the same requests, results and cache as online mode, at half the price.

Requests that are not cached are written as JSONL (one line per distinct cache key; custom_id = the
cache key) into files of at most ``batch_max_requests`` lines and ``batch_max_bytes`` bytes, uploaded
and submitted. Each batch has a state file RUN/batches/<local id>.json, written atomically *before*
it is submitted (with the custom_id -> unit keys map) and again with the batch id after, and the
batch carries the local id in its metadata: a process killed at any point resumes polling the same
batch (adopting it by metadata if the id was never written) instead of paying for it twice.

Results are read and judged by the same core as online calls (llm/core.py: truncation, refusals,
content filter, reasoning, validation). When a batch ends, valid results are committed to the cache
and yielded; truncated replies of requests with a ``max_tokens_cap`` are asked again online with a
larger budget; failed or missing items are re-submitted in a new batch (at most
``batch_max_rounds`` rounds, then they are failures); structured replies that fail validation are
re-asked online with the validation error. A batch
cancelled by the user (``glan batches cancel``) turns its unfinished units into failures: the next
run submits them again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pydantic import BaseModel

from glan_dataset.llm.core import Completion, MalformedResponse, Problem, Scrubber, aiter_requests, read_completion
from glan_dataset.llm.core import reask_body as make_reask_body
from glan_dataset.llm.types import ChatFailure, ChatRequest, ChatResult
from glan_dataset.rundir import write_json_atomic

if TYPE_CHECKING:
    import openai

    from glan_dataset.llm.engine import LLMEngine
    from glan_dataset.llm.progress import StageStats

log = logging.getLogger("glan_dataset.llm")

ENDPOINT = "/v1/chat/completions"
_TERMINAL = {"completed", "failed", "expired", "cancelled"}
_METADATA_KEY = "glan_local_id"


@contextmanager
def control_errors(engine: LLMEngine) -> Iterator[None]:
    """Turn SDK errors of the control plane (upload, create, poll) into one-line user errors."""
    import openai

    from glan_dataset.errors import ConfigurationError
    from glan_dataset.llm.types import EndpointUnreachableError

    try:
        yield
    except openai.AuthenticationError:
        raise ConfigurationError(
            f"the LLM endpoint at {engine.host} refused the API key: check OPENAI_API_KEY"
        ) from None
    except openai.APIConnectionError as error:
        raise EndpointUnreachableError(
            f"cannot reach the Batch API at {engine.host} ({type(error).__name__}); check the server and --base-url, "
            "then run the same command again: submitted batches are resumed, not paid twice"
        ) from None
    except openai.NotFoundError as error:
        raise ConfigurationError(
            f"the endpoint at {engine.host} has no Batch API ({error.status_code} for a files/batches call): "
            "use --mode online with this server"
        ) from None


@dataclass
class BatchState:
    """What RUN/batches/<local_id>.json holds (no secrets, no base URL)."""

    local_id: str
    stage: str
    round: int
    status: str  # submitting | submitted | collected
    structured: bool
    requests: dict[str, list[str]]  # custom_id -> unit keys
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    batch_id: str | None = None
    input_file_id: str | None = None
    remote_status: str | None = None
    request_counts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchState:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def state_path(batches_dir: Path, local_id: str) -> Path:
    return batches_dir / f"{local_id}.json"


def input_path(batches_dir: Path, local_id: str) -> Path:
    return batches_dir / f"{local_id}.input.jsonl"


def load_states(batches_dir: Path) -> list[BatchState]:
    if not batches_dir.is_dir():
        return []
    states = [
        BatchState.from_json(json.loads(p.read_text(encoding="utf-8"))) for p in sorted(batches_dir.glob("*.json"))
    ]
    return sorted(states, key=lambda s: s.created)


def save_state(batches_dir: Path, state: BatchState) -> None:
    write_json_atomic(state_path(batches_dir, state.local_id), state.to_json())


class _Chunk:
    """A JSONL input file being written: lines go straight to disk, never accumulate in memory."""

    def __init__(self, batches_dir: Path, stage: str, round_: int) -> None:
        safe_stage = re.sub(r"[^A-Za-z0-9_.-]+", "_", stage)[:60]
        self.local_id = f"{safe_stage}-r{round_}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        self.path = input_path(batches_dir, self.local_id)
        batches_dir.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] | None = open(self.path, "wb")
        self.requests: dict[str, list[str]] = {}
        self.bytes = 0
        self.structured = False

    def fits(self, size: int, max_lines: int, max_bytes: int) -> bool:
        return len(self.requests) < max_lines and self.bytes + size <= max_bytes

    def add(self, custom_id: str, keys: list[str], line: bytes, structured: bool) -> None:
        assert self._file is not None
        self._file.write(line)
        self.bytes += len(line)
        self.requests[custom_id] = keys
        self.structured |= structured

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class BatchRunner:
    """One ``stream`` call in batch mode (see the module docstring)."""

    def __init__(self, engine: LLMEngine, stage: str, stats: StageStats) -> None:
        self.engine = engine
        self.stage = stage
        self.stats = stats
        self.config = engine.config
        self.dir = engine.run_dir.batches_dir
        self._client_cached: openai.AsyncOpenAI | None = None
        # custom_id -> the units of this stream still waiting for it
        self.waiting: dict[str, list[_Unit]] = {}
        self.states: dict[str, BatchState] = {}  # local_id -> state of batches this stream waits for
        self._submitted_ids: dict[str, str] = {}  # custom_id -> local_id, for batches submitted earlier
        self._outbox: asyncio.Queue[ChatResult | ChatFailure] = asyncio.Queue()
        self._online: set[asyncio.Task[None]] = set()

    @property
    def client(self) -> openai.AsyncOpenAI:
        """Control-plane calls (upload, create, poll) are few: let the SDK retry them itself."""
        if self._client_cached is None:
            self._client_cached = self.engine.openai_client.with_options(max_retries=4)
        return self._client_cached

    # ----- the stream ------------------------------------------------------------------------------

    async def run(
        self, requests: Iterable[ChatRequest] | AsyncIterable[ChatRequest]
    ) -> AsyncIterator[ChatResult | ChatFailure]:
        try:
            async for outcome in self._run(requests):
                yield outcome
        finally:
            for task in list(self._online):
                task.cancel()
            if self._online:
                await asyncio.gather(*self._online, return_exceptions=True)

    async def _run(
        self, requests: Iterable[ChatRequest] | AsyncIterable[ChatRequest]
    ) -> AsyncIterator[ChatResult | ChatFailure]:
        engine = self.engine
        core = engine.core
        _remove_orphan_inputs(self.dir, before=engine.opened_at)
        earlier = {s.local_id: s for s in load_states(self.dir) if s.stage == self.stage and s.status != "collected"}
        for state in earlier.values():
            for custom_id in state.requests:
                self._submitted_ids[custom_id] = state.local_id
        claimed: dict[str, BatchState] = {}
        chunk: _Chunk | None = None
        async for request in aiter_requests(requests):
            prepared = core.prepare(request)
            hit = core.cached(prepared)
            if hit is not None:
                self.stats.cached += 1
                self.stats.done += 1
                engine.usage.record_cache_hit(request.stage, request.model)
                yield hit
                continue
            entry = _Unit(
                request.key,
                request.response_model,
                request.model,
                prepared.pkey,
                request.max_tokens,
                request.max_tokens_cap,
            )
            units = self.waiting.get(prepared.key)
            if units is not None:  # same content asked twice in this stream: one line, two outcomes
                units.append(entry)
                continue
            self.waiting[prepared.key] = [entry]
            self.stats.in_flight += 1
            local_id = self._submitted_ids.get(prepared.key)
            if local_id is not None:
                claimed[local_id] = earlier[local_id]
                continue
            line = _line(prepared.key, prepared.body)
            if chunk is not None and not chunk.fits(
                len(line), self.config.batch_max_requests, self.config.batch_max_bytes
            ):
                await self._submit(chunk, round_=1)
                chunk = None
            if chunk is None:
                chunk = _Chunk(self.dir, self.stage, 1)
            chunk.add(prepared.key, [request.key], line, request.response_model is not None)
        if chunk is not None:
            await self._submit(chunk, round_=1)
        for local_id, state in claimed.items():
            log.info(
                "batch %s (%s): resuming the poll of a batch submitted by an earlier run", state.batch_id, local_id
            )
            await self._ensure_submitted(state)
            self.states[local_id] = state
        # keys of earlier batches never claimed by a unit of this stream: those batches are left for
        # the stream that asks for them
        self._submitted_ids.clear()

        while self.states or self._online or not self._outbox.empty():
            while not self._outbox.empty():
                yield self._outbox.get_nowait()
            if not self.states and not self._online:
                break
            await self._poll_once()
            while not self._outbox.empty():
                yield self._outbox.get_nowait()
            if self.states or self._online:
                await self._sleep_or_online(self.config.batch_poll_interval)
        for units in self.waiting.values():  # cannot happen unless a batch lost items silently
            for unit in units:
                yield engine.record_failure(self.stage, unit.key, "no result from the Batch API", 1, self.stats)
        self.waiting.clear()

    async def _sleep_or_online(self, seconds: float) -> None:
        """Wait for the next poll, waking early when an online re-ask finishes."""
        if not self._online:
            await asyncio.sleep(seconds)
            return
        await asyncio.wait(self._online, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)

    # ----- submit ----------------------------------------------------------------------------------

    async def _submit(self, chunk: _Chunk, *, round_: int) -> None:
        chunk.close()
        state = BatchState(
            local_id=chunk.local_id,
            stage=self.stage,
            round=round_,
            status="submitting",
            structured=chunk.structured,
            requests=chunk.requests,
        )
        save_state(self.dir, state)  # before any remote call: a crash from here on can adopt the batch
        await self._ensure_submitted(state)
        self.states[state.local_id] = state

    async def _ensure_submitted(self, state: BatchState) -> None:
        if state.batch_id is not None:
            return
        found = await self._find_remote(state.local_id)
        if found is None:
            path = input_path(self.dir, state.local_id)
            uploaded = await self.client.files.create(file=path, purpose="batch")
            state.input_file_id = uploaded.id
            batch = await self.client.batches.create(
                input_file_id=uploaded.id,
                endpoint=ENDPOINT,
                completion_window="24h",
                metadata={_METADATA_KEY: state.local_id, "stage": self.stage[:500]},
            )
            found = batch
        state.batch_id = found.id
        state.remote_status = found.status
        state.status = "submitted"
        save_state(self.dir, state)
        log.info(
            "batch %s: %d requests submitted (%s, round %d)", found.id, len(state.requests), self.stage, state.round
        )

    async def _find_remote(self, local_id: str) -> Any | None:
        """A batch created for this local id by a process that died before saving its id."""
        checked = 0
        async for batch in self.client.batches.list(limit=100):
            if (batch.metadata or {}).get(_METADATA_KEY) == local_id:
                return batch
            checked += 1
            if checked >= 1000:
                break
        return None

    # ----- poll and collect ------------------------------------------------------------------------

    async def _poll_once(self) -> None:
        for local_id, state in list(self.states.items()):
            assert state.batch_id is not None
            batch = await self.client.batches.retrieve(state.batch_id)
            counts = batch.request_counts
            state.request_counts = counts.model_dump() if counts is not None else {}
            if batch.status != state.remote_status:
                state.remote_status = batch.status
                save_state(self.dir, state)
            if batch.status in _TERMINAL:
                await self._collect(state, batch)
                del self.states[local_id]

    async def _collect(self, state: BatchState, batch: Any) -> None:
        pending = set(state.requests)  # custom_ids without a usable result yet
        reask: dict[str, tuple[Completion, Problem]] = {}  # custom_id -> what to ask again online, and why
        item_errors: dict[str, str] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            content = await self.client.files.content(file_id)
            for raw in content.text.splitlines():
                if not raw.strip():
                    continue
                item = json.loads(raw)
                custom_id = item.get("custom_id")
                if custom_id not in pending:
                    continue
                outcome = _item_completion(item, self.engine.scrub)
                if isinstance(outcome, str):
                    item_errors[custom_id] = outcome
                    continue
                problem = self._store(custom_id, state, outcome)
                if problem is None:
                    pending.discard(custom_id)
                elif problem is _UNCLAIMED:
                    continue
                elif problem.retry in ("reask", "grow"):
                    reask[custom_id] = (outcome, problem)
                    pending.discard(custom_id)
                elif problem.retry == "":  # final: truncated without a cap, refused, filtered
                    self._fail(custom_id, problem.reason, state.round)
                    pending.discard(custom_id)
        self.engine.flush()  # the collected results are on disk before the batch is marked collected
        retry = pending  # errored, expired or missing items (and empty replies)
        if batch.status == "cancelled":
            for custom_id in retry:
                self._fail(custom_id, "batch cancelled", state.round)
            retry = set()
        elif state.round >= self.config.batch_max_rounds:
            for custom_id in retry:
                self._fail(
                    custom_id,
                    f"batch item failed after {state.round} rounds: {item_errors.get(custom_id, batch.status)}",
                    state.round,
                )
            retry = set()
        await self._requeue(state, retry, reask)
        state.status = "collected"
        state.requests = {}
        save_state(self.dir, state)
        input_path(self.dir, state.local_id).unlink(missing_ok=True)
        log.info("batch %s: %s, %d re-submitted, %d re-asked online", batch.id, batch.status, len(retry), len(reask))

    def _store(self, custom_id: str, state: BatchState, completion: Completion) -> Problem | None | Any:
        """Judge, commit and yield one result. Returns None when done, the Problem with it, or
        _UNCLAIMED when the result belongs to no unit of this stream and cannot be judged."""
        core = self.engine.core
        units = self.waiting.get(custom_id)
        if units is None and (state.structured or core.cache.get(custom_id) is not None):
            return _UNCLAIMED
        first = units[0] if units else None
        request_model = first.model if first else completion.model
        pkey = first.pkey if first else custom_id  # unknown without the request: no --cache-ignore-params match
        verdict = core.judge(
            completion,
            first.response_model if first else None,
            budget=first.budget if first else None,
            cap=first.cap if first else None,
        )
        if isinstance(verdict, Problem):
            core.charge(self.stage, request_model, completion, batch=True)
            return verdict
        parsed, text = verdict
        core.commit(custom_id, pkey, self.stage, request_model, completion, text, batch=True)
        if units:
            del self.waiting[custom_id]
            self.stats.in_flight -= 1
            for unit in units:
                self.stats.done += 1
                self._outbox.put_nowait(core.result(unit.key, request_model, completion, text, parsed))
        return None

    def _fail(self, custom_id: str, reason: str, attempts: int) -> None:
        units = self.waiting.pop(custom_id, None)
        if not units:
            return
        self.stats.in_flight -= 1
        for unit in units:
            self.stats.done += 1
            self._outbox.put_nowait(self.engine.record_failure(self.stage, unit.key, reason, attempts, self.stats))

    async def _requeue(self, state: BatchState, retry: set[str], reask: dict[str, tuple[Completion, Problem]]) -> None:
        """Items to submit again (new batch, next round) or re-ask online, read back from the input file."""
        if not retry and not reask:
            return
        path = input_path(self.dir, state.local_id)
        chunk: _Chunk | None = None
        with open(path, "rb") as source:
            for raw in source:
                line = json.loads(raw)
                custom_id = line["custom_id"]
                if custom_id in reask:
                    self._reask_online(custom_id, line["body"], *reask[custom_id])
                elif custom_id in retry:
                    if custom_id not in self.waiting:
                        continue  # nobody in this stream waits for it; a later run will ask again
                    if chunk is not None and not chunk.fits(
                        len(raw), self.config.batch_max_requests, self.config.batch_max_bytes
                    ):
                        await self._submit(chunk, round_=state.round + 1)
                        chunk = None
                    if chunk is None:
                        chunk = _Chunk(self.dir, self.stage, state.round + 1)
                    chunk.add(
                        custom_id,
                        state.requests[custom_id],
                        raw if raw.endswith(b"\n") else raw + b"\n",
                        "response_format" in line["body"],
                    )
                    self.stats.retries += 1
        if chunk is not None:
            await self._submit(chunk, round_=state.round + 1)

    def _reask_online(self, custom_id: str, body: dict[str, Any], completion: Completion, problem: Problem) -> None:
        """Ask a batch reply again online: with the validation error, or with a larger token budget."""
        units = self.waiting.pop(custom_id, None)
        if not units:
            return
        self.stats.in_flight -= 1
        first = units[0]
        request = ChatRequest(
            key=first.key,
            stage=self.stage,
            model=first.model,
            messages=body["messages"],
            temperature=body.get("temperature"),
            top_p=body.get("top_p"),
            max_tokens=first.budget,
            max_tokens_cap=first.cap,
            sample_index=int(body.get("seed") or 0),
            response_model=first.response_model,
        )
        engine = self.engine
        prepared = engine.core.prepare(request)
        prepared.key, prepared.pkey = custom_id, first.pkey
        if problem.retry == "grow":
            prepared.budget = engine.core.grown_budget(first.budget, first.cap or 0, completion)
            prepared.set_body(engine.core.with_budget(prepared.body, prepared.budget))
            follow_up = prepared.body
        else:
            follow_up = make_reask_body(prepared.body, completion.text, problem.reason)
        self.stats.retries += 1

        async def run() -> None:
            outcome = await engine.run_unit(prepared, self.stats, already_asked=1, body=follow_up)
            for unit in units:
                self.stats.done += 1
                self._outbox.put_nowait(
                    outcome.model_copy(update={"key": unit.key}) if unit.key != outcome.key else outcome
                )

        task = asyncio.get_running_loop().create_task(run())
        self._online.add(task)
        task.add_done_callback(self._online_done)

    def _online_done(self, task: asyncio.Task[None]) -> None:
        self._online.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("online re-ask failed: %s", task.exception())


_UNCLAIMED = object()


def _remove_orphan_inputs(batches_dir: Path, *, before: float) -> None:
    """Input files of chunks that an earlier (killed) process never submitted: no state file, older
    than this engine (a chunk another stream of this process is writing is newer)."""
    if batches_dir.is_dir():
        for path in batches_dir.glob("*.input.jsonl"):
            orphan = not state_path(batches_dir, path.name.removesuffix(".input.jsonl")).exists()
            if orphan and path.stat().st_mtime < before:
                path.unlink(missing_ok=True)


class _Unit:
    """A unit of this stream waiting for a batch result (small: the messages are not kept)."""

    __slots__ = ("key", "response_model", "model", "pkey", "budget", "cap")

    def __init__(
        self,
        key: str,
        response_model: type[BaseModel] | None,
        model: str,
        pkey: str,
        budget: int | None,
        cap: int | None,
    ) -> None:
        self.key = key
        self.response_model = response_model
        self.model = model
        self.pkey = pkey
        self.budget = budget
        self.cap = cap


def _line(custom_id: str, body: dict[str, Any]) -> bytes:
    return (
        json.dumps(
            {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        + "\n"
    ).encode()


def _item_completion(item: dict[str, Any], scrub: Scrubber) -> Completion | str:
    """The completion of a batch output line, or why it failed."""
    error = item.get("error")
    response = item.get("response") or {}
    if error:
        return scrub(f"{error.get('code') or 'error'}: {str(error.get('message') or '')[:200]}")
    status = response.get("status_code")
    body = response.get("body") or {}
    if status != 200:
        message = (body.get("error") or {}).get("message") if isinstance(body, dict) else None
        return scrub(f"HTTP {status}: {str(message or '')[:200]}")
    try:
        return read_completion(body, scrub)
    except MalformedResponse as problem:
        return str(problem)


# ----- `glan batches` helpers ----------------------------------------------------------------------


async def refresh_states(engine: LLMEngine) -> list[BatchState]:
    """The run's batches with their live status (for batches not yet collected)."""
    directory = engine.run_dir.batches_dir
    states = load_states(directory)
    client = engine.openai_client.with_options(max_retries=2)
    for state in states:
        if state.batch_id and state.status != "collected":
            with control_errors(engine):
                batch = await client.batches.retrieve(state.batch_id)
            state.remote_status = batch.status
            if batch.request_counts is not None:
                state.request_counts = batch.request_counts.model_dump()
            save_state(directory, state)
    return states


async def cancel_batches(engine: LLMEngine, batch_id: str | None = None) -> list[str]:
    """Cancel one batch of the run (by id or local id), or all its unfinished ones. Returns the ids."""
    from glan_dataset.errors import UsageError

    directory = engine.run_dir.batches_dir
    states = load_states(directory)
    if batch_id is not None:
        states = [s for s in states if batch_id in (s.batch_id, s.local_id)]
        if not states:
            raise UsageError(f"no batch {batch_id!r} in {directory}: see `glan batches list`")
    client = engine.openai_client.with_options(max_retries=2)
    cancelled = []
    for state in states:
        if not state.batch_id or state.status == "collected" or state.remote_status in _TERMINAL:
            continue
        with control_errors(engine):
            batch = await client.batches.cancel(state.batch_id)
        state.remote_status = batch.status
        save_state(directory, state)
        cancelled.append(state.batch_id)
    return cancelled
