"""``glan batches list|cancel RUN``: the Batch API jobs of a run (state kept in RUN/batches/)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from glan_dataset.cli import Group
from glan_dataset.cli.options import remembered_base_urls
from glan_dataset.rundir import RunDir

if TYPE_CHECKING:
    from glan_dataset.llm import LLMEngine

batches_app = typer.Typer(help="Batch API jobs of a run: list them, cancel them.", no_args_is_help=True, cls=Group)

RunArg = Annotated[Path, typer.Argument(help="The run directory.", exists=True, file_okay=False)]
BaseUrlOpt = Annotated[
    str | None, typer.Option("--base-url", help="OpenAI-compatible endpoint (default: OPENAI_BASE_URL).")
]


def _engine(run: Path, base_url: str | None) -> LLMEngine:
    """The run's remembered endpoint serves when neither --base-url nor OPENAI_BASE_URL names one."""
    from glan_dataset.llm import EngineConfig, LLMEngine

    if base_url is None and not os.environ.get("OPENAI_BASE_URL"):
        base_url = next(iter(remembered_base_urls(run)), None)
    return LLMEngine(EngineConfig(base_url=base_url, quiet=True), run)


@batches_app.command("list")
def list_batches(
    run: RunArg,
    base_url: BaseUrlOpt = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Show the stored status; do not ask the endpoint.")
    ] = False,
) -> None:
    """Show the run's batches: id, stage, status, request counts, created."""
    from glan_dataset import eventloop
    from glan_dataset.llm.batch import BatchState, load_states, refresh_states

    if offline:
        states = load_states(RunDir(run).batches_dir)
    else:

        async def fetch() -> list[BatchState]:
            async with _engine(run, base_url) as engine:
                return await refresh_states(engine)

        states = eventloop.run(fetch())
    console = Console()
    if not states:
        console.print(f"no batches in {RunDir(run).batches_dir}")
        return
    table = Table(title=f"batches of {run}")
    table.add_column("id", overflow="fold", min_width=12)  # ids are copied into `glan batches cancel`: never cut them
    for column in ("stage", "round", "status", "completed", "failed", "total", "created"):
        table.add_column(column, justify="right" if column in ("round", "completed", "failed", "total") else "left")
    for state in states:
        counts = state.request_counts or {}
        status = state.remote_status or state.status
        if state.status == "collected":
            status += " (collected)"
        table.add_row(
            state.batch_id or f"({state.local_id}, not submitted)",
            state.stage,
            str(state.round),
            status,
            str(counts.get("completed", "")),
            str(counts.get("failed", "")),
            str(counts.get("total", "")),
            state.created,
        )
    console.print(table)


@batches_app.command("cancel")
def cancel(
    run: RunArg,
    batch_id: Annotated[
        str | None, typer.Argument(help="One batch id; default: every unfinished batch of the run.")
    ] = None,
    base_url: BaseUrlOpt = None,
) -> None:
    """Cancel batches. Their unfinished requests become failures; the next run submits them again."""
    from glan_dataset import eventloop
    from glan_dataset.llm.batch import cancel_batches

    async def go() -> list[str]:
        async with _engine(run, base_url) as engine:
            return await cancel_batches(engine, batch_id)

    cancelled = eventloop.run(go())
    Console().print(f"cancelled {len(cancelled)} batch(es)" + (": " + ", ".join(cancelled) if cancelled else ""))
