"""The deterministic chat-completion "model" behind the fake server.

:meth:`CompletionEngine.complete` is a pure function of (server seed, canonical JSON
of the request body): identical bodies give identical ids, contents and usage, and a
different ``seed`` field (how clients vary repeated samples of one prompt) gives a
different answer. Only ``created`` (wall clock) differs between identical calls. The
direct endpoint and the Batch API share this engine, so a body answered through
either path yields the same content.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Callable
from random import Random
from typing import Any

from .schema_faker import GenContext, SchemaError, SchemaFaker, fake_json_object
from .text import DEMO_MARKER, TextMaker, plain_reply, prompt_words

_MAX_SCHEMA_CACHE = 1024
_MASK64 = (1 << 64) - 1


class RequestError(Exception):
    """A request the real API would reject with 400 (message and offending ``param``)."""

    def __init__(self, message: str, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status


def canonical_json(value: Any) -> bytes:
    """Key-sorted, compact UTF-8 JSON: the identity of a request for determinism."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def messages_sha(messages: Any) -> str:
    """sha256 of the canonical JSON of ``messages`` (for ``ServerStats.requests_log``)."""
    return hashlib.sha256(canonical_json(messages)).hexdigest()


def estimate_tokens(text: str) -> int:
    """~1.3 tokens per whitespace-separated word, like a rough BPE count of English."""
    return math.ceil(len(text.split()) * 1.3)


def message_text(message: dict[str, Any]) -> str:
    """The text of a message whose content is a string or a list of content parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message)
    return message_text(messages[-1]) if messages else ""


_COMPLETION_TOKENS_MODELS = re.compile(r"^(?:o\d|gpt-5)", re.IGNORECASE)
_STRICT_UNSUPPORTED = ("minLength", "maxLength")


def _schema_keywords(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = set(node)
        for value in node.values():
            found |= _schema_keywords(value)
        return found
    if isinstance(node, list):
        return set().union(*(_schema_keywords(v) for v in node)) if node else set()
    return set()


def validate_body(body: Any, *, strict_schemas: bool = False) -> None:
    """Reject what the real API rejects before any generation (raises :class:`RequestError`):
    ``max_tokens`` for o-series/gpt-5 models (they take ``max_completion_tokens``) and, with
    ``strict_schemas``, the schema keywords OpenAI's strict mode does not support."""
    if not isinstance(body, dict):
        raise RequestError("The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise RequestError("you must provide a model parameter", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty array.", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise RequestError(f"Invalid message at index {i}: a 'role' is required.", f"messages[{i}]")
    if body.get("stream"):
        raise RequestError("stream=true is not supported by the fake server.", "stream")
    if "max_tokens" in body and _COMPLETION_TOKENS_MODELS.match(body["model"]):
        raise RequestError(
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            "max_tokens",
        )
    n = body.get("n", 1)
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 16):
        raise RequestError("'n' must be an integer between 1 and 16.", "n")
    response_format = body.get("response_format")
    if response_format is None:
        return
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        raise RequestError("Invalid 'response_format.type'.", "response_format.type")
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise RequestError(
                "Missing required parameter: 'response_format.json_schema.name'.", "response_format.json_schema"
            )
        if not isinstance(spec.get("schema", {}), dict):
            raise RequestError(
                "'response_format.json_schema.schema' must be an object.", "response_format.json_schema.schema"
            )
        if strict_schemas:
            unsupported = sorted(_schema_keywords(spec.get("schema", {})) & set(_STRICT_UNSUPPORTED))
            if unsupported:
                raise RequestError(
                    f"Invalid schema for response_format: '{unsupported[0]}' is not permitted.",
                    "response_format",
                )


class CompletionEngine:
    """Turns a validated request body into a ChatCompletion dict.

    Holds only caches (compiled schemas), never state that influences answers beyond
    the constructor arguments.
    """

    def __init__(
        self, seed: int = 0, demo: bool = False, responder: Callable[[dict[str, Any]], str | None] | None = None
    ) -> None:
        self.seed = seed
        self.demo = demo
        self.responder = responder  # a test's planted replies: content for a body, or None for the default
        self._seed_prefix = f"glan-fake:{seed}:".encode()
        self._schemas: dict[str, SchemaFaker] = {}

    def is_structured(self, body: dict[str, Any]) -> bool:
        """Whether the request asks for JSON (``json_object`` or ``json_schema``)."""
        rf = body.get("response_format")
        return isinstance(rf, dict) and rf.get("type") in ("json_object", "json_schema")

    def complete(self, body: dict[str, Any], *, invalid_json: bool = False) -> dict[str, Any]:
        """The full ChatCompletion for ``body``; ``invalid_json`` injects a broken JSON answer."""
        # the budget cuts an answer, it does not change what the model would say: leave it out of the seed
        seeded = {k: v for k, v in body.items() if k not in ("max_tokens", "max_completion_tokens")}
        digest = hashlib.sha256(self._seed_prefix + canonical_json(seeded)).digest()
        base_seed = int.from_bytes(digest[:8], "big")
        n = body.get("n") or 1
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        choices = []
        completion_tokens = 0
        for index in range(n):
            rng = Random(base_seed ^ ((index * 0x9E3779B97F4A7C15) & _MASK64))
            content = self._content(body, rng)
            if invalid_json:
                content = _break_json(content, rng)
            content, finish = _apply_token_limit(content, limit)
            completion_tokens += estimate_tokens(content)
            choices.append(
                {
                    "index": index,
                    "message": {"role": "assistant", "content": content, "refusal": None, "annotations": []},
                    "logprobs": None,
                    "finish_reason": finish,
                }
            )
        prompt_tokens = sum(estimate_tokens(message_text(m)) + 3 for m in body["messages"])
        return {
            "id": "chatcmpl-" + digest[8:20].hex(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "system_fingerprint": "fp_glan_fake",
            "service_tier": "default",
        }

    def _content(self, body: dict[str, Any], rng: Random) -> str:
        planted = self.responder(body) if self.responder is not None else None
        if planted is not None:
            return planted
        prompt = last_user_text(body["messages"])
        rf = body.get("response_format")
        kind = rf.get("type") if isinstance(rf, dict) else None
        if kind == "json_schema":
            faker = self.faker(rf["json_schema"].get("schema") or {})
            ctx = GenContext(rng, TextMaker(rng, prompt_words(prompt)), self.demo)
            return json.dumps(faker.generate(ctx), ensure_ascii=False)
        if kind == "json_object":
            ctx = GenContext(rng, TextMaker(rng, prompt_words(prompt)), self.demo)
            return json.dumps(fake_json_object(ctx), ensure_ascii=False)
        text = plain_reply(rng, prompt)
        return f"{DEMO_MARKER} {text}" if self.demo else text

    def faker(self, schema: dict[str, Any]) -> SchemaFaker:
        """The compiled faker for ``schema``, cached by its JSON text (raises RequestError)."""
        key = json.dumps(schema)
        faker = self._schemas.get(key)
        if faker is None:
            try:
                faker = SchemaFaker(schema)
            except (SchemaError, TypeError, ValueError, RecursionError) as exc:
                raise RequestError(
                    f"Invalid schema for response_format: {exc}", "response_format.json_schema.schema"
                ) from exc
            if len(self._schemas) >= _MAX_SCHEMA_CACHE:
                self._schemas.clear()
            self._schemas[key] = faker
        return faker


def _break_json(content: str, rng: Random) -> str:
    """A realistic structured-output failure: truncated, markdown-fenced, or schema-invalid."""
    variant = rng.randrange(3)
    if variant == 0:
        return content[: max(1, len(content) // 2)]
    if variant == 1:
        return f"```json\n{content}\n```"
    return json.dumps({"result": json.loads(content), "note": "unexpected wrapper"})


def _apply_token_limit(content: str, limit: Any) -> tuple[str, str]:
    """Cut the answer to ``max_tokens`` (finish_reason "length") like a real model."""
    if not isinstance(limit, int) or limit <= 0 or estimate_tokens(content) <= limit:
        return content, "stop"
    words = content.split(" ")
    keep = max(1, int(limit / 1.3))
    return " ".join(words[:keep]), "length"
