"""``glan --help`` stays fast: printing help imports none of the stacks the commands run on.

Each command imports its engine, data and publishing stacks inside the function that runs, and the
defaults its options show come from ``glan_dataset.defaults``. Checked on the real command line
(``python -X importtime -m glan_dataset ... --help``), which lists every module the process imported.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

HEAVY = (
    # third-party stacks (each tens to hundreds of milliseconds to import)
    "polars",
    "numpy",
    "pyarrow",
    "aiohttp",
    "openai",
    "datasets",
    "huggingface_hub",
    "jinja2",
    "rapidfuzz",
    "pydantic",  # typer coerces an absent group --help through pydantic unless the group says False
    # the project's own layers below the CLI (they import the stacks above)
    "glan_dataset.flows",
    "glan_dataset.pipeline",
    "glan_dataset.llm",
    "glan_dataset.stages",
    "glan_dataset.publishing",
    "glan_dataset.evaluation",
    "glan_dataset.decontamination",
    "glan_dataset.taxonomy",
    "glan_dataset.prompts",
    "glan_dataset.settings",
)


def imported_by(*args: str) -> set[str]:
    """Every module ``python -m glan_dataset ARGS`` imports (from ``-X importtime`` on stderr)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "glan_dataset", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Usage:" in done.stdout
    return {line.rpartition("|")[2].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize(
    "command",
    [[], ["generate"], ["publish"], ["eval"], ["taxonomy", "apply-votes"], ["batches", "list"]],
    ids=lambda command: " ".join(["glan", *command]),
)
def test_help_imports_no_heavy_stack(command: list[str]) -> None:
    modules = imported_by(*command, "--help")
    assert "typer" in modules  # the listing is real
    heavy = sorted(m for m in modules if any(m == name or m.startswith(f"{name}.") for name in HEAVY))
    assert not heavy, f"glan {' '.join(command)} --help imports {heavy}"
