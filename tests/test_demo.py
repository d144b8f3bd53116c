"""``glan demo``: the whole flow offline, fast, and loudly placeholder."""

from __future__ import annotations

import json
import time

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from glan_dataset.cli.publish import register
from glan_dataset.errors import UsageError
from glan_dataset.testing.openai_server import DEMO_MARKER
from tests.publishing_support import offline_datasets


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    offline_datasets(root / "hf-cache")
    app = typer.Typer()
    register(app)
    started = time.monotonic()
    result = CliRunner().invoke(
        app, ["demo", "--to", str(root / "demo")], catch_exceptions=False, env={"COLUMNS": "200"}
    )
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    return root / "demo", result.output, elapsed


def test_demo_is_fast_and_prints_the_tour(demo):
    folder, output, elapsed = demo
    assert elapsed < 45
    assert "placeholder text, not real data" in output.lower()
    assert f"load_dataset('{folder / 'dataset'}', 'physical-sciences')" in output
    assert DEMO_MARKER in output  # the sample row, escaped rather than eaten as rich markup
    assert "train-00000-of-00001-" in output and "llm-cache.sqlite" in output  # shard names end with a digest
    assert str(folder / "dataset" / "README.md") in output


def test_every_demo_record_says_placeholder(demo):
    folder, _, _ = demo
    assert json.loads((folder / "run" / "run.json").read_text())["demo"] is True
    rows = pl.concat([pl.read_parquet(p) for p in (folder / "dataset" / "data").rglob("*.parquet")])
    assert rows.height > 0
    assert rows["question"].str.contains(DEMO_MARKER, literal=True).all()
    assert rows["answer"].str.contains(DEMO_MARKER, literal=True).all()
    assert set(rows["discipline"]) == {"physics", "chemistry"}


def test_demo_card_is_loud(demo):
    from huggingface_hub import DatasetCard

    folder, _, _ = demo
    card = (folder / "dataset" / "README.md").read_text()
    assert "DEMO DATASET: PLACEHOLDER TEXT, NOT REAL DATA" in card
    data = DatasetCard(card).data
    assert "placeholder" in data.pretty_name.lower() and "demo" in data.tags


def test_demo_run_cannot_go_to_the_hub(demo):
    from glan_dataset.publishing.publish import publish_run

    folder, _, _ = demo
    with pytest.raises(UsageError, match="placeholder"):
        publish_run(folder / "run", "hf://someone/glan-demo", quiet=True)
