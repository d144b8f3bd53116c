"""The card's leaderboard: one row per evaluation found in ``RUN/eval/*/summary.json``.

Read tolerantly (plain JSON, missing keys shown as "-"): an evaluation written by another version,
or one still incomplete, must never stop a publish. Incomplete evaluations are listed and say so.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

EVAL_DIR = "eval"
SUMMARY_FILE = "summary.json"
_log = logging.getLogger(__name__)


def leaderboard_rows(run_dir: str | Path) -> list[dict[str, Any]]:
    """Rows for the card, best gap first: model, baseline, judge, config, questions, scores, gap,
    win/tie/loss, position consistency, date and whether the evaluation is complete."""
    rows = []
    for path in sorted((Path(run_dir) / EVAL_DIR).glob(f"*/{SUMMARY_FILE}")):
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
            overall = summary.get("overall") or {}
            if not isinstance(overall, dict) or not overall.get("n"):
                continue
            rows.append(
                {
                    "model": str(summary.get("model", "-")),
                    "baseline": str(summary.get("baseline", "-")),
                    "judge": str(summary.get("judge_model", "-")),
                    "config": str(summary.get("config", "all")),
                    "n": int(overall["n"]),
                    "candidate_score": float(overall.get("candidate_score", 0.0)),
                    "baseline_score": float(overall.get("baseline_score", 0.0)),
                    "gap": float(overall.get("gap", 0.0)),
                    "wins": int(overall.get("wins", 0)),
                    "ties": int(overall.get("ties", 0)),
                    "losses": int(overall.get("losses", 0)),
                    "consistency": float(overall.get("consistency", 0.0)),
                    "date": str(summary.get("date", "-")),
                    "complete": bool(summary.get("complete", False)),
                }
            )
        except (OSError, ValueError, TypeError, AttributeError) as error:
            _log.warning("leaderboard: skipping %s (%s); run `glan eval` again to rewrite it", path, error)
    rows.sort(key=lambda r: (-r["gap"], r["model"], r["baseline"], r["judge"], r["config"]))
    return rows
