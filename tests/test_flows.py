"""The flows are the one orchestration layer: nothing below them imports them or anything above."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import glan_dataset

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "glan_dataset"
# Layering, top to bottom: cli / builder_script -> flows -> pipeline, merge, plan, decontamination,
# publishing -> stages -> llm -> records, rundir, errors (DESIGN.md section 2).
ABOVE = {
    "publishing": ("glan_dataset.flows", "glan_dataset.pipeline", "glan_dataset.merge", "glan_dataset.plan",
                   "glan_dataset.stages", "glan_dataset.cli"),
    "decontamination": ("glan_dataset.flows", "glan_dataset.pipeline", "glan_dataset.publishing", "glan_dataset.cli"),
    "stages": ("glan_dataset.flows", "glan_dataset.pipeline", "glan_dataset.plan", "glan_dataset.cli"),
    "llm": ("glan_dataset.flows", "glan_dataset.pipeline", "glan_dataset.stages", "glan_dataset.cli"),
}  # fmt: skip


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("package", sorted(ABOVE))
def test_nothing_imports_upward(package: str) -> None:
    for path in sorted((PACKAGE / package).rglob("*.py")):
        upward = {m for m in imported_modules(path) if m.startswith(ABOVE[package])}
        assert not upward, f"{path.relative_to(ROOT)} imports {sorted(upward)}"


def test_the_builder_and_the_cli_orchestrate_through_the_flows() -> None:
    for path in [ROOT / "builder_script.py", *sorted((PACKAGE / "cli").glob("*.py"))]:
        below = {
            m
            for m in imported_modules(path)
            if m.startswith(("glan_dataset.pipeline.generate", "glan_dataset.decontamination.decontaminate_run"))
            or m in ("glan_dataset.publishing.publish.publish_run", "glan_dataset.merge.merge_runs")
        }
        assert not below, f"{path.relative_to(ROOT)} calls {sorted(below)} instead of glan_dataset.flows"


def test_flows_are_listed() -> None:
    from glan_dataset import flows

    for name in ("generate", "decontaminate", "publish", "build", "merge_runs", "demo", "prepare"):
        assert callable(getattr(flows, name)) and name in flows.__all__


def test_the_public_api_is_listed_and_imports_lazily() -> None:
    code = (
        "import sys, glan_dataset\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'polars', 'datasets', 'pydantic', 'openai'})\n"
        "assert not heavy, heavy\n"
        "missing = [n for n in glan_dataset.__all__ if getattr(glan_dataset, n, None) is None]\n"
        "assert not missing, missing\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Python API") :].split("\n## ", 1)[0]
    unlisted = [name for name in glan_dataset.__all__ if name != "__version__" and name not in section]
    assert not unlisted, f"README's Python API section misses {unlisted}"
