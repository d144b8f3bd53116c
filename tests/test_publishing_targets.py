"""The publish plan and the local-folder target."""

from __future__ import annotations

import pytest

from glan_dataset.errors import UsageError
from glan_dataset.publishing.targets import (
    LocalFolderTarget,
    PublishTarget,
    RemoteFile,
    parse_target,
    plan_publish,
    sha256_file,
)


def write(root, rel, text):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_plan_compares_sha256_and_prunes_only_generated_folders(tmp_path):
    staging = tmp_path / "s"
    same = write(staging, "data/a/train-00000-of-00001.parquet", "same")
    write(staging, "data/b/train-00000-of-00001.parquet", "new content")
    write(staging, "README.md", "card")
    write(staging, ".hidden.tmp", "ignored")
    existing = {
        "data/a/train-00000-of-00001.parquet": RemoteFile(
            path="data/a/train-00000-of-00001.parquet", sha256=sha256_file(same), size=4
        ),
        "data/b/train-00000-of-00001.parquet": RemoteFile(
            path="data/b/train-00000-of-00001.parquet", sha256="0" * 64, size=11
        ),
        "data/b/train-00000-of-00002.parquet": RemoteFile(
            path="data/b/train-00000-of-00002.parquet", sha256="1" * 64, size=3
        ),
        "assets/old.png": RemoteFile(path="assets/old.png", sha256=None, size=1),
        "NOTES.md": RemoteFile(path="NOTES.md", sha256=None, size=1),
    }
    plan = plan_publish(staging, existing)
    assert plan.add == ["README.md"]
    assert plan.update == ["data/b/train-00000-of-00001.parquet"]
    assert plan.unchanged == ["data/a/train-00000-of-00001.parquet"]
    assert plan.delete == ["assets/old.png", "data/b/train-00000-of-00002.parquet"]  # NOTES.md kept


def test_unknown_sha_is_compared_through_read_remote(tmp_path):
    staging = tmp_path / "s"
    write(staging, "README.md", "card")
    existing = {"README.md": RemoteFile(path="README.md", sha256=None, size=4)}
    assert plan_publish(staging, existing).update == ["README.md"]
    assert plan_publish(staging, existing, read_remote=lambda p: b"card").unchanged == ["README.md"]
    assert plan_publish(staging, existing, read_remote=lambda p: b"cart").update == ["README.md"]


def test_local_folder_publishes_incrementally(tmp_path):
    staging, out = tmp_path / "s", tmp_path / "out"
    write(staging, "data/a/train-00000-of-00002.parquet", "a0")
    write(staging, "data/a/train-00001-of-00002.parquet", "a1")
    write(staging, "README.md", "v1")
    target = parse_target(str(out))
    assert isinstance(target, LocalFolderTarget) and isinstance(target, PublishTarget)
    assert target.existing_files() == {}
    target.publish(staging, plan_publish(staging, target.existing_files()), message="m", tag=None, dry_run=False)
    assert target.read_file("README.md") == b"v1"

    # second build: the discipline shrank to one shard, another discipline appeared
    staging2 = tmp_path / "s2"
    write(staging2, "data/a/train-00000-of-00001.parquet", "a")
    write(staging2, "data/b/train-00000-of-00001.parquet", "b")
    write(staging2, "README.md", "v1")
    plan = plan_publish(staging2, target.existing_files())
    assert plan.delete == ["data/a/train-00000-of-00002.parquet", "data/a/train-00001-of-00002.parquet"]
    assert plan.unchanged == ["README.md"]
    dry = target.publish(staging2, plan, message="m", tag=None, dry_run=True)
    assert dry.dry_run and (out / "data/a/train-00000-of-00002.parquet").exists()
    mtime = (out / "README.md").stat().st_mtime_ns
    target.publish(staging2, plan, message="m", tag=None, dry_run=False)
    assert sorted(target.existing_files()) == [
        "README.md",
        "data/a/train-00000-of-00001.parquet",
        "data/b/train-00000-of-00001.parquet",
    ]
    assert (out / "README.md").stat().st_mtime_ns == mtime  # unchanged file not rewritten
    # the previous release's shards stay readable (a reader may hold the previous card) but are not listed
    assert (out / "data/a/train-00000-of-00002.parquet").exists()
    assert out.is_symlink() and len(list(target.releases_dir.iterdir())) == 2  # this release and the previous
    assert not list(tmp_path.glob(".out.link-*")) and not list(target.releases_dir.glob(".staging-*"))


def test_local_tags_are_recorded_and_never_reused(tmp_path):
    staging, out = tmp_path / "s", tmp_path / "out"
    write(staging, "README.md", "v1")
    target = LocalFolderTarget(out)
    result = target.publish(staging, plan_publish(staging, {}), message="first", tag="v1.0", dry_run=False)
    assert result.tag == "v1.0" and (out / "tags" / "v1.0.json").exists()
    # the same release again (a rerun after a kill): done already, nothing written
    again = target.publish(
        staging, plan_publish(staging, target.existing_files()), message="again", tag="v1.0", dry_run=False
    )
    assert again.tag == "v1.0" and len(list(target.releases_dir.iterdir())) == 1
    staging2 = tmp_path / "s2"
    write(staging2, "README.md", "v2")
    with pytest.raises(UsageError, match="already exists"):
        target.publish(
            staging2, plan_publish(staging2, target.existing_files()), message="again", tag="v1.0", dry_run=True
        )
    with pytest.raises(UsageError, match="bad tag"):
        target.publish(staging, plan_publish(staging, {}), message="m", tag="../x", dry_run=True)


def test_parse_target_refuses_hub_options_for_folders_and_bad_hub_ids(tmp_path):
    with pytest.raises(UsageError, match="--private"):
        parse_target(str(tmp_path), private=True, create_pr=False, revision=None)
    with pytest.raises(UsageError, match="hf://ORG/NAME"):
        parse_target("hf://just-a-name")
