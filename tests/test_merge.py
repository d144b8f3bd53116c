"""A run split across machines with --shard I/N, combined with glan merge-runs."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from glan_dataset.errors import UsageError
from glan_dataset.merge import merge_runs
from glan_dataset.pipeline import generate
from glan_dataset.testing.openai_server import FakeOpenAIServer
from tests.helpers import TINY_TAXONOMY, engine_config, tiny_settings


def ids(run: Path) -> list[str]:
    return sorted(pl.concat([pl.read_parquet(p) for p in (run / "records").glob("*.parquet")])["id"])


def calls(run: Path) -> int:
    return sum(row["calls"] for row in json.loads((run / "run.json").read_text())["usage"]["cumulative"])


def shard(run: Path, server: FakeOpenAIServer, index: int, count: int = 2, **settings: object) -> None:
    generate(
        run,
        tiny_settings(config="all", **settings),
        engine_config(server),
        taxonomy_path=TINY_TAXONOMY,
        quiet=True,
        shard=(index, count),
    )


def test_shards_merge_into_the_same_run_as_one_machine(tmp_path: Path, openai_server: FakeOpenAIServer) -> None:
    whole = tmp_path / "whole"
    generate(whole, tiny_settings(config="all"), engine_config(openai_server), taxonomy_path=TINY_TAXONOMY, quiet=True)
    a, b, merged = tmp_path / "a", tmp_path / "b", tmp_path / "merged"
    shard(a, openai_server, 0)
    shard(b, openai_server, 1)
    shard_disciplines = [{p.stem for p in (run / "records").glob("*.parquet")} for run in (a, b)]
    assert shard_disciplines == [{"physics", "biology"}, {"chemistry", "logic"}]

    report = merge_runs([a, b], merged)
    assert report.disciplines == ["biology", "chemistry", "logic", "physics"]
    assert ids(merged) == ids(whole)
    manifest = json.loads((merged / "run.json").read_text())
    assert manifest["disciplines"] == report.disciplines and set(manifest["counts"]) == set(report.disciplines)
    assert calls(merged) == calls(a) + calls(b) == calls(whole)

    # the merged cache answers everything: generating the whole config on it sends no call
    openai_server.reset_stats()
    generate(merged, tiny_settings(config="all"), engine_config(openai_server), taxonomy_path=TINY_TAXONOMY, quiet=True)
    assert openai_server.stats.chat_calls == 0
    assert ids(merged) == ids(whole)


def test_a_shard_that_retried_its_failures_is_merged_again_counting_usage_once(tmp_path: Path) -> None:
    from glan_dataset.testing.openai_server import FaultPlan

    a, b, merged = tmp_path / "a", tmp_path / "b", tmp_path / "merged"
    with FakeOpenAIServer() as server:
        shard(b, server, 1)
    # shard a runs one call at a time with seeded 500s: some units fail, its files are incomplete
    with FakeOpenAIServer(faults=FaultPlan(rate_500=0.15, seed=3)) as server:
        generate(
            a,
            tiny_settings(config="all"),
            engine_config(server, max_attempts=1, concurrency=1),
            taxonomy_path=TINY_TAXONOMY,
            quiet=True,
            shard=(0, 2),
        )
    merge_runs([a, b], merged)
    partial = ids(merged)
    assert calls(merged) == calls(a) + calls(b)
    merge_runs([a, b], merged)  # nothing new: nothing added twice
    assert calls(merged) == calls(a) + calls(b) and ids(merged) == partial

    whole = tmp_path / "whole"
    with FakeOpenAIServer() as server:  # shard a retries its failures; and an uninterrupted reference
        shard(a, server, 0)
        generate(whole, tiny_settings(config="all"), engine_config(server), taxonomy_path=TINY_TAXONOMY, quiet=True)
    merge_runs([a, b], merged)
    assert calls(merged) == calls(a) + calls(b)
    assert ids(merged) == ids(whole) != partial


def test_the_same_discipline_generated_differently_is_a_conflict(tmp_path: Path) -> None:
    a, b, merged = tmp_path / "a", tmp_path / "b", tmp_path / "merged"
    for run, server_seed in ((a, 0), (b, 1)):  # same settings, different model answers
        with FakeOpenAIServer(seed=server_seed) as server:
            shard(run, server, 0)
    with pytest.raises(UsageError, match="differs between"):
        merge_runs([a, b], merged)
    assert not merged.exists()


def test_conflicting_or_incompatible_runs_are_refused_untouched(
    tmp_path: Path, openai_server: FakeOpenAIServer
) -> None:
    a, b, c, merged = tmp_path / "a", tmp_path / "b", tmp_path / "c", tmp_path / "merged"
    shard(a, openai_server, 0)
    shard(b, openai_server, 0, seed=5)  # same disciplines, other samples
    with pytest.raises(UsageError, match="settings"):
        merge_runs([a, b], merged)
    assert not merged.exists()
    shard(c, openai_server, 0, questions_per_subject=2)
    with pytest.raises(UsageError, match="questions_per_subject"):
        merge_runs([a, c], merged)
    with pytest.raises(UsageError, match="both a source and the target"):
        merge_runs([a], a)
    with pytest.raises(UsageError, match="not a glan run"):
        merge_runs([tmp_path / "nothing"], merged)
    assert not merged.exists()


def test_a_second_merge_into_the_target_stops_and_counts_nothing(
    tmp_path: Path, openai_server: FakeOpenAIServer
) -> None:
    from glan_dataset.locking import MERGE_LOCK, LockTaken, RunLocks

    a, merged = tmp_path / "a", tmp_path / "merged"
    shard(a, openai_server, 0)
    merge_runs([a], merged)
    before = calls(merged)
    first = RunLocks(merged).lock(MERGE_LOCK)  # another merge into it, in progress
    assert first.acquire()
    try:
        with pytest.raises(LockTaken, match=r"being merged into by pid \d+"):
            merge_runs([a], merged)
    finally:
        first.release()
    merge_runs([a], merged)  # once it is done, merging again adds nothing twice
    assert calls(merged) == before


def test_cli_shard_flag_is_validated() -> None:
    from glan_dataset.cli.options import parse_shard

    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "-1/2", "x/2", "1"):
        with pytest.raises(UsageError, match="I/N"):
            parse_shard(bad)


def test_cli_shards_and_merge_runs(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    def glan(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "glan_dataset", *args], capture_output=True, text=True, env=env)

    with FakeOpenAIServer() as server:
        env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"} | {"OPENAI_BASE_URL": server.base_url}
        common = ["--config", "all", "--taxonomy", str(TINY_TAXONOMY), "--subject-samples", "1", "--max-subjects", "1"]
        for index in range(2):
            result = glan("generate", *common, "--questions-per-subject", "1", "--out", str(tmp_path / f"s{index}"),
                          "--shard", f"{index}/2", "--quiet", env=env)  # fmt: skip
            assert result.returncode == 0, result.stderr
        bad = glan("generate", *common, "--out", str(tmp_path / "x"), "--shard", "2/2", env=env)
        assert bad.returncode == 2 and "I/N" in bad.stderr and "Traceback" not in bad.stderr
    merged = glan("merge-runs", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "m"), env=env)
    assert merged.returncode == 0, merged.stderr
    assert "4 discipline(s) with records" in merged.stderr
    assert len(ids(tmp_path / "m")) == 4
