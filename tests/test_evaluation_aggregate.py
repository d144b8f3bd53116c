"""Aggregation edge cases by hand: ties, position-inconsistent verdicts, empty input, taxonomy order."""

from __future__ import annotations

import polars as pl
import pytest

from glan_dataset.evaluation.aggregate import aggregate, item_scores
from glan_dataset.evaluation.judge import PairwiseVerdict, side_scores
from glan_dataset.publishing.layout import Names


def _verdicts(rows: list[tuple[str, str, str, int, int, int, int]]) -> pl.DataFrame:
    columns = ["field", "subfield", "discipline", "candidate_ab", "baseline_ab", "candidate_ba", "baseline_ba"]
    return pl.DataFrame([dict(zip(columns, row, strict=True)) for row in rows]).with_row_index("id")


def test_item_outcomes_and_position_consistency():
    items = item_scores(
        _verdicts(
            [
                ("f", "s", "d", 8, 6, 7, 5),  # prefers the candidate in both orders: consistent win
                ("f", "s", "d", 8, 6, 5, 7),  # prefers whoever is shown first: inconsistent tie (6.5 vs 6.5)
                ("f", "s", "d", 5, 5, 5, 5),  # a tie in both orders: consistent tie
                ("f", "s", "d", 6, 6, 4, 6),  # tie, then the baseline: inconsistent loss
            ]
        )
    )
    assert items.get_column("outcome").to_list() == ["win", "tie", "tie", "loss"]
    assert items.get_column("consistent").to_list() == [True, False, True, False]
    assert items.get_column("gap").to_list() == [2.0, 0.0, 0.0, -1.0]


def test_levels_counts_and_means():
    items = item_scores(
        _verdicts(
            [
                ("sci", "phys-sci", "physics", 9, 5, 9, 5),
                ("sci", "phys-sci", "chemistry", 4, 6, 6, 4),
                ("sci", "life", "biology", 2, 8, 2, 8),
                ("hum", "hist", "history", 7, 7, 7, 7),
            ]
        )
    )
    names = Names(titles={"sci": "Science"}, order={"hum": 0, "hist": 1, "history": 2, "sci": 3, "life": 4,
                                                    "biology": 5, "phys-sci": 6, "physics": 7, "chemistry": 8})  # fmt: skip
    results = aggregate(items, names)
    assert results.select("level", "node").rows() == [
        ("discipline", "history"), ("discipline", "biology"), ("discipline", "physics"), ("discipline", "chemistry"),
        ("subfield", "hist"), ("subfield", "life"), ("subfield", "phys-sci"),
        ("field", "hum"), ("field", "sci"), ("overall", "overall"),
    ]  # fmt: skip
    sci = results.filter(pl.col("node") == "sci").to_dicts()[0]
    assert sci["title"] == "Science" and sci["n"] == 3
    assert sci["candidate_score"] == pytest.approx((9 + 5 + 2) / 3)
    assert sci["baseline_score"] == pytest.approx((5 + 5 + 8) / 3)
    assert sci["gap"] == pytest.approx((4 + 0 - 6) / 3)
    assert (sci["wins"], sci["ties"], sci["losses"]) == (1, 1, 1)
    assert sci["win_rate"] == pytest.approx(1 / 3)
    assert sci["consistency"] == pytest.approx(2 / 3)  # chemistry: first-shown preferred both times
    overall = results.filter(pl.col("level") == "overall").to_dicts()[0]
    assert overall["n"] == 4 and overall["consistency"] == pytest.approx(3 / 4)
    assert overall["field"] is None and overall["title"] == "Overall"
    assert aggregate(items.head(0)).height == 0


def test_a_verdict_is_read_back_by_its_order():
    verdict = PairwiseVerdict(reason="A is better", score_a=9, score_b=3)
    assert side_scores(verdict, "ab") == (9, 3)  # the candidate was answer A
    assert side_scores(verdict, "ba") == (3, 9)  # the candidate was answer B
    with pytest.raises(ValueError):
        PairwiseVerdict(reason="x", score_a=0, score_b=11)
