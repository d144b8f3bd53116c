"""Prices and token accounting.

The ledger keeps tokens, not dollars: prices change (or are given only on a later run), so cost is
always computed from tokens with the current price table. Batch API calls are tallied apart because
they cost half.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from pydantic import BaseModel, ConfigDict

from glan_dataset.errors import UsageError

_PRICE_FORM = "MODEL=IN/OUT in USD per million tokens, e.g. gpt-4o=2.50/10.00"


class PriceTable(BaseModel):
    """USD per million tokens, per model: ``{"gpt-4o": (2.5, 10.0)}``."""

    model_config = ConfigDict(frozen=True)

    prices: dict[str, tuple[float, float]] = {}

    @classmethod
    def parse(cls, specs: list[str]) -> PriceTable:
        """Parse ``--price MODEL=IN/OUT`` flags; a bad spec is a UsageError naming it."""
        prices: dict[str, tuple[float, float]] = {}
        for spec in specs:
            model, sep, pair = spec.rpartition("=")
            in_text, slash, out_text = pair.partition("/")
            try:
                if not (sep and slash and model.strip()):
                    raise ValueError
                price_in, price_out = float(in_text), float(out_text)
                if price_in < 0 or price_out < 0:
                    raise ValueError
            except ValueError:
                raise UsageError(f"bad price {spec!r}: expected {_PRICE_FORM}") from None
            prices[model.strip()] = (price_in, price_out)
        return cls(prices=prices)

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int, *, batch: bool = False) -> float | None:
        """Dollars for this many tokens; None when the model has no price (unknown is not free)."""
        price = self.prices.get(model)
        if price is None:
            return None
        dollars = (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000
        return dollars / 2 if batch else dollars


@dataclass(slots=True)
class UsageEntry:
    """Counters for one (stage, model). ``calls`` are HTTP calls that returned a completion."""

    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    batch_calls: int = 0
    batch_prompt_tokens: int = 0
    batch_completion_tokens: int = 0
    reasoning_tokens: int = 0  # online and batch; already inside the completion tokens (billed as output)

    def add(self, other: UsageEntry) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def cost(self, prices: PriceTable, model: str) -> float | None:
        online = prices.cost(model, self.prompt_tokens, self.completion_tokens)
        batch = prices.cost(model, self.batch_prompt_tokens, self.batch_completion_tokens, batch=True)
        if online is None or batch is None:
            return None
        return online + batch

    def to_dict(self, prices: PriceTable, model: str) -> dict[str, Any]:
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        data["cost_usd"] = self.cost(prices, model)
        return data


class UsageLedger:
    """Tokens and calls per (stage, model): this process, and cumulative over every run of this run dir.

    ``previous`` is loaded from the cache DB when the engine opens; the engine persists each
    response's tokens in the same transaction as the response, so cumulative totals survive kill -9.
    """

    def __init__(self, prices: PriceTable, previous: dict[tuple[str, str], UsageEntry] | None = None) -> None:
        self.prices = prices
        self.session: dict[tuple[str, str], UsageEntry] = {}
        self.previous: dict[tuple[str, str], UsageEntry] = previous or {}

    def entry(self, stage: str, model: str) -> UsageEntry:
        key = (stage, model)
        entry = self.session.get(key)
        if entry is None:
            entry = self.session[key] = UsageEntry()
        return entry

    def record_call(
        self,
        stage: str,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        *,
        batch: bool = False,
        reasoning_tokens: int = 0,
    ) -> None:
        entry = self.entry(stage, model)
        entry.reasoning_tokens += reasoning_tokens
        if batch:
            entry.batch_calls += 1
            entry.batch_prompt_tokens += prompt_tokens
            entry.batch_completion_tokens += completion_tokens
        else:
            entry.calls += 1
            entry.prompt_tokens += prompt_tokens
            entry.completion_tokens += completion_tokens

    def record_cache_hit(self, stage: str, model: str) -> None:
        self.entry(stage, model).cache_hits += 1

    def cumulative(self) -> dict[tuple[str, str], UsageEntry]:
        total: dict[tuple[str, str], UsageEntry] = {}
        for source in (self.previous, self.session):
            for key, entry in source.items():
                total.setdefault(key, UsageEntry()).add(entry)
        # cache hits are a per-process notion: a hit costs nothing and is not "run" usage
        return total

    def cost(self, *, cumulative: bool = False) -> float | None:
        """Total dollars; None if any model with tokens has no price."""
        return self._dollars(self.cumulative() if cumulative else self.session)

    def stage_cost(self, stage: str) -> float | None:
        return self._dollars({key: entry for key, entry in self.session.items() if key[0] == stage})

    def _dollars(self, entries: dict[tuple[str, str], UsageEntry]) -> float | None:
        """Sum of the entries that made calls; None when one of them has no price (unknown is not free)."""
        total = 0.0
        for (_, model), entry in entries.items():
            if entry.calls == 0 and entry.batch_calls == 0:
                continue
            dollars = entry.cost(self.prices, model)
            if dollars is None:
                return None
            total += dollars
        return total

    def to_dict(self) -> dict[str, Any]:
        """What run.json stores: this process's usage and the run's cumulative usage and cost."""

        def table(entries: dict[tuple[str, str], UsageEntry]) -> list[dict[str, Any]]:
            return [
                {"stage": stage, "model": model, **entry.to_dict(self.prices, model)}
                for (stage, model), entry in sorted(entries.items())
            ]

        cumulative = self.cumulative()
        return {
            "session": table(self.session),
            "cumulative": table(cumulative),
            "session_cost_usd": self.cost(),
            "cumulative_cost_usd": self.cost(cumulative=True),
            "prompt_tokens": sum(e.prompt_tokens + e.batch_prompt_tokens for e in cumulative.values()),
            "completion_tokens": sum(e.completion_tokens + e.batch_completion_tokens for e in cumulative.values()),
            "reasoning_tokens": sum(e.reasoning_tokens for e in cumulative.values()),
            "prices": {model: list(price) for model, price in sorted(self.prices.prices.items())},
        }
