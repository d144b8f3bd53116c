"""Fault injection plan and the seeded sampler that applies it.

Faults are drawn from their own ``random.Random(plan.seed)``, one draw per request,
never from the request content: a retry of a failed request is a new draw and can
succeed, while the *content* of a successful answer stays a pure function of the
request body.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, fields
from random import Random
from typing import Any, Literal

FaultKind = Literal[
    "429",
    "500",
    "503",
    "hang",
    "invalid_json",
    "truncated",
    "length",
    "refusal",
    "content_filter",
    "think",
    "reasoning",
    "drip",
    "echo_key",
]
BATCH_ITEM_ERROR = "batch_item_error"
"""Stats key for Batch API items sent to the error file."""


@dataclass(frozen=True)
class FaultPlan:
    """Per-request fault probabilities (each in [0, 1], drawn in the order listed).

    ``rate_invalid_json`` only applies to requests with a ``response_format``; for
    other requests that slice of probability yields a normal answer. If the rates sum
    to more than 1 the later kinds are squeezed out.

    What real models and servers do, on demand: ``length`` (the answer cut mid-way with
    ``finish_reason: "length"``), ``refusal`` ("I'm sorry, but I can't ..."; for a JSON
    request, ``message.refusal`` with no content, as OpenAI answers), ``content_filter``
    (no content, ``finish_reason: "content_filter"``), ``think`` (a ``<think>...</think>``
    block before the answer), ``reasoning`` (a ``reasoning_content`` field and
    ``usage.completion_tokens_details.reasoning_tokens``), ``drip`` (the body sent one
    byte every ``drip_interval`` seconds) and ``echo_key`` (a 400 whose message quotes
    the request's Authorization header, as some proxies do).
    """

    rate_429: float = 0.0
    retry_after: float = 0.05
    rate_500: float = 0.0
    rate_503: float = 0.0
    rate_hang: float = 0.0
    hang_seconds: float = 30.0
    rate_invalid_json: float = 0.0
    rate_truncated: float = 0.0
    rate_length: float = 0.0
    rate_refusal: float = 0.0
    rate_content_filter: float = 0.0
    rate_think: float = 0.0
    rate_reasoning: float = 0.0
    rate_drip: float = 0.0
    drip_interval: float = 0.5
    rate_echo_key: float = 0.0
    rate_batch_item_error: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name.startswith("rate_") and not 0.0 <= getattr(self, f.name) <= 1.0:
                raise ValueError(f"FaultPlan.{f.name} must be in [0, 1], got {getattr(self, f.name)}")
        if self.retry_after < 0 or self.hang_seconds < 0 or self.drip_interval < 0:
            raise ValueError("FaultPlan.retry_after, hang_seconds and drip_interval must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultPlan:
        """Build from JSON (the ``POST /v1/_faults`` body); unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown FaultPlan fields: {sorted(unknown)}")
        return cls(**data)


class FaultSampler:
    """Thread-safe per-request draw from a :class:`FaultPlan` (``None`` = no faults)."""

    def __init__(self, plan: FaultPlan | None) -> None:
        self._lock = threading.Lock()
        self.set_plan(plan)

    def set_plan(self, plan: FaultPlan | None) -> None:
        """Replace the plan and restart its RNG (so a run with a given plan is reproducible)."""
        with self._lock:
            self.plan = plan
            self._rng = Random(plan.seed if plan else 0)
            self._table: tuple[tuple[float, FaultKind], ...] = _cumulative(plan) if plan else ()

    def draw(self, structured: bool) -> FaultKind | None:
        """The fault to inject for one chat request, or ``None``.

        ``structured`` says whether the request has a ``response_format``; the
        invalid-JSON fault is only meaningful then.
        """
        if not self._table:
            return None
        with self._lock:
            u = self._rng.random()
        for threshold, kind in self._table:
            if u < threshold:
                if kind == "invalid_json" and not structured:
                    return None
                return kind
        return None

    def draw_batch_item(self) -> str | None:
        """``"error"`` (error object), ``"500"`` (failed response) or ``None`` for one batch item."""
        plan = self.plan
        if plan is None or plan.rate_batch_item_error <= 0:
            return None
        with self._lock:
            u = self._rng.random()
        if u >= plan.rate_batch_item_error:
            return None
        return "error" if u < plan.rate_batch_item_error / 2 else "500"


def _cumulative(plan: FaultPlan) -> tuple[tuple[float, FaultKind], ...]:
    rates: tuple[tuple[float, FaultKind], ...] = (
        (plan.rate_429, "429"),
        (plan.rate_500, "500"),
        (plan.rate_503, "503"),
        (plan.rate_hang, "hang"),
        (plan.rate_invalid_json, "invalid_json"),
        (plan.rate_truncated, "truncated"),
        (plan.rate_length, "length"),
        (plan.rate_refusal, "refusal"),
        (plan.rate_content_filter, "content_filter"),
        (plan.rate_think, "think"),
        (plan.rate_reasoning, "reasoning"),
        (plan.rate_drip, "drip"),
        (plan.rate_echo_key, "echo_key"),
    )
    table: list[tuple[float, FaultKind]] = []
    total = 0.0
    for rate, kind in rates:
        if rate > 0:
            total += rate
            table.append((min(total, 1.0), kind))
    return tuple(table)
