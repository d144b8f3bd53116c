"""The ``glan`` command. Each command group lives in its own module and registers itself here."""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console

from glan_dataset.errors import GlanError

app = typer.Typer(
    name="glan",
    help="Build GLAN instruction-tuning datasets from a taxonomy of human knowledge and publish them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    from glan_dataset.cli import batches, decontaminate, generate, publish, taxonomy

    generate.register(app)
    decontaminate.register(app)
    publish.register(app)
    app.add_typer(taxonomy.taxonomy_app, name="taxonomy")
    app.add_typer(batches.batches_app, name="batches")
    __import__("glan_dataset.cli.evaluate", fromlist=["register"]).register(app)


def _log_to_stderr() -> None:
    """Log lines (the progress of --quiet runs, Batch API events) go to stderr, one line each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S"))
    logger = logging.getLogger("glan_dataset")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def main() -> None:
    """Entry point: user errors become one red line and exit code 2, never a traceback."""
    _log_to_stderr()
    _register()
    try:
        app(standalone_mode=True)
    except GlanError as error:
        Console(stderr=True).print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except SystemExit as exit_:
        if exit_.code == 130:  # typer's exit for Ctrl-C
            Console(stderr=True).print(
                "[yellow]interrupted:[/yellow] every answered call is saved; run the same command again to resume",
                highlight=False,
            )
        raise
