"""``glan decontaminate RUN``: remove benchmark contamination and duplicates from a run's records.

Registered on the main app with ``register(app)``. Errors a user can fix (unknown benchmark, bad
``--benchmark-file``, no records) raise ``GlanError`` subclasses: ``glan``'s entry point prints them
as one line and exits 2. The command itself prints a rich summary table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from glan_dataset.errors import UsageError

RunArg = Annotated[
    Path, typer.Argument(help="Run directory (reads RUN/records, writes RUN/clean and RUN/decontamination).")
]
Benchmarks = Annotated[
    str,
    typer.Option(
        "--benchmarks",
        help="Comma-separated names or groups: paper (default: the GLAN paper's test sets, Evol-Instruct and the "
        "GSM8K/MATH/ARC training splits; unavailable ones listed), offline (the six bundled test sets), train "
        "(the training splits), none (no benchmark check), or names: gsm8k, math, humaneval, mbpp, arc_easy, "
        "arc_challenge, mmlu, bbh, ifeval, evol_instruct, gsm8k_train, math_train, arc_easy_train, "
        "arc_challenge_train. A name given explicitly must be found.",
    ),
]
BenchmarkFiles = Annotated[
    list[str] | None,
    typer.Option(
        "--benchmark-file",
        help="A test set file: PATH or NAME=PATH (jsonl, json or parquet with a 'question' column, optional "
        "'answer'). Repeatable. Named like a benchmark (bbh.jsonl) it provides that benchmark.",
    ),
]
N = Annotated[int, typer.Option("--n", min=2, max=64, help="Word n-gram length of stage 1.")]
MinNgram = Annotated[int, typer.Option("--min-ngram", min=2, max=64, help="Window for benchmark items shorter than n.")]
Threshold = Annotated[
    float,
    typer.Option("--threshold", min=0.0, max=1.0, help="Share of a benchmark item a record must cover to be removed."),
]
NearDup = Annotated[
    float,
    typer.Option("--near-dup-threshold", min=0.0, max=1.0, help="rapidfuzz ratio (0-1) for near-duplicate questions."),
]
Allowlist = Annotated[
    Path | None,
    typer.Option("--allowlist", help="File of phrases (one per line) whose n-grams never count as contamination."),
]
NoDedup = Annotated[bool, typer.Option("--no-dedup", help="Skip exact and near-duplicate removal.")]
RequireAll = Annotated[
    bool, typer.Option("--require-all", help="Fail if any benchmark of the 'paper' group is unavailable.")
]
NoHub = Annotated[bool, typer.Option("--no-hub", help="Never try the Hugging Face Hub (packages and files only).")]
Disciplines = Annotated[
    str | None,
    typer.Option("--disciplines", help="Comma-separated discipline slugs (default: every discipline with records)."),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the summary table.")]


def _read_allowlist(path: Path | None) -> list[str]:
    if path is None:
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(
            f"cannot read allowlist {path} ({type(error).__name__}): give a UTF-8 text file, one phrase per line"
        ) from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def decontaminate_command(
    run: RunArg,
    benchmarks: Benchmarks = "paper",
    benchmark_file: BenchmarkFiles = None,
    n: N = 13,
    min_ngram: MinNgram = 8,
    threshold: Threshold = 0.5,
    near_dup_threshold: NearDup = 0.9,
    allowlist: Allowlist = None,
    no_dedup: NoDedup = False,
    require_all: RequireAll = False,
    no_hub: NoHub = False,
    disciplines: Disciplines = None,
    quiet: Quiet = False,
) -> None:
    """Remove records that contain benchmark test items, and duplicate questions; write RUN/clean."""
    from pydantic import ValidationError

    from glan_dataset import flows
    from glan_dataset.decontamination import DecontaminationSettings

    try:
        settings = DecontaminationSettings(
            benchmarks=[name for name in benchmarks.split(",") if name.strip()],
            benchmark_files=[Path(value) for value in benchmark_file or []],
            n=n,
            min_ngram=min_ngram,
            threshold=threshold,
            near_dup_threshold=near_dup_threshold,
            allowlist=_read_allowlist(allowlist),
            dedup=not no_dedup,
            require_all=require_all,
            use_hub=not no_hub,
            quiet=quiet,
        )
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "settings"
        raise UsageError(f"invalid {where}: {first.get('msg', 'invalid value')}") from None
    log = Console(stderr=True, highlight=False, quiet=quiet)
    chosen = [d.strip() for d in disciplines.split(",") if d.strip()] if disciplines else None
    report = flows.decontaminate(run, settings, chosen, progress=lambda message: log.print(f"[dim]{message}[/dim]"))

    out = Console(highlight=False)
    table = Table(title=f"Decontamination of {run}", title_justify="left")
    table.add_column("benchmark")
    table.add_column("split")
    table.add_column("source")
    table.add_column("version")
    table.add_column("items", justify="right")
    table.add_column("records removed", justify="right")
    for name, entry in report.benchmarks.items():
        table.add_row(name, entry.split, entry.source, entry.version, f"{entry.items:,}", f"{entry.records_removed:,}")
    for name, reason in report.unavailable.items():
        split = report.unavailable_splits.get(name, "")
        table.add_row(f"[yellow]{name}[/yellow]", split, f"[yellow]NOT CHECKED: {reason}[/yellow]", "", "-", "-")
    table.add_section()
    table.add_row("exact duplicates", "", "", "", "", f"{report.duplicates_removed.exact:,}")
    table.add_row("near duplicates", "", "", "", "", f"{report.duplicates_removed.near:,}")
    table.add_section()
    table.add_row("test-set matches", "test", "", "", "", f"{report.contaminated_test:,}")
    table.add_row("training-set matches", "train", "", "", "", f"{report.contaminated_train:,}")
    table.add_section()
    table.add_row(
        "[bold]records[/bold]", "", "", "", f"in {report.records_in:,}", f"[bold]kept {report.records_out:,}[/bold]"
    )
    out.print(table)
    warning = report.warning()
    if warning:
        out.print(f"[yellow]warning: {warning}[/yellow]")
    out.print(f"clean records: {Path(run) / 'clean'}   report: {Path(run) / 'decontamination' / 'report.json'}")


def register(app: typer.Typer) -> None:
    """Add ``glan decontaminate`` to ``app``."""
    app.command("decontaminate")(decontaminate_command)
