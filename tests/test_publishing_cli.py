"""``glan publish`` on the command line (the commands are registered on a fresh app here)."""

from __future__ import annotations

import re

import typer
from typer.testing import CliRunner

from glan_dataset.cli.publish import register
from glan_dataset.errors import UsageError
from tests.publishing_support import make_run


def app() -> typer.Typer:
    application = typer.Typer()
    register(application)
    return application


def test_publish_dry_run_prints_only_the_plan(tmp_path):
    run = make_run(tmp_path / "run", per_discipline=6, disciplines=["physics"])
    result = CliRunner().invoke(
        app(), ["publish", str(run), "--to", str(tmp_path / "out"), "--dry-run"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert re.search(r"add    data/physics/train-00000-of-00001-[0-9a-f]{10}\.parquet", result.output)
    assert "dry run" in result.output
    assert not (tmp_path / "out").exists()


def test_publish_with_all_publishing_flags(tmp_path):
    run = make_run(tmp_path / "run", per_discipline=6, disciplines=["physics", "history"])
    extra = tmp_path / "extra.md"
    extra.write_text("Extra section text.")
    args = [
        "publish", str(run), "--license", "mit", "--tag", "v0.1", "-m", "first", "--max-shard-size", "1GB",
        "--test-per-discipline", "2", "--card-extra", str(extra), "--pretty-name", "My GLAN", "--quiet",
    ]  # fmt: skip
    result = CliRunner().invoke(app(), args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output == ""
    card = (run / "published" / "README.md").read_text()
    assert "license: mit" in card and "pretty_name: My GLAN" in card and "Extra section text." in card
    assert (run / "published" / "tags" / "v0.1.json").exists()


def test_hub_flags_are_refused_for_a_folder(tmp_path):
    run = make_run(tmp_path / "run", per_discipline=4, disciplines=["physics"])
    result = CliRunner().invoke(app(), ["publish", str(run), "--private"])
    assert isinstance(result.exception, UsageError) and "--private" in str(result.exception)


def test_commands_are_registered():
    result = CliRunner().invoke(app(), ["--help"])
    for command in ("publish", "build", "demo"):
        assert command in result.output


def test_build_generates_decontaminates_and_publishes(tmp_path, openai_server):
    from tests.publishing_support import offline_datasets

    offline_datasets(tmp_path / "hf-cache")
    run, out = tmp_path / "run", tmp_path / "dataset"
    common = [
        "--out", str(run), "--to", str(out), "--base-url", openai_server.base_url,
        "--subject-samples", "2", "--max-subjects", "2", "--questions-per-subject", "3",
        "--benchmarks", "gsm8k", "--no-hub", "--test-per-discipline", "1", "--quiet",
    ]  # fmt: skip
    env = {"OPENAI_API_KEY": "test-key"}
    first = CliRunner().invoke(app(), ["build", "--config", "physics", *common], catch_exceptions=False, env=env)
    assert first.exit_code == 0, first.output
    second = CliRunner().invoke(app(), ["build", "--config", "chemistry", *common], catch_exceptions=False, env=env)
    assert second.exit_code == 0, second.output
    # both builds of the same run directory are in the target
    assert sorted(p.name for p in (out / "data").iterdir()) == ["chemistry", "physics"]
    card = (out / "README.md").read_text()
    assert "| gsm8k |" in card and "config_name: physics" in card and "config_name: chemistry" in card
    assert "test-key" not in card and "test-key" not in (run / "run.json").read_text()
