"""The ``glan`` command. Each command group lives in its own module and registers itself here."""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup, TyperOption
from typer.exceptions import TyperException

from glan_dataset.errors import GlanError


class Group(TyperGroup):
    """A command group whose ``--help`` flag defaults to False instead of None.

    typer coerces every parameter value that is not already a bool through a pydantic adapter, so a
    group's absent ``--help`` (None) made ``glan generate --help`` import pydantic (~0.1 s) only to
    read "not given". Every group of ``glan`` uses this class."""

    def get_help_option(self, ctx: typer.Context) -> TyperOption | None:
        option = super().get_help_option(ctx)
        if option is not None and option.default is None:
            option.default = False
        return option


app = typer.Typer(
    name="glan",
    cls=Group,
    help="Build GLAN instruction-tuning datasets from a taxonomy of human knowledge and publish them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


INTERRUPTED = 130


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
    """Entry point: user errors (bad flags, bad files, unusable endpoints) become one red line and exit
    code 2, never a traceback; Ctrl-C ends with a resume hint and exit code 130."""
    _log_to_stderr()
    _register()
    try:
        code = app(standalone_mode=False)
    except TyperException as error:  # unknown option, missing argument, bad value: one line, the fix named
        message = error.format_message()  # type: ignore[attr-defined]
        if message:  # empty when the help was printed instead (a group called without a command)
            context = getattr(error, "ctx", None)
            command = context.command_path if context is not None else "glan"
            _error(f"{message} (see `{command} --help`)")
        sys.exit(getattr(error, "exit_code", 2))
    except GlanError as error:
        _error(str(error))
        sys.exit(error.exit_code)
    except OSError as error:  # a path that cannot be read or written: --out under a file, a folder for a file ...
        if error.filename is None:
            raise
        _error(f"cannot use {error.filename}: {error.strerror or error}; check the path")
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        code = INTERRUPTED
    if code == INTERRUPTED:  # typer turns Ctrl-C into exit code 130
        Console(stderr=True).print(
            "[yellow]interrupted:[/yellow] every answered call is saved; run the same command again to resume",
            highlight=False,
        )
    sys.exit(code if isinstance(code, int) else 0)


def _error(message: str) -> None:
    Console(stderr=True).print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
