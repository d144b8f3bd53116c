"""The executor seam: local and sharded runs through flows.generate, the CLI's choice of executor,
and --executor ray without Ray installed (no Ray needed for these)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from glan_dataset import flows
from glan_dataset.errors import UsageError
from glan_dataset.executors import LocalExecutor, ShardedExecutor, make_executor
from glan_dataset.testing.openai_server import FakeOpenAIServer
from tests.helpers import TINY_TAXONOMY, engine_config, tiny_settings


def ids(run: Path) -> list[str]:
    return sorted(pl.concat([pl.read_parquet(p) for p in (run / "records").glob("*.parquet")])["id"])


def test_shards_run_through_the_seam_and_gather_into_the_local_run(
    tmp_path: Path, openai_server: FakeOpenAIServer
) -> None:
    config = engine_config(openai_server)
    whole = tmp_path / "whole"
    flows.generate(whole, tiny_settings(config="all"), config, taxonomy_path=TINY_TAXONOMY, executor=LocalExecutor())
    shards = [tmp_path / "a", tmp_path / "b"]
    for index, run in enumerate(shards):
        executor = ShardedExecutor(index, 2)
        flows.generate(run, tiny_settings(config="all"), config, taxonomy_path=TINY_TAXONOMY, executor=executor)
    assert {p.stem for p in (shards[0] / "records").glob("*.parquet")} == {"physics", "biology"}
    ShardedExecutor.gather(shards, tmp_path / "merged")
    assert ids(tmp_path / "merged") == ids(whole)


def test_the_cli_names_its_executor() -> None:
    assert isinstance(make_executor("local"), LocalExecutor)
    assert make_executor("local", shard=(1, 3)).shard == (1, 3)
    with pytest.raises(UsageError, match="--executor must be one of local, ray"):
        make_executor("slurm")
    with pytest.raises(UsageError, match="--ray-address needs --executor ray"):
        make_executor("local", ray_address="auto")


def test_executor_ray_without_ray_says_how_to_install_it(tmp_path: Path) -> None:
    hide_ray = (
        "import sys; sys.modules['ray'] = None; from glan_dataset.cli import main; "
        f"sys.argv = ['glan', 'generate', '--out', {str(tmp_path / 'run')!r}, '--executor', 'ray']; main()"
    )
    result = subprocess.run([sys.executable, "-c", hide_ray], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "pip install 'glan-dataset[ray]'" in result.stderr
