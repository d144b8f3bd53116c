"""``glan eval``: answer GLAN-Test with a candidate (and a baseline), judge every pair in both orders,
and aggregate per taxonomy node.

An evaluation lives in ``OUT/eval/<name>/``: one engine directory per role (``candidate/``,
``baseline/``, ``judge/``, each with its own ``llm-cache.sqlite`` and ``failures.jsonl``), then
``verdicts.parquet`` (one row per question), ``results.parquet`` (one row per node), ``summary.json``
and ``gap_per_field.png``. The roles keep separate caches because the engine's cache key is
endpoint-independent: a candidate and a baseline served under the same model name on two servers
must never read each other's answers. Every reply is cached as it arrives, so a killed evaluation
run again pays for nothing it already received.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel, model_validator
from rich.console import Console

from glan_dataset import __version__, eventloop
from glan_dataset.errors import UsageError
from glan_dataset.evaluation.aggregate import SCORE_COLUMNS, aggregate, item_scores, level_rows
from glan_dataset.evaluation.answer import DEFAULT_ANSWER_SAMPLING, answer_requests, answer_stage
from glan_dataset.evaluation.dataset import TestSet
from glan_dataset.evaluation.judge import (
    DEFAULT_JUDGE_SAMPLING,
    JUDGE_STAGE,
    PairwiseVerdict,
    judge_requests,
    side_scores,
    split_key,
)
from glan_dataset.evaluation.leaderboard import EVAL_DIR, SUMMARY_FILE
from glan_dataset.evaluation.report import CHART_FILE, render_gap_chart
from glan_dataset.llm import ChatResult, EngineConfig, LLMEngine
from glan_dataset.prompts import EVAL_PROMPT_NAMES, PromptLibrary
from glan_dataset.rundir import write_json_atomic, write_parquet_atomic
from glan_dataset.settings import SamplingParams

RESULTS_FILE = "results.parquet"
VERDICTS_FILE = "verdicts.parquet"
REFERENCE = "reference"
ROLES: tuple[str, ...] = ("candidate", "baseline", "judge")


class EvalSettings(BaseModel):
    """What is evaluated against what, by which judge, on which config."""

    model: str
    judge_model: str
    baseline: str | None = None
    reference: bool = False
    config: str = "all"
    name: str | None = None
    answer_sampling: SamplingParams = DEFAULT_ANSWER_SAMPLING
    judge_sampling: SamplingParams = DEFAULT_JUDGE_SAMPLING

    @model_validator(mode="after")
    def _one_opponent(self) -> EvalSettings:
        if (self.baseline is None) == (not self.reference):
            raise ValueError("give exactly one of --baseline MODEL or --reference")
        return self

    @property
    def baseline_label(self) -> str:
        """The opponent's name in tables: the baseline model, or ``reference`` (the dataset's answers)."""
        return self.baseline or REFERENCE

    def eval_name(self) -> str:
        """``<candidate>-vs-<baseline>-by-<judge>[-<config>]`` as a folder name, unless ``name`` is given."""
        if self.name:
            return slug(self.name)
        parts = [self.model, "vs", self.baseline_label, "by", self.judge_model]
        if self.config != "all":
            parts.append(self.config)
        return slug("-".join(parts))


def slug(text: str) -> str:
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.")
    if not cleaned:
        raise UsageError(f"--name {text!r} gives an empty folder name: use letters or digits")
    return cleaned[:120]


@dataclass
class RoleEndpoints:
    """One engine set-up per role: each role may be served by its own endpoint and key (the baseline's
    defaults to the candidate's)."""

    candidate: EngineConfig
    judge: EngineConfig
    baseline: EngineConfig | None = None


@dataclass
class EvalOutcome:
    eval_dir: Path
    results: pl.DataFrame
    summary: dict[str, Any]
    failures: dict[str, int] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not any(self.failures.values())


def eval_dir(out_root: str | Path, name: str) -> Path:
    return Path(out_root) / EVAL_DIR / name


def evaluate(
    test: TestSet,
    settings: EvalSettings,
    endpoints: RoleEndpoints,
    out_root: str | Path,
    *,
    prompts_dir: str | Path | None = None,
    console: Console | None = None,
) -> EvalOutcome:
    """Run (or resume) one evaluation into ``OUT/eval/<name>/`` and return its results."""
    prompts = PromptLibrary(prompts_dir, names=EVAL_PROMPT_NAMES)
    return eventloop.run(
        _evaluate(test, settings, endpoints, eval_dir(out_root, settings.eval_name()), prompts, console)
    )


async def _evaluate(
    test: TestSet,
    settings: EvalSettings,
    endpoints: RoleEndpoints,
    directory: Path,
    prompts: PromptLibrary,
    console: Console | None,
) -> EvalOutcome:
    questions = test.frame
    failures: dict[str, int] = {}
    usage: dict[str, Any] = {}
    requests = answer_requests(
        questions, role="candidate", model=settings.model, prompts=prompts, sampling=settings.answer_sampling
    )
    candidate, failures["candidate"], usage["candidate"] = await _run(
        endpoints.candidate, directory / "candidate", requests, answer_stage("candidate"), len(questions), console
    )
    if settings.reference:
        baseline = dict(
            zip(questions.get_column("id").to_list(), questions.get_column("answer").to_list(), strict=True)
        )
    else:
        assert settings.baseline is not None
        requests = answer_requests(
            questions, role="baseline", model=settings.baseline, prompts=prompts, sampling=settings.answer_sampling
        )
        baseline, failures["baseline"], usage["baseline"] = await _run(
            endpoints.baseline or endpoints.candidate,
            directory / "baseline",
            requests,
            answer_stage("baseline"),
            len(questions),
            console,
        )
    pairs = questions.filter(pl.col("id").is_in(list(candidate.keys() & baseline.keys()))).with_columns(
        pl.col("id").replace_strict(candidate, return_dtype=pl.String).alias("candidate_answer"),
        pl.col("id").replace_strict(baseline, default=None, return_dtype=pl.String).alias("baseline_answer"),
    )
    requests = judge_requests(
        pairs, model=settings.judge_model, prompts=prompts, sampling=settings.judge_sampling, titles=test.names.titles
    )
    verdicts, failures["judge"], usage["judge"] = await _run(
        endpoints.judge, directory / "judge", requests, JUDGE_STAGE, 2 * len(pairs), console, parsed=True
    )
    items = item_scores(_verdict_frame(pairs, verdicts))
    results = aggregate(items, test.names)
    summary = _summary(test, settings, items, results, failures, usage, prompts, directory)
    write_parquet_atomic(directory / VERDICTS_FILE, items)
    write_parquet_atomic(directory / RESULTS_FILE, results)
    if items.height:
        render_gap_chart(results, directory / CHART_FILE, candidate=settings.model, baseline=settings.baseline_label)
    write_json_atomic(directory / SUMMARY_FILE, summary)
    return EvalOutcome(directory, results, summary, {k: v for k, v in failures.items() if v})


async def _run(
    config: EngineConfig,
    directory: Path,
    requests: Any,
    stage: str,
    total: int,
    console: Console | None,
    *,
    parsed: bool = False,
) -> tuple[dict[str, Any], int, dict[str, Any]]:
    """Stream one role's requests through its own engine: (replies by key, failures, usage)."""
    replies: dict[str, Any] = {}
    failed = 0
    async with LLMEngine(config, directory, console=console) as engine:
        async for outcome in engine.stream(requests, stage=stage, total=total):
            if isinstance(outcome, ChatResult):
                replies[outcome.key] = outcome.parsed if parsed else outcome.text
            else:
                failed += 1
        ledger = engine.usage.to_dict()
    # what the evaluation cost over all its runs (not this run's cache hits: a rerun rewrites the same summary)
    usage = {
        "calls": [{k: v for k, v in row.items() if k != "cache_hits"} for row in ledger["cumulative"]],
        "cost_usd": ledger["cumulative_cost_usd"],
    }
    return replies, failed, usage


def _verdict_frame(pairs: pl.DataFrame, verdicts: dict[str, PairwiseVerdict]) -> pl.DataFrame:
    """One row per question judged in both orders, with both orders' scores and reasons."""
    by_question: dict[str, dict[str, Any]] = {}
    for key, verdict in verdicts.items():
        question_id, order = split_key(key)
        candidate, baseline = side_scores(verdict, order)
        by_question.setdefault(question_id, {}).update(
            {f"candidate_{order}": candidate, f"baseline_{order}": baseline, f"reason_{order}": verdict.reason}
        )
    rows = [
        {"id": question_id, **scores}
        for question_id, scores in by_question.items()
        if all(column in scores for column in SCORE_COLUMNS)
    ]
    schema = {"id": pl.String, **{c: pl.Int64 for c in SCORE_COLUMNS}, "reason_ab": pl.String, "reason_ba": pl.String}
    scores = pl.DataFrame(rows, schema=schema)
    columns = ["id", "field", "subfield", "discipline", "question", "candidate_answer", "baseline_answer"]
    return pairs.select(columns).join(scores, on="id", how="inner").sort("id")


def _summary(
    test: TestSet,
    settings: EvalSettings,
    items: pl.DataFrame,
    results: pl.DataFrame,
    failures: dict[str, int],
    usage: dict[str, Any],
    prompts: PromptLibrary,
    directory: Path,
) -> dict[str, Any]:
    """``summary.json``: what was compared, the overall and per-field results, and what it cost. The date
    stays that of the first run that produced these results, so rerunning a finished evaluation (or
    publishing it again) changes nothing."""
    overall = level_rows(results, "overall")
    results_json = {
        "overall": _plain(overall[0]) if overall else None,
        "fields": [_plain(row) for row in level_rows(results, "field")],
    }
    digest = hashlib.sha256(json.dumps(results_json, sort_keys=True).encode()).hexdigest()[:16]
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    previous = read_summary(directory / SUMMARY_FILE)
    if previous and previous.get("results_digest") == digest:
        date = str(previous.get("date") or date)
    return {
        "name": directory.name,
        "model": settings.model,
        "baseline": settings.baseline_label,
        "reference": settings.reference,
        "judge_model": settings.judge_model,
        "config": settings.config,
        "dataset": test.source,
        "dataset_kind": test.kind,
        "date": date,
        "questions": len(test),
        "judged": items.height,
        "failures": {role: failures.get(role, 0) for role in ROLES if role in failures},
        "complete": not any(failures.values()) and items.height == len(test),
        **results_json,
        "results_digest": digest,
        "answer_sampling": settings.answer_sampling.model_dump(),
        "judge_sampling": settings.judge_sampling.model_dump(),
        "prompt_versions": prompts.versions,
        "usage": usage,
        "glan_dataset_version": __version__,
    }


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()}


def read_summary(path: Path) -> dict[str, Any] | None:
    """A summary.json, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
