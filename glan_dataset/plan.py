"""``glan plan``: how many LLM calls and tokens a generation needs, and what it costs, before any call.

Everything comes from the steps (``glan_dataset.stages.STEPS``): each call renders its real template
with representative content (so custom prompts change the estimate) and names its typical completion
length; each step says how many calls a discipline needs and how many rows it typically gets. The estimate is a
budget, not an invoice: the run summary reports the real usage.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from glan_dataset.llm import PriceTable
from glan_dataset.prompts import PromptLibrary
from glan_dataset.settings import GenerationSettings
from glan_dataset.stages import STEPS
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
            average_prompt = sum(estimate_tokens(call.plan_messages(c)) for c in step_contexts) / max(1, len(step_contexts))
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
