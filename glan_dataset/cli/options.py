"""Options shared by the commands that generate (``generate``, ``plan``, ``build``), declared once.

Every CLI module imports only light modules at the top (typer, rich, ``glan_dataset.defaults``,
errors, rundir): ``glan --help`` registers all of them. The engine, settings models and data stacks
are imported inside the functions that use them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from glan_dataset.defaults import DEFAULT_ANSWER_MODEL, DEFAULT_MODEL
from glan_dataset.errors import UsageError
from glan_dataset.rundir import RunDir

if TYPE_CHECKING:
    from glan_dataset.llm import EngineConfig
    from glan_dataset.settings import GenerationSettings

GEN = "Generation"
ENGINE = "Endpoint and engine"

Config = Annotated[
    str, typer.Option("--config", "-c", help="What to generate: all, a field, a sub-field or a discipline slug.")
]
TaxonomyFile = Annotated[
    Path | None,
    typer.Option("--taxonomy", help="Taxonomy YAML to use (default: the run's snapshot, else the built-in one)."),
]
PromptsDir = Annotated[Path | None, typer.Option("--prompts", help="Folder of prompt templates replacing prompts/.")]
Model = Annotated[str, typer.Option("--model", help="Model for subjects, syllabi and questions.", rich_help_panel=GEN)]
AnswerModel = Annotated[str, typer.Option("--answer-model", help="Model for answers.", rich_help_panel=GEN)]
SubjectSamples = Annotated[
    int, typer.Option("--subject-samples", min=1, help="Subject lists sampled per discipline.", rich_help_panel=GEN)
]
MaxSubjects = Annotated[
    int, typer.Option("--max-subjects", min=1, help="Subjects kept per discipline.", rich_help_panel=GEN)
]
QuestionsPerSubject = Annotated[
    int, typer.Option("--questions-per-subject", min=1, help="Questions per subject.", rich_help_panel=GEN)
]
MultiSessionRatio = Annotated[
    float,
    typer.Option(
        "--multi-session-ratio", min=0.0, max=1.0, help="Share of two-session questions.", rich_help_panel=GEN
    ),
]
Turns = Annotated[
    int,
    typer.Option(
        "--turns",
        min=1,
        max=20,
        help="Question-answer turns per conversation: after the answer, a student follow-up question and its "
        "answer, N-1 times (messages holds the whole conversation).",
        rich_help_panel=GEN,
    ),
]
MaxTokens = Annotated[
    list[str] | None,
    typer.Option(
        "--max-tokens",
        help="Completion-token budget: N for every call, or CALL=N for one (subjects, subjects_to_json, syllabus, "
        "syllabus_to_json, question, answer, followup_question, followup_answer, judge); repeatable. A reply cut "
        "at its budget is a failure (truncated), never a record. Defaults: 512 for questions, 2048 for answers, "
        "4096/8192 for the conversions (grown up to 4x when cut).",
        rich_help_panel=GEN,
    ),
]


def parse_max_tokens(values: list[str] | None) -> dict[str, int]:
    """``["2048", "answer=4096"]`` -> ``{"*": 2048, "answer": 4096}``; a bad value is one line."""
    budgets: dict[str, int] = {}
    for value in values or []:
        name, _, number = value.rpartition("=")
        try:
            tokens = int(number)
        except ValueError:
            tokens = 0
        if tokens < 1:
            raise UsageError(f"--max-tokens {value!r}: give N or CALL=N with N a whole number of tokens above 0")
        budgets[name.strip() or "*"] = tokens
    return budgets


JudgeModel = Annotated[
    str | None,
    typer.Option(
        "--judge-model",
        help="Score every pair 1-10 with this model (quality gate: correctness, helpfulness, difficulty fit); "
        "filter at publish time with glan publish --min-score.",
        rich_help_panel=GEN,
    ),
]
MinScore = Annotated[
    float | None,
    typer.Option(
        "--min-score",
        min=1.0,
        max=10.0,
        help="Leave out pairs the judge (glan generate --judge-model) scored below this; no new LLM call.",
    ),
]
EnforceChecks = Annotated[
    str | None,
    typer.Option(
        "--enforce-checks",
        help="Leave out pairs failing these rule checks, comma-separated, or all: empty, restates_question, "
        "refusal, truncated, leaks_answer, language.",
    ),
]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the question sampling.", rich_help_panel=GEN)]
Temperature = Annotated[
    float, typer.Option("--temperature", min=0.0, max=2.0, help="Generation temperature.", rich_help_panel=GEN)
]
TopP = Annotated[float, typer.Option("--top-p", min=0.0, max=1.0, help="Generation top_p.", rich_help_panel=GEN)]
AnswerTemperature = Annotated[
    float, typer.Option("--answer-temperature", min=0.0, max=2.0, help="Answer temperature.", rich_help_panel=GEN)
]
AnswerTopP = Annotated[
    float, typer.Option("--answer-top-p", min=0.0, max=1.0, help="Answer top_p.", rich_help_panel=GEN)
]
BaseUrl = Annotated[
    list[str] | None,
    typer.Option(
        "--base-url",
        help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 (default: OPENAI_BASE_URL, else OpenAI). "
        "Repeat it (or name a file of URLs) for a fleet: requests go to the least loaded.",
        rich_help_panel=ENGINE,
    ),
]
Concurrency = Annotated[
    int, typer.Option("--concurrency", min=1, help="Requests in flight at most.", rich_help_panel=ENGINE)
]
Timeout = Annotated[
    float, typer.Option("--timeout", min=1.0, help="Seconds before a request is retried.", rich_help_panel=ENGINE)
]
MaxAttempts = Annotated[int, typer.Option("--max-attempts", min=1, help="Attempts per call.", rich_help_panel=ENGINE)]
Rpm = Annotated[int | None, typer.Option("--rpm", min=1, help="Requests per minute at most.", rich_help_panel=ENGINE)]
Tpm = Annotated[int | None, typer.Option("--tpm", min=1, help="Tokens per minute at most.", rich_help_panel=ENGINE)]
Mode = Annotated[
    str,
    typer.Option(
        "--mode", help="online, or batch for the OpenAI Batch API (half price, slower).", rich_help_panel=ENGINE
    ),
]
CacheIgnoreParams = Annotated[
    bool,
    typer.Option(
        "--cache-ignore-params",
        help="Reuse cached answers even if temperature/top_p/max_tokens changed.",
        rich_help_panel=ENGINE,
    ),
]
Prices = Annotated[
    list[str] | None,
    typer.Option("--price", help="MODEL=IN/OUT in USD per million tokens (repeatable).", rich_help_panel=ENGINE),
]
OutDir = Annotated[Path, typer.Option("--out", "-o", help="Run directory (created; an existing one is resumed).")]
Shard = Annotated[
    str | None,
    typer.Option(
        "--shard",
        help="I/N: only every N-th discipline of the config, from the I-th (0-based), to split a run across "
        "machines; combine the run directories with glan merge-runs.",
    ),
]
SCALE = "Scale out"
ExecutorName = Annotated[
    str,
    typer.Option(
        "--executor",
        help="local (this process), or ray: the config's disciplines as tasks over a Ray cluster "
        "(the run directory must be on storage every worker sees).",
        rich_help_panel=SCALE,
    ),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Ray cluster to join: auto, or ray://HOST:10001 (default: start a local Ray instance).",
        rich_help_panel=SCALE,
    ),
]
Workers = Annotated[
    int | None,
    typer.Option("--workers", min=1, help="Ray workers (default: the cluster's CPUs).", rich_help_panel=SCALE),
]
Serve = Annotated[
    str | None,
    typer.Option(
        "--serve",
        help="Start a server per worker from this command, e.g. 'vllm serve {model} --port {port}'; "
        "it is used once /v1/models answers and stopped at the end.",
        rich_help_panel=SCALE,
    ),
]
Throughput = Annotated[
    str | None,
    typer.Option(
        "--throughput",
        help="What one endpoint sustains, measured or stated: calls/s (20) or completion tokens/s (2500tok/s); "
        "glan plan then prints the wall time.",
        rich_help_panel=SCALE,
    ),
]
Endpoints = Annotated[
    int,
    typer.Option("--endpoints", min=1, help="Endpoints sharing the load (servers, or keys).", rich_help_panel=SCALE),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars; log lines only.")]


@dataclass
class GenerationOptions:
    """The generation flags as parsed by typer."""

    config: str = "all"
    model: str = DEFAULT_MODEL
    answer_model: str = DEFAULT_ANSWER_MODEL
    subject_samples: int = 10
    max_subjects: int = 200
    questions_per_subject: int = 10
    multi_session_ratio: float = 0.5
    seed: int = 0
    temperature: float = 1.0
    top_p: float = 0.95
    answer_temperature: float = 0.7
    answer_top_p: float = 0.95
    turns: int = 1
    judge_model: str | None = None
    max_tokens: list[str] | None = None

    def step_options(self) -> dict[str, dict[str, object]]:
        """The flags that fill a step's options (``GenerationSettings.step_options``); defaults are left out,
        so a run without them has the same settings as before the steps had options."""
        options: dict[str, dict[str, object]] = {}
        if self.turns != 1:
            options["conversations"] = {"turns": self.turns}
        if self.judge_model is not None:
            options["judgements"] = {"model": self.judge_model}
        return options

    def settings(self) -> GenerationSettings:
        from pydantic import ValidationError

        from glan_dataset.settings import GenerationSettings, SamplingParams

        try:
            return GenerationSettings(
                config=self.config,
                model=self.model,
                answer_model=self.answer_model,
                subject_samples=self.subject_samples,
                max_subjects=self.max_subjects,
                questions_per_subject=self.questions_per_subject,
                multi_session_ratio=self.multi_session_ratio,
                seed=self.seed,
                generation_sampling=SamplingParams(temperature=self.temperature, top_p=self.top_p),
                answer_sampling=SamplingParams(temperature=self.answer_temperature, top_p=self.answer_top_p),
                step_options=self.step_options(),
                max_tokens=parse_max_tokens(self.max_tokens),
            )
        except ValidationError as error:
            first = error.errors()[0]
            raise UsageError(f"invalid setting {'.'.join(map(str, first['loc']))}: {first['msg']}") from None


@dataclass
class EngineOptions:
    base_url: str | list[str] | None = None
    concurrency: int = 64
    timeout: float = 120.0
    max_attempts: int = 6
    rpm: int | None = None
    tpm: int | None = None
    mode: str = "online"
    cache_ignore_params: bool = False
    prices: list[str] | None = None
    quiet: bool = False

    def config(self, run_dir: Path | None = None) -> EngineConfig:
        """``run_dir``: a run whose remembered endpoint (run.json) serves when neither --base-url nor
        OPENAI_BASE_URL names one, so a resume needs no flag repeated."""
        from pydantic import SecretStr

        from glan_dataset.llm import EngineConfig, PriceTable
        from glan_dataset.llm.fleet import read_base_urls

        if self.mode not in ("online", "batch"):
            raise UsageError(f"--mode must be online or batch, not '{self.mode}'")
        mode: Literal["online", "batch"] = "batch" if self.mode == "batch" else "online"
        api_key = os.environ.get("OPENAI_API_KEY")
        given = [self.base_url] if isinstance(self.base_url, str) else list(self.base_url or [])
        urls = read_base_urls(given)
        if not urls and not os.environ.get("OPENAI_BASE_URL") and run_dir is not None:
            urls = remembered_base_urls(run_dir)
        return EngineConfig(
            base_url=(urls[0] if urls else None) or os.environ.get("OPENAI_BASE_URL") or None,
            base_urls=urls if len(urls) > 1 else [],
            api_key=SecretStr(api_key) if api_key else None,
            concurrency=self.concurrency,
            timeout=self.timeout,
            max_attempts=self.max_attempts,
            rpm=self.rpm,
            tpm=self.tpm,
            mode=mode,
            cache_ignore_params=self.cache_ignore_params,
            quiet=self.quiet,
            prices=PriceTable.parse(self.prices or []),
        )


def remembered_base_urls(run_dir: Path) -> list[str]:
    """The endpoint a run last used (run.json ``engine.base_urls``; credentials were never stored)."""
    engine = RunDir(run_dir).read_run_json().get("engine") or {}
    urls = engine.get("base_urls") if isinstance(engine, dict) else None
    return [url for url in urls if isinstance(url, str)] if isinstance(urls, list) else []


def parse_shard(spec: str | None) -> tuple[int, int] | None:
    """``"I/N"`` -> (I, N) with 0 <= I < N."""
    if spec is None:
        return None
    index, _, count = spec.partition("/")
    try:
        shard = int(index), int(count)
    except ValueError:
        shard = (-1, 0)
    if not 0 <= shard[0] < shard[1]:
        raise UsageError(f"--shard {spec!r}: expected I/N with 0 <= I < N, e.g. --shard 0/4 on the first of 4 machines")
    return shard
