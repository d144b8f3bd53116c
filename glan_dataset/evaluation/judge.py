"""Pairwise judging: the judge scores two answers to one question, in both orders.

Judges prefer the answer in one position (often the first) more often than chance. The paper's
GLAN-Test, after MT-Bench, cancels that by judging every pair twice with the answers swapped and
averaging. ``ab`` shows the candidate as answer A, ``ba`` shows it as answer B; a verdict is turned
back into (candidate score, baseline score) by its order. Whether the judge prefers the same answer
in both orders is its position consistency, reported beside every result.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from glan_dataset.llm import ChatRequest
from glan_dataset.prompts import PromptLibrary
from glan_dataset.settings import SamplingParams

JUDGE_TEMPLATE = "judge_pairwise"
JUDGE_STAGE = "eval-judge"
Order = Literal["ab", "ba"]
ORDERS: tuple[Order, Order] = ("ab", "ba")
DEFAULT_JUDGE_SAMPLING = SamplingParams(temperature=0.0, top_p=1.0, max_tokens=None)


class PairwiseVerdict(BaseModel):
    """The judge's reply (a strict JSON schema): the reason first, so the scores follow from it."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(description="One or two sentences on why one answer is better, or why they are equal.")
    score_a: int = Field(ge=1, le=10, description="Score of answer A, 1 (useless or wrong) to 10 (excellent).")
    score_b: int = Field(ge=1, le=10, description="Score of answer B, 1 (useless or wrong) to 10 (excellent).")


def judge_key(question_id: str, order: Order) -> str:
    return f"{question_id}:{order}"


def split_key(key: str) -> tuple[str, Order]:
    question_id, _, order = key.rpartition(":")
    return question_id, "ba" if order == "ba" else "ab"


def judge_requests(
    pairs: pl.DataFrame, *, model: str, prompts: PromptLibrary, sampling: SamplingParams, titles: dict[str, str]
) -> Iterator[ChatRequest]:
    """Two requests per pair, ``ab`` then ``ba``. ``pairs`` has ``id``, ``discipline``, ``question``,
    ``candidate_answer`` and ``baseline_answer``; ``titles`` maps discipline slugs to display names."""
    for row in pairs.iter_rows(named=True):
        discipline = titles.get(row["discipline"]) or row["discipline"].replace("-", " ")
        shown = {
            "ab": (row["candidate_answer"], row["baseline_answer"]),
            "ba": (row["baseline_answer"], row["candidate_answer"]),
        }
        for order in ORDERS:
            answer_a, answer_b = shown[order]
            yield ChatRequest(
                key=judge_key(row["id"], order),
                stage=JUDGE_STAGE,
                model=model,
                messages=prompts.render(
                    JUDGE_TEMPLATE,
                    question=row["question"],
                    discipline=discipline,
                    answer_a=answer_a,
                    answer_b=answer_b,
                ),
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                max_tokens=sampling.max_tokens,
                response_model=PairwiseVerdict,
            )


def side_scores(verdict: PairwiseVerdict, order: Order) -> tuple[int, int]:
    """(candidate score, baseline score) of a verdict given in ``order``."""
    return (verdict.score_a, verdict.score_b) if order == "ab" else (verdict.score_b, verdict.score_a)
