"""``glan plan``: how many LLM calls and tokens a generation needs, and what it costs, before any call.

Everything comes from the steps (``glan_dataset.stages.STEPS``): each call renders its real template
with representative content (so custom prompts change the estimate) and names its typical completion
length; each step says how many calls a discipline needs and how many rows it typically gets. The estimate is a
budget, not an invoice: the run summary reports the real usage.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from glan_dataset.errors import UsageError
from glan_dataset.llm import PriceTable
from glan_dataset.prompts import PromptLibrary
from glan_dataset.settings import GenerationSettings
from glan_dataset.stages import STEPS, check_step_options
from glan_dataset.stages.base import TOKENS_PER_WORD, DisciplineContext, Step, StepContext


class StagePlan(BaseModel):
    """One LLM call of a step (``stage`` is the call's name, as in the progress display and the costs)."""

    stage: str
    model: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None


class GenerationPlan(BaseModel):
    disciplines: int
    rows_per_discipline: dict[str, int]  # stage folder -> typical rows of one discipline's file
    records: int  # rows of the last step, over every discipline
    stages: list[StagePlan]

    @property
    def subjects_per_discipline(self) -> int:
        return next(iter(self.rows_per_discipline.values()), 0)

    @property
    def calls(self) -> int:
        return sum(stage.calls for stage in self.stages)

    @property
    def cost(self) -> float | None:
        costs = [stage.cost for stage in self.stages]
        return None if any(cost is None for cost in costs) else sum(c for c in costs if c is not None)


def estimate_tokens(messages: list[dict[str, str]]) -> int:
    """Prompt tokens of a conversation, estimated from its words (no tokenizer: plans are budgets)."""
    return int(sum(len(message["content"].split()) for message in messages) * TOKENS_PER_WORD) + 4 * len(messages)


def plan_generation(
    settings: GenerationSettings,
    contexts: list[DisciplineContext],
    prompts: PromptLibrary,
    prices: PriceTable,
    *,
    batch: bool = False,
    steps: Sequence[Step] = STEPS,
) -> GenerationPlan:
    """Calls, tokens and cost per LLM call of ``steps`` for ``contexts`` at ``settings``.

    Each step makes ``units`` calls of each of its calls per discipline, from the typical rows of the
    step it reads; its own typical rows feed the next step."""
    check_step_options(settings, steps)
    rows: dict[str, int] = {}
    stages: list[StagePlan] = []
    last_rows = 0
    for step in steps:
        if not step.enabled(settings):
            continue
        units = step.units(settings, 0 if step.reads is None else rows.get(step.reads, 0))
        rows[step.writes] = last_rows = step.planned_rows(settings, units)
        step_contexts = [StepContext(node, settings, prompts, prompt_version="") for node in contexts]
        calls = units * len(contexts)
        for call in step.calls(settings):
            average_prompt = sum(estimate_tokens(call.plan_messages(c)) for c in step_contexts) / max(
                1, len(step_contexts)
            )
            p_tokens = int(average_prompt * calls)
            c_tokens = call.typical_completion_tokens * calls
            model = call.model(settings)
            stages.append(
                StagePlan(
                    stage=call.name,
                    model=model,
                    calls=calls,
                    prompt_tokens=p_tokens,
                    completion_tokens=c_tokens,
                    cost=prices.cost(model, p_tokens, c_tokens, batch=batch),
                )
            )
    return GenerationPlan(
        disciplines=len(contexts), rows_per_discipline=rows, records=last_rows * len(contexts), stages=stages
    )


# ---------------------------------------------------------------------------------------- wall time


class Throughput(BaseModel):
    """What one endpoint sustains, measured (a run's summary: calls/s) or stated (a server's benchmark):
    calls per second, or completion tokens per second (how GPU servers are usually measured)."""

    per_second: float
    unit: str  # "calls" or "tokens"

    @classmethod
    def parse(cls, spec: str) -> Throughput:
        """``"20"`` or ``"20calls/s"``: calls per second; ``"2500tok/s"``: completion tokens per second."""
        text = spec.strip().lower().replace(" ", "")
        unit = "tokens" if text.endswith(("tok/s", "tokens/s")) else "calls"
        number = text.removesuffix("/s").removesuffix("tokens").removesuffix("tok").removesuffix("calls")
        try:
            value = float(number)
        except ValueError:
            value = 0.0
        if not value > 0:
            raise UsageError(f"--throughput {spec!r}: expected calls per second (20) or tokens per second (2500tok/s)")
        return cls(per_second=value, unit=unit)

    def seconds(self, stage: StagePlan, endpoints: int) -> float:
        """Wall time of one call of the plan on ``endpoints`` endpoints that share the load evenly."""
        work = stage.completion_tokens if self.unit == "tokens" else stage.calls
        return work / (self.per_second * endpoints)


def wall_time(plan: GenerationPlan, throughput: Throughput, endpoints: int = 1) -> float:
    """Seconds for the whole plan: the steps run one after the other (each needs the previous one's
    output), and within a step the calls of every discipline share all the endpoints."""
    return sum(throughput.seconds(stage, endpoints) for stage in plan.stages)


def format_duration(seconds: float) -> str:
    """3h05m, 2d04h, 45s: a wall time in two units at most."""
    seconds = int(round(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
