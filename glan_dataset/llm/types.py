"""The engine's public data types: what a stage asks for, what it gets back, how the engine is set up."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from glan_dataset.errors import GlanError
from glan_dataset.llm.cost import PriceTable


class ChatRequest(BaseModel):
    """One unit of work. ``key`` names the unit in results and failures; the cache key is derived from
    the content (model, messages, sampling parameters, response schema, sample index), never from ``key``."""

    model_config = ConfigDict(frozen=True)

    key: str
    stage: str
    model: str
    messages: list[dict[str, str]]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    sample_index: int = 0
    response_model: type[BaseModel] | None = None
    # A truncated reply (finish_reason "length") is asked again with a doubled budget up to this cap
    # (conversions); without a cap truncation fails the unit at once. Not part of the cache key.
    max_tokens_cap: int | None = Field(None, ge=1)


class ChatResult(BaseModel):
    """A successful (and, with a response_model, validated) completion."""

    key: str
    text: str
    parsed: BaseModel | None = None
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0  # included in completion_tokens (what the API bills)
    cached: bool = False


class ChatFailure(BaseModel):
    """A unit that failed all its attempts; it is also in RUN/failures.jsonl and is retried next run."""

    key: str
    stage: str
    reason: str
    attempts: int


class EngineConfig(BaseModel):
    """How to reach the endpoint and how hard to push it. No field is ever written to disk with the key."""

    base_url: str | None = None
    # a fleet: every endpoint sharing the load, least outstanding first (glan_dataset.llm.fleet); base_url is the first
    base_urls: list[str] = Field(default_factory=list)
    api_key: SecretStr | None = None
    concurrency: int = Field(64, ge=1)
    timeout: float = Field(120.0, gt=0)  # seconds for a whole call (connect, send, read the body)
    max_attempts: int = Field(6, ge=1)
    structured_attempts: int = Field(3, ge=1)
    rpm: int | None = Field(None, ge=1)
    tpm: int | None = Field(None, ge=1)
    mode: Literal["online", "batch"] = "online"
    batch_poll_interval: float = Field(30.0, gt=0)
    cache_ignore_params: bool = False
    quiet: bool = False
    prices: PriceTable = PriceTable()
    # Beyond the agreed API: tuning knobs with production defaults (tests shrink them).
    backoff_base: float = Field(1.0, ge=0)
    backoff_max: float = Field(60.0, ge=0)
    # chat calls: "direct" = aiohttp without the SDK's request layers (0.35 ms CPU/call here, the
    # fastest, see llm/transport.py); "aiohttp" / "httpx" = through the openai SDK (0.8 / 1.8 ms).
    transport: Literal["direct", "aiohttp", "httpx"] = "direct"
    batch_max_requests: int = Field(50_000, ge=1)
    batch_max_bytes: int = Field(200_000_000, ge=1024)  # the API's 200 MB, read as decimal to stay under it
    batch_max_rounds: int = Field(3, ge=1)
    # The JSON Schema subset sent as response_format: "auto" = OpenAI's strict subset (no string
    # length bounds) for api.openai.com and Azure OpenAI, the full schema for every other server.
    schema_dialect: Literal["auto", "full", "openai"] = "auto"
    # The body field of the token budget: "auto" = max_completion_tokens for o-series/gpt-5 models.
    token_field: Literal["auto", "max_tokens", "max_completion_tokens"] = "auto"
    # Responses are committed to the cache in groups: a kill -9 loses at most the calls in flight
    # plus one group (commit_every responses or commit_interval seconds, whichever comes first).
    commit_every: int = Field(256, ge=1)
    commit_interval: float = Field(0.1, gt=0)


class EndpointUnreachableError(GlanError):
    """The endpoint refused connections (or its name did not resolve) for a whole unit's attempts."""


def endpoint_host(base_url: str | None) -> str:
    """Host[:port] of a base URL, without credentials, for messages."""
    if not base_url:
        return "api.openai.com"
    parts = urlsplit(base_url)
    host = parts.hostname or base_url
    return f"{host}:{parts.port}" if parts.port else host


def public_url(base_url: str) -> str:
    """A base URL fit to write down: no user, password, query or fragment (where credentials hide)."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
