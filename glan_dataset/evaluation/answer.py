"""The answers under evaluation: each GLAN-Test question asked to the candidate (and the baseline).

One request per (role, question), keyed by the question id. The engine caches every reply in the
evaluation's own directory, so a rerun (or a crash and a rerun) asks nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl

from glan_dataset.llm import ChatRequest
from glan_dataset.prompts import PromptLibrary
from glan_dataset.settings import SamplingParams

ANSWER_TEMPLATE = "eval_answer"
DEFAULT_ANSWER_SAMPLING = SamplingParams(temperature=0.0, top_p=1.0, max_tokens=2048)
"""Greedy, so a model's score does not depend on a lucky sample; 2,048 tokens cap a rambling model."""


def answer_stage(role: str) -> str:
    """The engine stage (progress, usage, failures) of one role's answers: ``eval-candidate``, ..."""
    return f"eval-{role}"


def answer_requests(
    questions: pl.DataFrame, *, role: str, model: str, prompts: PromptLibrary, sampling: SamplingParams
) -> Iterator[ChatRequest]:
    """One request per question (``questions`` has ``id`` and ``question``); the key is the question id."""
    stage = answer_stage(role)
    for row in questions.select("id", "question").iter_rows(named=True):
        yield ChatRequest(
            key=row["id"],
            stage=stage,
            model=model,
            messages=prompts.render(ANSWER_TEMPLATE, question=row["question"]),
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=sampling.max_tokens,
        )
