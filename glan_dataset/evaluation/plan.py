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
from glan_dataset.plan import COMPLETION_TOKENS, TOKENS_PER_WORD, StagePlan
from glan_dataset.prompts import PromptLibrary

VERDICT_TOKENS = 90
"""A verdict: a one- or two-sentence reason and two scores as JSON."""


def planned_requests(test: TestSet, settings: EvalSettings, prompts: PromptLibrary) -> dict[str, list[ChatRequest]]:
    """Every request the evaluation sends, per role, with a typical-length answer standing in for the
    candidate's and baseline's answers that do not exist yet."""
    questions = test.frame
    filler = " ".join(["word"] * int(COMPLETION_TOKENS["answer"] / TOKENS_PER_WORD))
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
        pl.lit(filler).alias("candidate_answer"),
        (pl.col("answer") if settings.reference else pl.lit(filler)).alias("baseline_answer"),
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
        prompt_tokens = sum(_tokens(r.messages) for r in requests)
        per_call = VERDICT_TOKENS if role == "judge" else COMPLETION_TOKENS["answer"]
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


def _tokens(messages: list[dict[str, str]]) -> int:
    return int(sum(len(m["content"].split()) for m in messages) * TOKENS_PER_WORD) + 4 * len(messages)
