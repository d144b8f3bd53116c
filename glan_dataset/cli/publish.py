"""``glan publish``, ``glan build`` and ``glan demo``: from a run directory to a dataset repository."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from glan_dataset.cli.decontaminate import BenchmarkFiles, Benchmarks, NoHub, RequireAll
from glan_dataset.cli.generate import AllowPartialBuild
from glan_dataset.cli.options import (
    AnswerModel,
    AnswerTemperature,
    AnswerTopP,
    BaseUrl,
    CacheIgnoreParams,
    Concurrency,
    Config,
    EnforceChecks,
    EngineOptions,
    GenerationOptions,
    JudgeModel,
    MaxAttempts,
    MaxSubjects,
    MaxTokens,
    MinScore,
    Mode,
    Model,
    MultiSessionRatio,
    OutDir,
    Prices,
    PromptsDir,
    QuestionsPerSubject,
    Quiet,
    Rpm,
    Seed,
    SubjectSamples,
    TaxonomyFile,
    Temperature,
    Timeout,
    TopP,
    Tpm,
    Turns,
)
from glan_dataset.defaults import (
    DEFAULT_ANSWER_MODEL,
    DEFAULT_LICENSE,
    DEFAULT_MAX_SHARD_SIZE,
    DEFAULT_MODEL,
    DEFAULT_TEST_PER_DISCIPLINE,
)

PUB = "Publishing"
HUB = "Hub targets (hf://ORG/NAME)"

RunArg = Annotated[Path, typer.Argument(help="Run directory with decontaminated records (RUN/clean).")]
To = Annotated[
    str | None,
    typer.Option(
        "--to", help="A folder (default RUN/published) or hf://ORG/NAME for the Hugging Face Hub.", rich_help_panel=PUB
    ),
]
License = Annotated[
    str,
    typer.Option(
        "--license",
        help="License of the published data (a Hub license id: apache-2.0, mit, cc-by-4.0, odc-by, other, ...). "
        "The card adds that the generating models' terms of use may restrict the outputs further.",
        rich_help_panel=PUB,
    ),
]
Tag = Annotated[
    str | None,
    typer.Option("--tag", help="Tag this release (e.g. v1.0); an existing tag is refused.", rich_help_panel=PUB),
]
Message = Annotated[
    str | None, typer.Option("--message", "-m", help="Commit message / changelog note.", rich_help_panel=PUB)
]
MaxShardSize = Annotated[
    str,
    typer.Option(
        "--max-shard-size", help="Uncompressed size per parquet shard: 500MB, 1GB, or bytes.", rich_help_panel=PUB
    ),
]
TestPerDiscipline = Annotated[
    int,
    typer.Option(
        "--test-per-discipline",
        min=0,
        help="Held-out GLAN-Test records per discipline (at most half).",
        rich_help_panel=PUB,
    ),
]
CardExtra = Annotated[
    Path | None,
    typer.Option(
        "--card-extra",
        help="Markdown added to the card in its own section; kept in RUN/card_extra.md for later publishes.",
        rich_help_panel=PUB,
    ),
]
PrettyName = Annotated[
    str | None, typer.Option("--pretty-name", help="Dataset title shown on the card.", rich_help_panel=PUB)
]
Private = Annotated[bool, typer.Option("--private", help="Create the Hub repository as private.", rich_help_panel=HUB)]
CreatePr = Annotated[
    bool, typer.Option("--create-pr", help="Open a pull request instead of committing.", rich_help_panel=HUB)
]
Revision = Annotated[
    str | None, typer.Option("--revision", help="Branch to publish to (created if missing).", rich_help_panel=HUB)
]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Print the files that would be added, updated and deleted; write nothing.")
]
PublishQuiet = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print nothing, not even the Hub upload bars (errors still do).")
]
AllowPartial = Annotated[
    bool,
    typer.Option(
        "--allow-partial",
        help="Publish even though disciplines of the config are missing or have failed units; "
        "the release is marked partial and the card lists what is missing.",
        rich_help_panel=PUB,
    ),
]
PublishPrices = Annotated[
    list[str] | None,
    typer.Option(
        "--price",
        help="MODEL=IN/OUT in USD per million tokens (repeatable): prices the run's recorded usage on the card; "
        "kept in RUN/prices.json for later publishes.",
        rich_help_panel=PUB,
    ),
]


def publish_command(
    run: RunArg,
    to: To = None,
    license: License = DEFAULT_LICENSE,  # noqa: A002
    tag: Tag = None,
    message: Message = None,
    max_shard_size: MaxShardSize = DEFAULT_MAX_SHARD_SIZE,
    test_per_discipline: TestPerDiscipline = DEFAULT_TEST_PER_DISCIPLINE,
    card_extra: CardExtra = None,
    pretty_name: PrettyName = None,
    private: Private = False,
    create_pr: CreatePr = False,
    revision: Revision = None,
    dry_run: DryRun = False,
    quiet: PublishQuiet = False,
    allow_partial: AllowPartial = False,
    price: PublishPrices = None,
    min_score: MinScore = None,
    enforce_checks: EnforceChecks = None,
) -> None:
    """Publish a run's decontaminated records as a parquet + YAML dataset (local folder or the Hub).

    A run with missing disciplines or failed units is refused unless --allow-partial. A local
    folder switches to the new release all at once. The Hub token comes from HF_TOKEN or
    `hf auth login`; it is never printed or written.
    """
    from glan_dataset import flows

    flows.publish(
        run,
        to,
        license=license,
        tag=tag,
        message=message,
        max_shard_size=max_shard_size,
        test_per_discipline=test_per_discipline,
        card_extra=card_extra,
        pretty_name=pretty_name,
        dry_run=dry_run,
        quiet=quiet,
        allow_partial=allow_partial,
        prices=price,
        min_score=min_score,
        enforce_checks=enforce_checks or (),
        **_hub_options(private, create_pr, revision),
    )


def build_command(
    out: OutDir,
    config: Config = "all",
    to: To = None,
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
    benchmarks: Benchmarks = "paper",
    benchmark_file: BenchmarkFiles = None,
    require_all: RequireAll = False,
    no_hub: NoHub = False,
    license: License = DEFAULT_LICENSE,  # noqa: A002
    tag: Tag = None,
    message: Message = None,
    max_shard_size: MaxShardSize = DEFAULT_MAX_SHARD_SIZE,
    test_per_discipline: TestPerDiscipline = DEFAULT_TEST_PER_DISCIPLINE,
    card_extra: CardExtra = None,
    pretty_name: PrettyName = None,
    private: Private = False,
    create_pr: CreatePr = False,
    revision: Revision = None,
    dry_run: DryRun = False,
    quiet: Quiet = False,
    allow_partial: AllowPartialBuild = False,
    min_score: MinScore = None,
    enforce_checks: EnforceChecks = None,
) -> None:
    """Generate (or resume), decontaminate and publish a config in one go.

    The whole run directory is published: build several configs into one run and one target.
    `glan decontaminate` has the full set of decontamination flags; build takes the common ones.

    With --dry-run the generation and decontamination still run (they are resumable); only the
    publish step writes nothing.
    """
    from glan_dataset import flows

    settings = GenerationOptions(
        config, model, answer_model, subject_samples, max_subjects, questions_per_subject, multi_session_ratio,
        seed, temperature, top_p, answer_temperature, answer_top_p, turns, judge_model, max_tokens,
    ).settings()  # fmt: skip
    engine = EngineOptions(
        base_url, concurrency, timeout, max_attempts, rpm, tpm, mode, cache_ignore_params, price, quiet
    )
    decontamination = _decontamination_settings(benchmarks, benchmark_file, require_all, no_hub, quiet)
    flows.build(
        out,
        settings,
        engine.config(out),
        to,
        taxonomy_path=taxonomy,
        prompts_dir=prompts,
        decontamination_settings=decontamination,
        license=license,
        tag=tag,
        message=message,
        max_shard_size=max_shard_size,
        test_per_discipline=test_per_discipline,
        card_extra=card_extra,
        pretty_name=pretty_name,
        dry_run=dry_run,
        quiet=quiet,
        allow_partial=allow_partial,
        min_score=min_score,
        enforce_checks=enforce_checks or (),
        **_hub_options(private, create_pr, revision),
    )


def demo_command(
    to: Annotated[Path, typer.Option("--to", help="Folder for the demo: DIR/run and DIR/dataset.")] = Path("demo"),
    config: Annotated[
        str, typer.Option("--config", "-c", help="Config to generate (keep it small: a sub-field or a discipline).")
    ] = "physical-sciences",
) -> None:
    """The whole flow offline in well under a minute, with placeholder text from a local fake model server.

    Shows the run directory, the published repository layout and its card before you spend money
    on a real endpoint. Nothing here is real data.
    """
    from glan_dataset import flows

    flows.demo(to, config=config, console=Console())


def _decontamination_settings(
    benchmarks: str, benchmark_files: list[str] | None, require_all: bool, no_hub: bool, quiet: bool
) -> object:
    from pydantic import ValidationError

    from glan_dataset.decontamination import DecontaminationSettings
    from glan_dataset.errors import UsageError

    try:
        return DecontaminationSettings(
            benchmarks=[name.strip() for name in benchmarks.split(",") if name.strip()],
            benchmark_files=[Path(value) for value in benchmark_files or []],
            require_all=require_all,
            use_hub=not no_hub,
            quiet=quiet,
        )
    except ValidationError as error:
        first = error.errors()[0]
        raise UsageError(
            f"invalid {'.'.join(map(str, first.get('loc', ()))) or 'setting'}: {first.get('msg')}"
        ) from None


def _hub_options(private: bool, create_pr: bool, revision: str | None) -> dict[str, object]:
    """Only the Hub flags actually given (a local target refuses any of them)."""
    options: dict[str, object] = {}
    if private:
        options["private"] = True
    if create_pr:
        options["create_pr"] = True
    if revision:
        options["revision"] = revision
    return options


def register(app: typer.Typer) -> None:
    app.command("publish")(publish_command)
    app.command("build")(build_command)
    app.command("demo")(demo_command)
