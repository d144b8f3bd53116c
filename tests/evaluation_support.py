"""Planted answers and verdicts for the ``glan eval`` tests.

The loopback server answers through :class:`PlantedJudge`: the candidate and the baseline answer with
a marker and the question, and the judge's scores are a fixed function of (question, which side is
shown first), so the tests know every verdict in advance and can compute every aggregate by hand.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import Counter
from statistics import mean
from typing import Any

CANDIDATE = "cand-model"
BASELINE = "base-model"
JUDGE = "judge-model"
_QUESTION = re.compile(r"\[Question\]\n(.*?)\n\n\[The start of Answer A\]\n(.*?)\n\[The end of Answer A\]", re.S)


def planted_scores(question: str) -> dict[str, int]:
    """The judge's four scores for a question: candidate and baseline when the candidate is shown
    first (``ab``) and when it is shown second (``ba``). Independent per order, so some questions
    are judged inconsistently, and the 1-10 range gives ties too."""
    digest = hashlib.sha256(question.encode()).digest()
    return {
        "candidate_ab": 1 + digest[0] % 10,
        "baseline_ab": 1 + digest[1] % 10,
        "candidate_ba": 1 + digest[2] % 10,
        "baseline_ba": 1 + digest[3] % 10,
    }


class PlantedJudge:
    """The server's responder; records which (question, order) each judge request showed."""

    def __init__(self) -> None:
        self.judged: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> str | None:
        question = body["messages"][-1]["content"]
        if body["model"] == CANDIDATE:
            return f"CANDIDATE says: {question}"
        if body["model"] == BASELINE:
            return f"BASELINE says: {question}"
        if body["model"] != JUDGE:
            return None
        match = _QUESTION.search(question)
        assert match, question
        asked, answer_a = match.group(1), match.group(2)
        order = "ab" if answer_a.startswith("CANDIDATE") else "ba"
        with self._lock:
            self.judged[(asked, order)] += 1
        scores = planted_scores(asked)
        candidate, baseline = scores[f"candidate_{order}"], scores[f"baseline_{order}"]
        score_a, score_b = (candidate, baseline) if order == "ab" else (baseline, candidate)
        return json.dumps({"reason": f"planted {order}", "score_a": score_a, "score_b": score_b})


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def expected_stats(questions: list[str]) -> dict[str, Any]:
    """Every aggregate of a group of questions, computed by hand from the planted scores."""
    cand, base, gaps, outcomes, consistent = [], [], [], Counter(), 0
    for question in questions:
        s = planted_scores(question)
        c = (s["candidate_ab"] + s["candidate_ba"]) / 2
        b = (s["baseline_ab"] + s["baseline_ba"]) / 2
        cand.append(c)
        base.append(b)
        gaps.append(c - b)
        outcomes["win" if c > b else "loss" if c < b else "tie"] += 1
        consistent += _sign(s["candidate_ab"] - s["baseline_ab"]) == _sign(s["candidate_ba"] - s["baseline_ba"])
    n = len(questions)
    return {
        "n": n,
        "candidate_score": mean(cand),
        "baseline_score": mean(base),
        "gap": mean(gaps),
        "wins": outcomes["win"],
        "ties": outcomes["tie"],
        "losses": outcomes["loss"],
        "win_rate": outcomes["win"] / n,
        "consistency": consistent / n,
    }
