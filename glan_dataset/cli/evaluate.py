"""``glan eval``: GLAN-Test for a model, per discipline, sub-field, field and overall."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from glan_dataset.cli.options import (
    ENGINE,
    Concurrency,
    EngineOptions,
    MaxAttempts,
    Mode,
    Prices,
    PromptsDir,
    Quiet,
    Rpm,
    Timeout,
    Tpm,
)
from glan_dataset.defaults import DEFAULT_TEST_PER_DISCIPLINE
from glan_dataset.errors import UsageError

if TYPE_CHECKING:
    from glan_dataset.evaluation.dataset import TestSet
    from glan_dataset.evaluation.run import EvalSettings, RoleEndpoints
    from glan_dataset.llm import EngineConfig, PriceTable

EVAL = "Evaluation"
DEFAULT_OUT = Path("glan-eval")
DEFAULT_KEY_ENV = "OPENAI_API_KEY"


def _url_option(flag: str, role: str) -> object:
    return typer.Option(flag, help=f"Endpoint of the {role} (default: --base-url).", rich_help_panel=ENGINE)


def _key_option(flag: str, role: str) -> object:
    return typer.Option(
        flag,
        help=f"Name of the environment variable holding the {role}'s API key (default: --api-key-env).",
        rich_help_panel=ENGINE,
    )


def eval_command(
    dataset: Annotated[
        str, typer.Argument(help="A run directory, a published dataset folder or a Hub repo id ORG/NAME.")
    ],
    model: Annotated[str, typer.Option("--model", help="The candidate model to evaluate.", rich_help_panel=EVAL)],
    judge_model: Annotated[
        str, typer.Option("--judge-model", help="The model that judges each pair of answers.", rich_help_panel=EVAL)
    ],
    baseline: Annotated[
        str | None, typer.Option("--baseline", help="The model the candidate is compared with.", rich_help_panel=EVAL)
    ] = None,
    reference: Annotated[
        bool,
        typer.Option(
            "--reference",
            help="Compare with the dataset's own answers instead of a baseline model.",
            rich_help_panel=EVAL,
        ),  # fmt: skip
    ] = False,
    config: Annotated[
        str, typer.Option("--config", "-c", help="Which test questions: all, a field, a sub-field or a discipline.")
    ] = "all",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Where eval/<name>/ goes (default: DATASET when it is a run directory, "
            "so `glan publish` adds the leaderboard; else ./glan-eval).",
        ),  # fmt: skip
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Folder name of this evaluation under eval/.")] = None,
    prompts: PromptsDir = None,
    test_per_discipline: Annotated[
        int,
        typer.Option(
            "--test-per-discipline",
            min=1,
            help="Held-out questions per discipline (run directories only; as given to glan publish).",
        ),  # fmt: skip
    ] = DEFAULT_TEST_PER_DISCIPLINE,
    revision: Annotated[str | None, typer.Option("--revision", help="Hub revision (tag, branch or commit).")] = None,
    answer_temperature: Annotated[
        float, typer.Option("--answer-temperature", min=0.0, max=2.0, help="Answer temperature.", rich_help_panel=EVAL)
    ] = 0.0,
    answer_max_tokens: Annotated[
        int, typer.Option("--answer-max-tokens", min=1, help="Answer length cap in tokens.", rich_help_panel=EVAL)
    ] = 2048,
    judge_temperature: Annotated[
        float, typer.Option("--judge-temperature", min=0.0, max=2.0, help="Judge temperature.", rich_help_panel=EVAL)
    ] = 0.0,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="Endpoint of the candidate (default: OPENAI_BASE_URL, else OpenAI).",
            rich_help_panel=ENGINE,
        ),  # fmt: skip
    ] = None,
    baseline_base_url: Annotated[str | None, _url_option("--baseline-base-url", "baseline")] = None,
    judge_base_url: Annotated[str | None, _url_option("--judge-base-url", "judge")] = None,
    api_key_env: Annotated[
        str,
        typer.Option(
            "--api-key-env",
            help="Name of the environment variable holding the candidate's API key.",
            rich_help_panel=ENGINE,
        ),  # fmt: skip
    ] = DEFAULT_KEY_ENV,
    baseline_api_key_env: Annotated[str | None, _key_option("--baseline-api-key-env", "baseline")] = None,
    judge_api_key_env: Annotated[str | None, _key_option("--judge-api-key-env", "judge")] = None,
    concurrency: Concurrency = 64,
    timeout: Timeout = 120.0,
    max_attempts: MaxAttempts = 6,
    rpm: Rpm = None,
    tpm: Tpm = None,
    mode: Mode = "online",
    price: Prices = None,
    plan: Annotated[bool, typer.Option("--plan", help="Print the calls, tokens and cost, then stop.")] = False,
    quiet: Quiet = False,
) -> None:
    """Evaluate a model on a GLAN dataset's test split (GLAN-Test): pairwise judging in both orders,
    results per discipline, sub-field, field and overall."""
    from pydantic import ValidationError

    from glan_dataset.evaluation.dataset import load_test_set, source_kind
    from glan_dataset.evaluation.run import EvalSettings
    from glan_dataset.llm import PriceTable
    from glan_dataset.settings import SamplingParams

    if reference and baseline is not None:
        raise UsageError("give --baseline MODEL or --reference, not both")
    if not reference and baseline is None:
        raise UsageError("give --baseline MODEL (a model to compare with) or --reference (the dataset's own answers)")
    try:
        settings = EvalSettings(
            model=model,
            judge_model=judge_model,
            baseline=baseline,
            reference=reference,
            config=config,
            name=name,
            answer_sampling=SamplingParams(temperature=answer_temperature, top_p=1.0, max_tokens=answer_max_tokens),
            judge_sampling=SamplingParams(temperature=judge_temperature, top_p=1.0),
        )
    except ValidationError as error:
        raise UsageError(f"invalid setting: {error.errors()[0]['msg']}") from None
    kind = source_kind(dataset)
    test = load_test_set(dataset, config, test_per_discipline=test_per_discipline, revision=revision)
    if plan:
        _print_plan(test, settings, prompts, PriceTable.parse(price or []), mode)
        return
    engine = EngineOptions(None, concurrency, timeout, max_attempts, rpm, tpm, mode, False, price, quiet).config()
    endpoints = _endpoints(
        engine, base_url, baseline_base_url, judge_base_url, api_key_env, baseline_api_key_env, judge_api_key_env,
        with_baseline=not reference,
    )  # fmt: skip
    out_root = out if out is not None else (Path(dataset) if kind == "run" else DEFAULT_OUT)
    _run(test, settings, endpoints, out_root, prompts, quiet)


def _run(
    test: TestSet, settings: EvalSettings, endpoints: RoleEndpoints, out_root: Path, prompts: Path | None, quiet: bool
) -> None:
    from glan_dataset.evaluation.report import CHART_FILE, results_table
    from glan_dataset.evaluation.run import RESULTS_FILE, evaluate

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    outcome = evaluate(test, settings, endpoints, out_root, prompts_dir=prompts, console=err)
    summary = outcome.summary
    title = (
        f"GLAN-Test ({settings.config}): {settings.model} vs {settings.baseline_label}, judged by "
        f"{settings.judge_model} in both orders"
    )
    if outcome.results.height:
        Console().print(results_table(outcome.results, title=title, candidate="model", baseline="opponent"))
    files = f"{outcome.eval_dir / RESULTS_FILE}" + (
        f", {outcome.eval_dir / CHART_FILE}" if outcome.results.height else ""
    )
    line = f"{summary['judged']} of {summary['questions']} question(s) judged; results in {files}"
    if not outcome.complete:
        failed = ", ".join(f"{count} {role}" for role, count in outcome.failures.items())
        line += f"; failed call(s): {failed}. Run the same command again to retry them"
    if quiet:
        logging.getLogger("glan_dataset").info(line)
    else:
        err.print(line, style="green" if outcome.complete else "yellow")


def _endpoints(
    engine: EngineConfig,
    base_url: str | None,
    baseline_base_url: str | None,
    judge_base_url: str | None,
    api_key_env: str,
    baseline_api_key_env: str | None,
    judge_api_key_env: str | None,
    *,
    with_baseline: bool,
) -> RoleEndpoints:
    from pydantic import SecretStr

    from glan_dataset.evaluation.run import RoleEndpoints

    candidate_url = base_url or os.environ.get("OPENAI_BASE_URL") or None

    def role(url: str | None, key_env: str | None, flag: str) -> EngineConfig:
        name = key_env or api_key_env
        key = os.environ.get(name)
        if key_env is not None and not key:
            raise UsageError(f"{flag} {key_env}: the environment variable {key_env} is not set")
        return engine.model_copy(update={"base_url": url or candidate_url, "api_key": SecretStr(key) if key else None})

    return RoleEndpoints(
        candidate=role(candidate_url, None if api_key_env == DEFAULT_KEY_ENV else api_key_env, "--api-key-env"),
        baseline=role(baseline_base_url, baseline_api_key_env, "--baseline-api-key-env") if with_baseline else None,
        judge=role(judge_base_url, judge_api_key_env, "--judge-api-key-env"),
    )


def _print_plan(test: TestSet, settings: EvalSettings, prompts: Path | None, prices: PriceTable, mode: str) -> None:
    from glan_dataset.evaluation.plan import plan_evaluation
    from glan_dataset.prompts import EVAL_PROMPT_NAMES, PromptLibrary

    stages = plan_evaluation(
        test, settings, PromptLibrary(prompts, names=EVAL_PROMPT_NAMES), prices, batch=mode == "batch"
    )
    disciplines = test.frame.get_column("discipline").n_unique()
    table = Table(
        title=f"glan eval --plan --config {settings.config}: {len(test):,} question(s) in {disciplines} discipline(s)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for column in ("step", "model", "calls", "in tokens", "out tokens", "USD"):
        table.add_column(column, justify="left" if column in ("step", "model") else "right", no_wrap=True)
    for stage in stages:
        table.add_row(stage.stage, stage.model, f"{stage.calls:,}", _tokens(stage.prompt_tokens),
                      _tokens(stage.completion_tokens), _money(stage.cost))  # fmt: skip
    costs = [s.cost for s in stages]
    total = None if any(c is None for c in costs) else sum(c for c in costs if c is not None)
    table.add_section()
    table.add_row("total", "", f"{sum(s.calls for s in stages):,}", _tokens(sum(s.prompt_tokens for s in stages)),
                  _tokens(sum(s.completion_tokens for s in stages)), _money(total))  # fmt: skip
    console = Console()
    console.print(table)
    console.print("Every pair is judged twice (answers swapped). Batch mode (--mode batch) halves the cost.")
    if total is None:
        console.print("Add --price MODEL=IN/OUT (USD per million tokens) for each model to see the cost.")


def _tokens(tokens: int) -> str:
    """950, 12.3K, 4.56M: as ``glan plan`` shows them."""
    for divisor, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if tokens >= divisor:
            return f"{tokens / divisor:.3g}{suffix}"
    return str(tokens)


def _money(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"${value:,.0f}" if value >= 1000 else f"${value:,.2f}"


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
