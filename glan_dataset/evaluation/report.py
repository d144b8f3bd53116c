"""What a person reads of an evaluation: a terminal table per field (and per discipline when few) and a
chart of the gap per field (``eval/<name>/gap_per_field.png``, drawn like the card's chart)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
from rich import box
from rich.table import Table

from glan_dataset.evaluation.aggregate import level_rows
from glan_dataset.rundir import atomic_path

CHART_FILE = "gap_per_field.png"
MAX_DISCIPLINE_ROWS = 30
"""Above this many disciplines the terminal shows fields only (results.parquet has every node)."""


def results_table(results: pl.DataFrame, *, title: str, candidate: str, baseline: str) -> Table:
    """Fields (and disciplines, when there are few), then the overall row."""
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("node", no_wrap=True)
    for column in ("n", candidate, baseline, "gap", "win/tie/loss", "consistent"):
        table.add_column(column, justify="right", no_wrap=True)
    disciplines = level_rows(results, "discipline")
    show_disciplines = len(disciplines) <= MAX_DISCIPLINE_ROWS
    for fld in level_rows(results, "field"):
        table.add_row(*_cells(fld, bold=True))
        if show_disciplines:
            for row in disciplines:
                if row["field"] == fld["node"]:
                    table.add_row(*_cells(row, indent="  "))
    table.add_section()
    for row in level_rows(results, "overall"):
        table.add_row(*_cells(row, bold=True))
    return table


def _cells(row: dict[str, Any], *, bold: bool = False, indent: str = "") -> list[str]:
    gap = float(row["gap"])
    colour = "green" if gap > 0 else "red" if gap < 0 else "white"
    name = f"{indent}{row['title']}"
    return [
        f"[bold]{name}[/bold]" if bold else name,
        f"{row['n']:,}",
        f"{row['candidate_score']:.2f}",
        f"{row['baseline_score']:.2f}",
        f"[{colour}]{gap:+.2f}[/{colour}]",
        f"{row['wins']}/{row['ties']}/{row['losses']}",
        f"{row['consistency']:.0%}",
    ]


def render_gap_chart(results: pl.DataFrame, path: Path, *, candidate: str, baseline: str) -> None:
    """Horizontal bars of the mean gap per field (and overall); byte-identical for identical results."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    rows = level_rows(results, "field") + level_rows(results, "overall")
    labels = [str(r["title"]) for r in rows][::-1]
    gaps = [float(r["gap"]) for r in rows][::-1]  # type: ignore[arg-type]
    colours = ["#55A868" if g >= 0 else "#C44E52" for g in gaps]
    colours[0] = "#4C72B0"  # the overall bar (drawn last, so first from the bottom)
    height = max(2.2, 1.2 + 0.45 * len(rows))
    with matplotlib.rc_context({"font.size": 10}):
        fig, ax = plt.subplots(figsize=(8, height), dpi=100)
        try:
            ax.barh(labels, gaps, color=colours)
            for y, gap in enumerate(gaps):
                ax.text(gap, y, f" {gap:+.2f} ", va="center", ha="left" if gap >= 0 else "right", fontsize=9)
            ax.axvline(0, color="#444444", linewidth=0.8)
            ax.set_xlabel(f"mean score gap (1-10 scale): {candidate} minus {baseline}")
            ax.set_title("GLAN-Test: score gap per field")
            ax.margins(x=0.2)
            ax.spines[["top", "right"]].set_visible(False)
            fig.tight_layout()
            with atomic_path(path) as tmp:
                fig.savefig(tmp, format="png", metadata={"Software": None})
        finally:
            plt.close(fig)
