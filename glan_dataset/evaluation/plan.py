"""``glan eval --plan``: the calls, tokens and cost of an evaluation before any call, like ``glan plan``.

Prompt tokens come from rendering the real templates with the real questions (and, with
``--reference``, the real reference answers); answers not yet written are stood in for by a typical
answer's length. A budget, not an invoice: ``summary.json`` records the real usage.
"""

from __future__ import annotations

import polars as pl

from glan_dataset.evaluation.answer import answer_requests
from glan_dataset.evaluation.dataset import TestSet
from glan_dataset.evaluation.judge import judge_requests
from glan_dataset.evaluation.run import EvalSettings
from glan_dataset.llm import ChatRequest, PriceTable
from glan_dataset.plan import StagePlan, estimate_tokens
from glan_dataset.prompts import PromptLibrary
from glan_dataset.stages.answers import AnswersStep
from glan_dataset.stages.base import filler

VERDICT_TOKENS = 90
"""A verdict: a one- or two-sentence reason and two scores as JSON."""


def planned_requests(test: TestSet, settings: EvalSettings, prompts: PromptLibrary) -> dict[str, list[ChatRequest]]:
    """Every request the evaluation sends, per role, with a typical-length answer standing in for the
    candidate's and baseline's answers that do not exist yet."""
    questions = test.frame
    typical_answer = filler(AnswersStep.typical_completion_tokens)
    sampling = settings.answer_sampling
    roles = {
        "candidate": list(
            answer_requests(questions, role="candidate", model=settings.model, prompts=prompts, sampling=sampling)
        )
    }
    if settings.baseline is not None:
        roles["baseline"] = list(
            answer_requests(questions, role="baseline", model=settings.baseline, prompts=prompts, sampling=sampling)
        )
    pairs = questions.with_columns(
        pl.lit(typical_answer).alias("candidate_answer"),
        (pl.col("answer") if settings.reference else pl.lit(typical_answer)).alias("baseline_answer"),
    )
    roles["judge"] = list(
        judge_requests(
            pairs,
            model=settings.judge_model,
            prompts=prompts,
            sampling=settings.judge_sampling,
            titles=test.names.titles,
        )
    )
    return roles


def plan_evaluation(
    test: TestSet, settings: EvalSettings, prompts: PromptLibrary, prices: PriceTable, *, batch: bool = False
) -> list[StagePlan]:
    """Calls, tokens and cost per role (candidate answers, baseline answers, judge verdicts)."""
    plans = []
    for role, requests in planned_requests(test, settings, prompts).items():
        model = requests[0].model if requests else settings.model
        prompt_tokens = sum(estimate_tokens(r.messages) for r in requests)
        per_call = VERDICT_TOKENS if role == "judge" else AnswersStep.typical_completion_tokens
        completion_tokens = per_call * len(requests)
        plans.append(
            StagePlan(
                stage=f"{role} {'verdicts' if role == 'judge' else 'answers'}",
                model=model,
                calls=len(requests),
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                cost=prices.cost(model, prompt_tokens, completion_tokens, batch=batch),
            )
        )
    return plans

