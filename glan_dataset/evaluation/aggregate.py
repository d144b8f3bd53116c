"""From verdicts to results per discipline, sub-field, field and overall (the paper's Tables 6 and 8).

Per question: each side's score is the mean of its two scores (one per order), the gap is candidate
minus baseline, and the outcome is a win, tie or loss on that gap. The judge is position-consistent on
a question when it prefers the same side (or calls a tie) in both orders. Per node: means over its
questions (every question weighs the same, so a field's figure is its questions' mean), counts of
wins, ties and losses, and the consistency rate.
"""

from __future__ import annotations

import polars as pl

from glan_dataset.publishing.layout import Names

LEVELS: tuple[str, ...] = ("discipline", "subfield", "field", "overall")
SCORE_COLUMNS: tuple[str, ...] = ("candidate_ab", "baseline_ab", "candidate_ba", "baseline_ba")
RESULT_SCHEMA: dict[str, type[pl.DataType]] = {
    "level": pl.String,
    "node": pl.String,
    "title": pl.String,
    "field": pl.String,
    "subfield": pl.String,
    "n": pl.Int64,
    "candidate_score": pl.Float64,
    "baseline_score": pl.Float64,
    "gap": pl.Float64,
    "wins": pl.Int64,
    "ties": pl.Int64,
    "losses": pl.Int64,
    "win_rate": pl.Float64,
    "consistency": pl.Float64,
}


def item_scores(verdicts: pl.DataFrame) -> pl.DataFrame:
    """Add ``candidate_score``, ``baseline_score``, ``gap``, ``outcome`` and ``consistent`` to each question."""
    ab = (pl.col("candidate_ab") - pl.col("baseline_ab")).sign()
    ba = (pl.col("candidate_ba") - pl.col("baseline_ba")).sign()
    candidate = (pl.col("candidate_ab") + pl.col("candidate_ba")) / 2
    baseline = (pl.col("baseline_ab") + pl.col("baseline_ba")) / 2
    return verdicts.with_columns(
        candidate.cast(pl.Float64).alias("candidate_score"),
        baseline.cast(pl.Float64).alias("baseline_score"),
        (candidate - baseline).cast(pl.Float64).alias("gap"),
        pl.when(candidate > baseline)
        .then(pl.lit("win"))
        .when(candidate < baseline)
        .then(pl.lit("loss"))
        .otherwise(pl.lit("tie"))
        .alias("outcome"),
        (ab == ba).alias("consistent"),
    )


def _stats() -> list[pl.Expr]:
    return [
        pl.len().cast(pl.Int64).alias("n"),
        pl.col("candidate_score").mean().alias("candidate_score"),
        pl.col("baseline_score").mean().alias("baseline_score"),
        pl.col("gap").mean().alias("gap"),
        (pl.col("outcome") == "win").sum().cast(pl.Int64).alias("wins"),
        (pl.col("outcome") == "tie").sum().cast(pl.Int64).alias("ties"),
        (pl.col("outcome") == "loss").sum().cast(pl.Int64).alias("losses"),
        ((pl.col("outcome") == "win").mean()).alias("win_rate"),
        pl.col("consistent").mean().alias("consistency"),
    ]


def aggregate(items: pl.DataFrame, names: Names | None = None) -> pl.DataFrame:
    """One row per discipline, sub-field, field and the overall row (``items`` from :func:`item_scores`),
    in taxonomy order; columns as :data:`RESULT_SCHEMA`."""
    names = names or Names()
    if not items.height:
        return pl.DataFrame(schema=RESULT_SCHEMA)
    parts = []
    for level, keys in (
        ("discipline", ["field", "subfield", "discipline"]),
        ("subfield", ["field", "subfield"]),
        ("field", ["field"]),
    ):
        grouped = items.group_by(keys).agg(_stats())
        grouped = grouped.with_columns(pl.lit(level).alias("level"), pl.col(keys[-1]).alias("node"))
        if "subfield" not in keys:
            grouped = grouped.with_columns(pl.lit(None, dtype=pl.String).alias("subfield"))
        parts.append(grouped)
    overall = items.select(_stats()).with_columns(
        pl.lit("overall").alias("level"),
        pl.lit("overall").alias("node"),
        pl.lit(None, dtype=pl.String).alias("field"),
        pl.lit(None, dtype=pl.String).alias("subfield"),
    )
    parts.append(overall)
    frame = pl.concat([p.select([c for c in RESULT_SCHEMA if c != "title"]) for p in parts], how="vertical_relaxed")
    frame = frame.with_columns(
        pl.col("node")
        .map_elements(lambda s: "Overall" if s == "overall" else names.title(s), return_dtype=pl.String)
        .alias("title")
    )
    level_rank = {level: i for i, level in enumerate(LEVELS)}
    order = [
        (
            level_rank[row["level"]],
            names.key(row["field"] or "~"),
            names.key(row["subfield"] or "~"),
            names.key(row["node"]),
        )
        for row in frame.select("level", "field", "subfield", "node").iter_rows(named=True)
    ]
    frame = frame.with_columns(pl.Series("_order", _ranks(order), dtype=pl.Int64)).sort("_order").drop("_order")
    return frame.select([pl.col(c).cast(t) for c, t in RESULT_SCHEMA.items()])


def _ranks(keys: list[tuple[object, ...]]) -> list[int]:
    ranked = sorted(range(len(keys)), key=lambda i: keys[i])  # type: ignore[arg-type, return-value]
    rank = [0] * len(keys)
    for position, index in enumerate(ranked):
        rank[index] = position
    return rank


def level_rows(results: pl.DataFrame, level: str) -> list[dict[str, object]]:
    """The rows of one level as dicts (for the terminal table, the summary and the card)."""
    return results.filter(pl.col("level") == level).to_dicts()
