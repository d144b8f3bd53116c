"""What online and batch calls share: prepare a request, read a completion, judge it, re-ask, look it
up in the cache and commit it. ``LLMEngine`` (online) and ``BatchRunner`` (Batch API) are both
clients of :class:`RequestCore`; neither knows the other's internals.

A completion is judged in this order, and each verdict has its own failure reason (and kind, counted
per stage in the run summary and written to RUN/failures.jsonl):

- ``finish_reason == "length"``: truncated, never a success, never "invalid JSON". A request with a
  ``max_tokens_cap`` is asked again with a doubled budget up to the cap first.
- ``finish_reason == "content_filter"``: withheld by the endpoint.
- a refusal (the API's ``message.refusal``, or a reply that opens with "I'm sorry, but I can't ..."),
- invalid structured output (re-asked with the validation error), then an empty reply.

``<think>...</think>`` blocks are removed from the text and ``reasoning_content`` is never read as
text; reasoning tokens (``usage.completion_tokens_details.reasoning_tokens``) are counted. Any text
a server echoes back is scrubbed of the API key before it reaches a reason, a log line or the cache.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ValidationError

from glan_dataset.llm.cache import ResponseCache, cache_keys_encoded, canonical_json, scalar_json
from glan_dataset.llm.cost import UsageLedger
from glan_dataset.llm.types import ChatRequest, ChatResult

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

SchemaDialect = Literal["full", "openai"]

# Models whose API takes max_completion_tokens and rejects max_tokens (OpenAI's reasoning families).
_COMPLETION_TOKENS_MODELS = re.compile(r"^(?:[\w.-]+/)?(?:o\d|gpt-5)", re.IGNORECASE)
# JSON Schema keywords OpenAI's strict Structured Outputs mode rejects (llama.cpp, vLLM and Ollama
# compile them into their grammars); items bounds (minItems/maxItems) are accepted by all four.
_OPENAI_UNSUPPORTED = frozenset({"minLength", "maxLength"})
_THINK = re.compile(r"<think(?:ing)?>.*?</think(?:ing)?>\s*", re.DOTALL | re.IGNORECASE)
_OPEN_THINK = re.compile(r"^\s*<think(?:ing)?>", re.IGNORECASE)
REFUSAL = re.compile(
    r"^\W*(?:i['’]m|i am)\s+(?:very\s+|really\s+)?sorry,?\s+(?:but\s+)?i\s+(?:can(?:no|['’])t|am unable|won['’]t|"
    r"must decline)|^\W*i\s+(?:can(?:no|['’])t|am unable to|won['’]t)\s+(?:help|assist|comply|fulfil)(?!\s+but\b)"
    r"|^\W*(?:sorry|unfortunately),?\s+(?:but\s+)?i\s+(?:can(?:no|['’])t|am unable to)\s+(?:help|assist|comply)"
    r"(?!\s+but\b)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
REDACTED = "[redacted]"
TRUNCATED_HINT = "raise --max-tokens (or the server's limit)"


class MalformedResponse(Exception):
    """A 2xx body that is not a chat completion; transient (retried like a broken connection)."""


class Completion(NamedTuple):
    """What the engine keeps of one chat.completion body (reasoning text is dropped here)."""

    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    finish_reason: str | None
    refusal: str | None


class Problem(NamedTuple):
    """Why a completion is not a result. ``retry``: "reask" (structured output, with the error),
    "grow" (a larger token budget), "again" (the same request), or "" (final for this unit)."""

    kind: str
    reason: str
    retry: str


class Prepared:
    """A request ready to send: its cache keys and JSON body (as a dict, and encoded once as
    ``payload``); ``budget`` is the token budget of the body (grown after a truncation when the
    request has a cap). Whoever replaces ``body`` replaces ``payload`` too (``set_body``)."""

    __slots__ = ("request", "key", "pkey", "body", "payload", "estimate", "budget")

    def __init__(
        self,
        request: ChatRequest,
        key: str,
        pkey: str,
        body: dict[str, Any],
        estimate: int,
        budget: int | None,
        payload: bytes | None = None,
    ) -> None:
        self.request = request
        self.key = key
        self.pkey = pkey
        self.body = body
        self.payload = payload if payload is not None else _encode(body).encode()
        self.estimate = estimate
        self.budget = budget

    def set_body(self, body: dict[str, Any]) -> None:
        self.body = body
        self.payload = _encode(body).encode()


def token_field(model: str, setting: str = "auto") -> str:
    """``max_completion_tokens`` for OpenAI's o-series and gpt-5 families (they reject ``max_tokens``),
    ``max_tokens`` elsewhere (what vLLM, llama.cpp, Ollama and older models read)."""
    if setting != "auto":
        return setting
    return "max_completion_tokens" if _COMPLETION_TOKENS_MODELS.match(model) else "max_tokens"


def schema_dialect(base_url: str | None, setting: str = "auto") -> SchemaDialect:
    """Which JSON Schema subset the endpoint accepts: OpenAI's own API (and Azure OpenAI) run strict
    mode, which rejects string length bounds; every other server gets the full schema."""
    if setting in ("full", "openai"):
        return setting  # type: ignore[return-value]
    host = (base_url or "https://api.openai.com").lower()
    return "openai" if "api.openai.com" in host or ".openai.azure.com" in host else "full"


def degrade_schema(node: Any, dialect: SchemaDialect) -> Any:
    """The schema without the keywords this dialect rejects (a copy; the input is not changed)."""
    if dialect == "full":
        return node
    if isinstance(node, dict):
        return {k: degrade_schema(v, dialect) for k, v in node.items() if k not in _OPENAI_UNSUPPORTED}
    if isinstance(node, list):
        return [degrade_schema(v, dialect) for v in node]
    return node


def failure_kind(reason: str) -> str:
    """A short, countable name for a failure reason (the summary's and failures.jsonl's ``kind``)."""
    lowered = reason.lower()
    for prefix, kind in (
        ("truncated", "truncated"),
        ("refused", "refused"),
        ("content filter", "content_filter"),
        ("invalid structured output", "invalid_output"),
        ("empty", "empty"),
        ("the model returned an empty", "empty"),
        ("timed out", "timeout"),
        ("cannot connect", "unreachable"),
        ("connection error", "connection"),
        ("malformed", "malformed_response"),
        ("invalid response body", "malformed_response"),
        ("batch cancelled", "batch_cancelled"),
        ("batch item failed", "batch_item"),
        ("no result from the batch", "batch_item"),
    ):
        if lowered.startswith(prefix):
            return kind
    match = re.match(r"http (\d{3})", lowered)
    return f"http_{match.group(1)}" if match else "other"


class Scrubber:
    """Removes the API key (and any Bearer token) from text a server echoed back."""

    __slots__ = ("_secrets",)

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = tuple(s for s in secrets if s and len(s) >= 4)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        if "earer" in text:
            text = _BEARER.sub(r"\1" + REDACTED, text)
        return text


def read_completion(data: Any, scrub: Scrubber) -> Completion:
    """The completion in a chat.completion JSON body (online or a Batch API output line)."""
    try:
        choice = data["choices"][0]
        message = choice["message"]
        text = message.get("content")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise MalformedResponse("malformed response: no choices[0].message.content") from None
    if text is None:
        text = ""
    elif not isinstance(text, str):
        raise MalformedResponse("malformed response: choices[0].message.content is not a string")
    reasoning_chars = len(message.get("reasoning_content") or "") if isinstance(message, dict) else 0
    if "<think" in text or "<THINK" in text:
        if _OPEN_THINK.match(text) and "</think" not in text.lower():
            reasoning_chars += len(text)
            text = ""  # the reply never left its reasoning block
        else:
            stripped = _THINK.sub("", text)
            reasoning_chars += len(text) - len(stripped)
            text = stripped.strip()
    refusal = message.get("refusal") if isinstance(message, dict) else None
    usage = data.get("usage") or {}
    details = usage.get("completion_tokens_details") or {}
    reasoning = int(details.get("reasoning_tokens") or 0) if isinstance(details, dict) else 0
    if not reasoning and reasoning_chars:
        reasoning = reasoning_chars // 4 + 1  # the server did not count them: estimate (~4 chars a token)
    completion_tokens = int(usage.get("completion_tokens") or 0)
    return Completion(
        scrub(text),
        str(data.get("model") or ""),
        int(usage.get("prompt_tokens") or 0),
        max(completion_tokens, reasoning),  # a server that leaves reasoning out of completion_tokens still pays it
        reasoning,
        choice.get("finish_reason") if isinstance(choice, dict) else None,
        scrub(refusal) if isinstance(refusal, str) and refusal else None,
    )


def validate(model: type[BaseModel], text: str) -> tuple[BaseModel, str]:
    """Validate a structured reply; a reply wrapped in a Markdown code fence is accepted (and cached)
    as the JSON inside it, since models without strict-schema support often fence their JSON."""
    try:
        return model.model_validate_json(text), text
    except ValidationError:
        inner = _unfence(text)
        if inner is None:
            raise
        return model.model_validate_json(inner), inner


def _unfence(text: str) -> str | None:
    stripped = text.strip()
    if not stripped.startswith("```"):
        return None
    first_newline = stripped.find("\n")
    if first_newline < 0 or not stripped.endswith("```"):
        return None
    return stripped[first_newline + 1 : -3].strip()


def summarise(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False)[:5]:
        location = ".".join(str(p) for p in item.get("loc", ())) or "(root)"
        parts.append(f"{location}: {item.get('msg')}")
    return "; ".join(parts)[:400]


def reask_body(body: dict[str, Any], bad_text: str, problem: str) -> dict[str, Any]:
    """The original conversation + the invalid reply + what was wrong (never accumulating turns)."""
    follow_up = (
        f"Your reply could not be used ({problem}). Reply again with only a JSON object that matches the "
        "required schema, with no other text."
    )
    messages = [
        *body["messages"],
        {"role": "assistant", "content": bad_text[:4000]},
        {"role": "user", "content": follow_up},
    ]
    return {**body, "messages": messages}


async def aiter_requests(requests: Iterable[ChatRequest] | AsyncIterable[ChatRequest]) -> AsyncIterator[ChatRequest]:
    if isinstance(requests, AsyncIterable):
        async for request in requests:
            yield request
    else:
        for request in requests:
            yield request


class RequestCore:
    """Prepare, judge, look up and commit requests for one run directory's cache and ledger."""

    def __init__(
        self,
        cache: ResponseCache,
        usage: UsageLedger,
        scrub: Scrubber,
        *,
        dialect: SchemaDialect = "full",
        token_setting: str = "auto",
        ignore_params: bool = False,
    ) -> None:
        self.cache = cache
        self.usage = usage
        self.scrub = scrub
        self.dialect = dialect
        self.token_setting = token_setting
        self.ignore_params = ignore_params
        self._formats: dict[type[BaseModel], tuple[str, dict[str, Any]]] = {}
        self._encoded: dict[type[BaseModel], tuple[str, str]] = {}
        self._completion_estimate: dict[str, float] = {}

    # ----- prepare ---------------------------------------------------------------------------------

    def response_format(self, model: type[BaseModel]) -> tuple[str, dict[str, Any]]:
        """(schema JSON for the cache key, response_format to send), built as chat.completions.parse
        does; the key always uses the full schema, the body the endpoint's dialect of it."""
        cached = self._formats.get(model)
        if cached is None:
            from openai.lib._parsing._completions import type_to_response_format_param

            response_format: dict[str, Any] = dict(type_to_response_format_param(model))  # type: ignore[arg-type]
            schema = response_format["json_schema"]["schema"]
            schema_json = canonical_json(schema)
            if self.dialect != "full":
                spec = {**response_format["json_schema"], "schema": degrade_schema(schema, self.dialect)}
                response_format = {**response_format, "json_schema": spec}
            cached = self._formats[model] = (schema_json, response_format)
        return cached

    def prepare(self, request: ChatRequest) -> Prepared:
        """Cache keys and wire body. The messages are encoded once (canonically) for both: this is
        per-call CPU at a thousand calls a second."""
        messages_json = canonical_json(request.messages)
        body: dict[str, Any] = {"model": request.model, "messages": request.messages, "seed": request.sample_index}
        parts = [
            f'{{"model":{scalar_json(request.model)},"messages":{messages_json},"seed":{scalar_json(request.sample_index)}'
        ]
        schema_field = "null"
        if request.response_model is not None:
            schema_json, body["response_format"] = self.response_format(request.response_model)
            schema_field, format_json = self._encoded_format(request.response_model, schema_json)
            parts.append(f',"response_format":{format_json}')
        if request.temperature is not None:
            body["temperature"] = request.temperature
            parts.append(f',"temperature":{scalar_json(request.temperature)}')
        if request.top_p is not None:
            body["top_p"] = request.top_p
            parts.append(f',"top_p":{scalar_json(request.top_p)}')
        if request.max_tokens is not None:
            field = token_field(request.model, self.token_setting)
            body[field] = request.max_tokens
            parts.append(f',"{field}":{scalar_json(request.max_tokens)}')
        parts.append("}")
        key, pkey = cache_keys_encoded(
            request.model,
            messages_json,
            request.temperature,
            request.top_p,
            request.max_tokens,
            schema_field,
            request.sample_index,
        )
        prompt_chars = len(messages_json)
        expected = self._completion_estimate.get(request.stage, 0.0)
        if request.max_tokens is not None:
            expected = min(expected, request.max_tokens)
        estimate = prompt_chars // 4 + int(expected) + 1
        return Prepared(request, key, pkey, body, estimate, request.max_tokens, "".join(parts).encode())

    def _encoded_format(self, model: type[BaseModel], schema_json: str) -> tuple[str, str]:
        """(the schema as a JSON string for the key, the response_format as JSON for the body)."""
        encoded = self._encoded.get(model)
        if encoded is None:
            encoded = self._encoded[model] = (_encode(schema_json), _encode(self._formats[model][1]))
        return encoded

    def with_budget(self, body: dict[str, Any], budget: int) -> dict[str, Any]:
        """``body`` asking for ``budget`` completion tokens (a truncated request with a cap)."""
        return {**body, token_field(body["model"], self.token_setting): budget}

    # ----- cache -----------------------------------------------------------------------------------

    def cached(self, prepared: Prepared) -> ChatResult | None:
        row = self.cache.get(prepared.key)
        if row is None and self.ignore_params:
            row = self.cache.get_ignoring_params(prepared.pkey)
        if row is None:
            return None
        request = prepared.request
        parsed = None
        if request.response_model is not None:
            try:
                parsed = request.response_model.model_validate_json(row.text)
            except ValidationError:
                return None  # a validator changed since it was cached: ask again
        return ChatResult.model_construct(
            key=request.key,
            text=row.text,
            parsed=parsed,
            model=row.model,
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
            reasoning_tokens=0,
            cached=True,
        )

    def commit(
        self,
        key: str,
        pkey: str,
        stage: str,
        request_model: str,
        completion: Completion,
        text: str,
        *,
        batch: bool = False,
    ) -> None:
        """Cache the answer (buffered; see ResponseCache) and count its tokens."""
        self.cache.put(
            key,
            pkey,
            stage,
            completion.model or request_model,
            text,
            completion.prompt_tokens,
            completion.completion_tokens,
            batch=batch,
            usage_model=request_model,
            reasoning_tokens=completion.reasoning_tokens,
        )
        self._count(stage, request_model, completion, batch)

    @staticmethod
    def result(key: str, request_model: str, completion: Completion, text: str, parsed: BaseModel | None) -> ChatResult:
        return ChatResult.model_construct(
            key=key,
            text=text,
            parsed=parsed,
            model=completion.model or request_model,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            reasoning_tokens=completion.reasoning_tokens,
            cached=False,
        )

    def charge(self, stage: str, model: str, completion: Completion, *, batch: bool = False) -> None:
        """Tokens paid for a reply that is not kept (truncated, refused, invalid)."""
        self.cache.add_usage(
            stage,
            model,
            completion.prompt_tokens,
            completion.completion_tokens,
            batch=batch,
            reasoning_tokens=completion.reasoning_tokens,
        )
        self._count(stage, model, completion, batch)

    def _count(self, stage: str, model: str, completion: Completion, batch: bool) -> None:
        """This session's usage ledger (progress, summary) counts a paid call, kept or not."""
        self.usage.record_call(
            stage,
            model,
            completion.prompt_tokens,
            completion.completion_tokens,
            batch=batch,
            reasoning_tokens=completion.reasoning_tokens,
        )

    # ----- judge -----------------------------------------------------------------------------------

    def note_completion(self, stage: str, completion_tokens: int) -> None:
        """Running mean of completion length per stage: the tpm estimate, instead of max_tokens."""
        previous = self._completion_estimate.get(stage)
        self._completion_estimate[stage] = (
            completion_tokens if previous is None else 0.95 * previous + 0.05 * completion_tokens
        )

    def judge(
        self,
        completion: Completion,
        response_model: type[BaseModel] | None,
        *,
        budget: int | None = None,
        cap: int | None = None,
    ) -> tuple[BaseModel | None, str] | Problem:
        """(parsed, text to cache) for a usable completion, else the Problem with it. ``budget``: the
        token budget the request was sent with; ``cap``: how far a truncated request may grow."""
        finish = completion.finish_reason
        if finish == "length":
            budget = budget or completion.completion_tokens
            retry = "grow" if cap is not None and budget < cap else ""
            return Problem("truncated", f"truncated at {budget} tokens: {TRUNCATED_HINT}", retry)
        if finish == "content_filter":
            return Problem("content_filter", "content filter: the endpoint withheld the reply", "")
        text = completion.text
        if completion.refusal:
            return Problem("refused", f"refused: {completion.refusal[:200]}", "")
        if REFUSAL.match(text[:200]):
            return Problem("refused", f"refused: {text[:200]}", "")
        if response_model is not None:
            try:
                return validate(response_model, text)
            except ValidationError as error:
                return Problem("invalid_output", "invalid structured output: " + summarise(error), "reask")
        if not text.strip():
            return Problem("empty", "empty completion", "again")
        return None, text

    @staticmethod
    def grown_budget(budget: int | None, cap: int, completion: Completion) -> int:
        """The next budget after a truncation: double the last one, at most the cap."""
        last = budget or completion.completion_tokens or 1
        return min(cap, max(2 * last, last + 1))
