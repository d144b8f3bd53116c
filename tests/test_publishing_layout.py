"""The published folder reads back with ``datasets.load_dataset`` for every config (issue 6 acceptance)."""

from __future__ import annotations

import hashlib
import re

import polars as pl
import pytest

from glan_dataset.errors import UsageError
from glan_dataset.publishing.layout import parse_size, write_layout
from glan_dataset.publishing.publish import publish_run
from glan_dataset.publishing.split import iter_clean_splits
from tests.publishing_support import DISCIPLINES, LAYOUT, configs_for, expected_rows, make_run, offline_datasets

CONFIGS = ["all", *LAYOUT, *(s for subs in LAYOUT.values() for s in subs), *DISCIPLINES]


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    root = tmp_path_factory.mktemp("layout")
    offline_datasets(root / "hf-cache")
    run = make_run(root / "run", per_discipline=12)
    publish_run(run, root / "dataset", test_per_discipline=3, quiet=True)
    return run, root / "dataset", root / "hf-cache"


@pytest.mark.parametrize("name", [*CONFIGS, None])
def test_every_config_loads_exactly_its_rows(published, name):
    import datasets

    from glan_dataset.records import record_features

    run, folder, cache = published
    ds = datasets.load_dataset(str(folder), name, cache_dir=str(cache))
    assert set(ds) == {"train", "test"}
    disciplines = configs_for(name or "all")
    ids = set(ds["train"]["id"]) | set(ds["test"]["id"])
    assert ids == expected_rows(run, disciplines)
    assert len(ids) == ds["train"].num_rows + ds["test"].num_rows
    assert ds["test"].num_rows == 3 * len(disciplines)
    assert set(ds["train"]["discipline"]) == set(disciplines)
    for split in ds.values():
        assert split.features == record_features()
        assert "large" not in str(split.data.schema)


def test_shard_bytes_are_deterministic_and_sized(tmp_path):
    run = make_run(tmp_path / "run", per_discipline=40, disciplines=["physics", "history"])

    def build(out, size):
        staged = write_layout(
            iter_clean_splits(run / "clean", test_per_discipline=5, seed=1),
            out,
            max_shard_size=size,
            test_per_discipline=5,
            seed=1,
        )
        return staged, {
            p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*.parquet")
        }

    _, first = build(tmp_path / "a", "500MB")
    _, second = build(tmp_path / "b", "500MB")
    assert first == second
    assert [re.sub(r"-[0-9a-f]{10}\.parquet$", ".parquet", p) for p in sorted(first)] == [
        "data/history/test-00000-of-00001.parquet",
        "data/history/train-00000-of-00001.parquet",
        "data/physics/test-00000-of-00001.parquet",
        "data/physics/train-00000-of-00001.parquet",
    ]
    staged, small = build(tmp_path / "c", 10_000)  # ~35 rows of ~1 KB: several shards
    train = [p for p in small if p.startswith("data/physics/train-")]
    assert len(train) > 1 and all(f"-of-{len(train):05d}-" in p for p in train)
    assert len({p.rsplit("-", 1)[1] for p in train}) == 1  # one digest for the whole split
    rows = pl.concat([pl.read_parquet(tmp_path / "c" / p) for p in sorted(train)])
    assert rows.height == staged.disciplines["physics"].num_examples("train")
    assert rows["id"].to_list() == sorted(rows["id"].to_list())


def test_parse_size():
    assert parse_size("500MB") == 500 * 10**6
    assert parse_size("1GB") == 10**9
    assert parse_size("64MiB") == 64 * 2**20
    assert parse_size(1234) == 1234
    assert parse_size("2048") == 2048
    for bad in ("lots", "-1MB", "0"):
        with pytest.raises(UsageError):
            parse_size(bad)


def test_disciplines_without_records_get_no_config(tmp_path):
    run = make_run(tmp_path / "run", per_discipline=6, disciplines=["physics", "chemistry"])
    pl.read_parquet(run / "clean" / "physics.parquet").head(0).write_parquet(run / "clean" / "biology.parquet")
    splits = iter_clean_splits(run / "clean", test_per_discipline=2, seed=0)
    staged = write_layout(splits, tmp_path / "s", taxonomy_path=run / "taxonomy.yaml", test_per_discipline=2, seed=0)
    names = [c.name for c in staged.configs]
    # taxonomy order; biology (no records) and life-sciences / humanities (nothing under them) get no config
    assert names == ["all", "natural-science", "physical-sciences", "physics", "chemistry"]
    assert not (tmp_path / "s" / "data" / "biology").exists()
