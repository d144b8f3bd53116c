"""``glan generate`` and ``glan plan``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from glan_dataset.cli.options import (
    AnswerModel,
    AnswerTemperature,
    AnswerTopP,
    BaseUrl,
    CacheIgnoreParams,
    Concurrency,
    Config,
    Endpoints,
    EngineOptions,
    ExecutorName,
    GenerationOptions,
    JudgeModel,
    MaxAttempts,
    MaxSubjects,
    MaxTokens,
    Mode,
    Model,
    MultiSessionRatio,
    OutDir,
    Prices,
    PromptsDir,
    QuestionsPerSubject,
    Quiet,
    RayAddress,
    Rpm,
    Seed,
    Serve,
    Shard,
    SubjectSamples,
    TaxonomyFile,
    Temperature,
    Throughput,
    Timeout,
    TopP,
    Tpm,
    Turns,
    Workers,
    parse_shard,
)
from glan_dataset.defaults import DEFAULT_ANSWER_MODEL, DEFAULT_MODEL
from glan_dataset.errors import IncompleteError
from glan_dataset.rundir import RunDir, read_prices

PARTIAL_EXIT_CODE = IncompleteError.exit_code
"""`glan generate` / `glan build` exit code when units are still outstanding (2 stays "bad input")."""

AllowPartialBuild = Annotated[
    bool,
    typer.Option(
        "--allow-partial",
        help="Publish even though disciplines of the config are missing or have failed units "
        "(without it, build stops before publishing with exit code 3).",
        rich_help_panel="Publishing",
    ),
]


def generate_command(
    out: OutDir,
    config: Config = "all",
    taxonomy: TaxonomyFile = None,
    prompts: PromptsDir = None,
    model: Model = DEFAULT_MODEL,
    answer_model: AnswerModel = DEFAULT_ANSWER_MODEL,
    subject_samples: SubjectSamples = 10,
    max_subjects: MaxSubjects = 200,
    questions_per_subject: QuestionsPerSubject = 10,
    multi_session_ratio: MultiSessionRatio = 0.5,
    seed: Seed = 0,
    temperature: Temperature = 1.0,
    top_p: TopP = 0.95,
    answer_temperature: AnswerTemperature = 0.7,
    answer_top_p: AnswerTopP = 0.95,
    turns: Turns = 1,
    judge_model: JudgeModel = None,
    max_tokens: MaxTokens = None,
    base_url: BaseUrl = None,
    concurrency: Concurrency = 64,
    timeout: Timeout = 120.0,
    max_attempts: MaxAttempts = 6,
    rpm: Rpm = None,
    tpm: Tpm = None,
    mode: Mode = "online",
    cache_ignore_params: CacheIgnoreParams = False,
    price: Prices = None,
    shard: Shard = None,
    executor: ExecutorName = "local",
    ray_address: RayAddress = None,
    workers: Workers = None,
    serve: Serve = None,
    quiet: Quiet = False,
) -> None:
    """Generate (or resume) GLAN instruction pairs for a config into a run directory."""
    from glan_dataset import flows
    from glan_dataset.executors import make_executor

    settings = GenerationOptions(
        config, model, answer_model, subject_samples, max_subjects, questions_per_subject, multi_session_ratio,
        seed, temperature, top_p, answer_temperature, answer_top_p, turns, judge_model, max_tokens,
    ).settings()  # fmt: skip
    engine = EngineOptions(
        base_url, concurrency, timeout, max_attempts, rpm, tpm, mode, cache_ignore_params, price, quiet
    )
    manifest = flows.generate(
        out,
        settings,
        engine.config(out),
        taxonomy_path=taxonomy,
        prompts_dir=prompts,
        quiet=quiet,
        executor=make_executor(executor, shard=parse_shard(shard), ray_address=ray_address, workers=workers),
        serve=serve,
    )
    result = flows.outcome(out, manifest, config, parse_shard(shard))
    records = RunDir(out).stage_dir(manifest.records_stage)
    if result.records == 0 and result.partial:
        summary = f"nothing was generated for --config {config}: {result.summary()}; see {RunDir(out).failures} "
        summary += "and run the same command again (nothing paid is repeated)"
    else:
        summary = (
            f"{result.records} records in {len(result.disciplines) - len(result.missing)} discipline(s) under {records}"
        )
        if result.partial:
            summary += f"; {result.summary()}: run the same command again to retry them (nothing paid is repeated)"
    if quiet:
        logging.getLogger("glan_dataset").log(logging.WARNING if result.partial else logging.INFO, summary)
    else:
        style = "yellow" if result.partial else "green"
        Console(stderr=True, soft_wrap=True).print(summary, style=style, highlight=False)
    if result.partial:
        raise typer.Exit(PARTIAL_EXIT_CODE)


def plan_command(
    config: Config = "all",
    taxonomy: TaxonomyFile = None,
    prompts: PromptsDir = None,
    model: Model = DEFAULT_MODEL,
    answer_model: AnswerModel = DEFAULT_ANSWER_MODEL,
    subject_samples: SubjectSamples = 10,
    max_subjects: MaxSubjects = 200,
    questions_per_subject: QuestionsPerSubject = 10,
    multi_session_ratio: MultiSessionRatio = 0.5,
    seed: Seed = 0,
    turns: Turns = 1,
    judge_model: JudgeModel = None,
    max_tokens: MaxTokens = None,
    mode: Mode = "online",
    price: Prices = None,
    throughput: Throughput = None,
    endpoints: Endpoints = 1,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="A run directory whose remembered prices (RUN/prices.json) to use."),
    ] = None,
) -> None:
    """Print the LLM calls, tokens and cost a generation needs (and with --throughput its wall time),
    without calling anything."""
    from glan_dataset.llm import PriceTable
    from glan_dataset.pipeline import discipline_contexts
    from glan_dataset.plan import Throughput as EndpointThroughput
    from glan_dataset.plan import format_duration, plan_generation, wall_time
    from glan_dataset.prompts import PromptLibrary
    from glan_dataset.stages import prompt_names
    from glan_dataset.taxonomy import load_taxonomy

    settings = GenerationOptions(
        config, model, answer_model, subject_samples, max_subjects, questions_per_subject, multi_session_ratio, seed,
        turns=turns, judge_model=judge_model, max_tokens=max_tokens,
    ).settings()  # fmt: skip
    contexts = discipline_contexts(load_taxonomy(taxonomy), config)
    given = PriceTable.parse(price or [])  # those given now win over those remembered by the run
    prices = PriceTable(prices={**(read_prices(RunDir(out)) if out is not None else {}), **given.prices})
    rate = None if throughput is None else EndpointThroughput.parse(throughput)
    plan = plan_generation(
        settings, contexts, PromptLibrary(prompts, prompt_names(settings)), prices, batch=mode == "batch"
    )
    table = Table(
        title=f"glan plan --config {config}: {plan.disciplines} discipline(s), ~{plan.subjects_per_discipline} subjects each",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    columns = ["stage", "model", "calls", "in tokens", "out tokens", "USD"] + (["wall time"] if rate else [])
    for column in columns:
        table.add_column(
            column, justify="left" if column in ("stage", "model") else "right", no_wrap=column in ("stage", "model")
        )
    for stage in plan.stages:
        table.add_row(
            stage.stage,
            stage.model,
            f"{stage.calls:,}",
            _compact(stage.prompt_tokens),
            _compact(stage.completion_tokens),
            _money(stage.cost),
            *([format_duration(rate.seconds(stage, endpoints))] if rate else []),
        )
    table.add_section()
    table.add_row(
        "total", "", f"{plan.calls:,}",
        _compact(sum(s.prompt_tokens for s in plan.stages)), _compact(sum(s.completion_tokens for s in plan.stages)), _money(plan.cost),
        *([format_duration(wall_time(plan, rate, endpoints))] if rate else []),
    )  # fmt: skip
    console = Console()
    console.print(table)
    made = f"conversations of {turns} turns" if turns > 1 else "instruction pairs"
    console.print(f"{plan.records:,} {made}. Batch mode (--mode batch) halves the cost.")
    if rate is not None:
        unit = "completion tokens/s" if rate.unit == "tokens" else "calls/s"
        console.print(
            f"Wall time at {rate.per_second:g} {unit} per endpoint on {endpoints} endpoint(s): "
            f"~{format_duration(wall_time(plan, rate, endpoints))} (the steps run one after the other)."
        )
    if plan.cost is None:
        console.print("Add --price MODEL=IN/OUT (USD per million tokens) for each model to see the cost.")


def _compact(tokens: int) -> str:
    """Token counts as 950, 12.3K, 4.56M, 10.5B: paper-scale figures fit an 80-column terminal."""
    for divisor, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if tokens >= divisor:
            return f"{tokens / divisor:.3g}{suffix}"
    return str(tokens)


def _money(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"${value:,.0f}" if value >= 1000 else f"${value:,.2f}"


def merge_runs_command(
    sources: Annotated[list[Path], typer.Argument(help="Run directories to merge (e.g. one per --shard).")],
    out: OutDir,
) -> None:
    """Combine run directories made on several machines into one (then decontaminate and publish it)."""
    from glan_dataset import flows

    report = flows.merge_runs(sources, out)
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    copied = sum(len(ds) for ds in report.copied.values())
    console.print(
        f"merged {len(sources)} run(s) into {report.target}: {copied} stage file(s) copied, "
        f"{report.identical} already there, {report.responses_added} cached response(s) added; "
        f"{len(report.disciplines)} discipline(s) with records"
    )
    console.print(f"next: glan decontaminate {report.target} && glan publish {report.target} --to ...")


def register(app: typer.Typer) -> None:
    app.command("generate")(generate_command)
    app.command("plan")(plan_command)
    app.command("merge-runs")(merge_runs_command)
