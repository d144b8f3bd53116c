"""``publish_run``: refusals, dry runs, incremental republishing, releases and the card extra."""

from __future__ import annotations

import json
import re

import polars as pl
import pytest
from rich.console import Console

from glan_dataset.errors import UsageError
from glan_dataset.publishing.publish import publish_run
from glan_dataset.publishing.targets import LocalFolderTarget
from glan_dataset.records import record_polars_schema
from tests.decontamination_support import stamp_as_decontaminated
from tests.publishing_support import (
    DISCIPLINES,
    decon_report,
    make_records,
    make_run,
    write_clean,
    write_taxonomy,
)


def snapshot(folder):
    """The files of the published release (not the previous release's shards it carries for readers)."""
    return {rel: (folder / rel).read_bytes() for rel in LocalFolderTarget(folder).existing_files()}


def shard(discipline, split, names):
    """The one shard name of a discipline's split among ``names`` (names end with a content digest)."""
    (found,) = [
        n for n in names if re.fullmatch(rf"data/{discipline}/{split}-00000-of-00001-[0-9a-f]{{10}}\.parquet", n)
    ]
    return found


def test_refuses_a_run_without_clean_records(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(UsageError, match="glan decontaminate"):
        publish_run(tmp_path / "run", quiet=True)


def test_refuses_demo_runs_to_the_hub(tmp_path):
    run = make_run(tmp_path / "run", per_discipline=4, demo=True, disciplines=["physics"])
    with pytest.raises(UsageError, match="placeholder"):
        publish_run(run, "hf://someone/glan", quiet=True)


def test_refuses_bad_license(tmp_path):
    run = make_run(tmp_path / "run", per_discipline=4, disciplines=["physics"])
    with pytest.raises(UsageError, match="license"):
        publish_run(run, license="Apache 2.0", quiet=True)


def test_default_target_and_dry_run(tmp_path):
    run = make_run(tmp_path / "run", per_discipline=6, disciplines=["physics", "history"])
    console = Console(record=True, width=200)
    result = publish_run(run, dry_run=True, console=console)
    assert result.dry_run and not (run / "published").exists()
    text = console.export_text()
    assert "dry run" in text and re.search(r"add    data/physics/train-00000-of-00001-[0-9a-f]{10}\.parquet", text)
    result = publish_run(run, quiet=True)
    assert (run / "published" / "README.md").exists()
    assert result.url == str((run / "published").absolute())


def test_second_publish_rewrites_only_the_changed_discipline(tmp_path):
    run = make_run(tmp_path / "run", per_discipline=10)
    out = tmp_path / "dataset"
    publish_run(run, out, test_per_discipline=2, quiet=True)
    before = snapshot(out)

    # nothing changed: nothing to publish, no new release
    again = publish_run(run, out, test_per_discipline=2, quiet=True)
    assert again.plan.is_empty and snapshot(out) == before

    # chemistry was regenerated (different answers, one more record)
    write_clean(run, "chemistry", make_records("chemistry", 11, salt="b"))
    result = publish_run(run, out, test_per_discipline=2, quiet=True, message="chemistry v2")
    changed = set(result.plan.add + result.plan.update + result.plan.delete)
    assert changed == {
        shard("chemistry", "train", before),
        shard("chemistry", "test", before),
        shard("chemistry", "train", result.plan.add),
        shard("chemistry", "test", result.plan.add),
        "README.md",
        "releases.json",
        "assets/records_per_field.png",
        "decontamination_report.json",  # re-decontaminating chemistry rewrote the report
    }
    after = snapshot(out)
    assert {k for k in after if after[k] != before.get(k)} == set(result.plan.add + result.plan.update)
    assert not set(result.plan.delete) & set(after)
    releases = json.loads((out / "releases.json").read_text())["releases"]
    assert [r["version"] for r in releases] == ["r1", "r2"]
    assert releases[1]["disciplines_changed"] == ["chemistry"] and releases[1]["message"] == "chemistry v2"
    assert releases[0]["disciplines_changed"] == ["archaeology", "biology", "chemistry", "history", "physics"]

    # a discipline disappears from the run (the pipeline retires its files): its folder leaves the release
    (run / "clean" / "archaeology.parquet").unlink()
    (run / "records" / "archaeology.parquet").unlink()
    remaining = [d for d in DISCIPLINES if d != "archaeology"]  # and decontamination ran again
    write_taxonomy(run / "taxonomy.yaml", remaining)  # it left the taxonomy
    (run / "decontamination" / "report.json").write_text(json.dumps(decon_report(remaining)))
    stamp_as_decontaminated(run)
    result = publish_run(run, out, test_per_discipline=2, quiet=True, tag="v2")
    assert shard("archaeology", "train", before) in result.plan.delete
    assert not any(rel.startswith("data/archaeology/") for rel in snapshot(out))
    last = json.loads((out / "releases.json").read_text())["releases"][-1]
    assert last["version"] == "v2" and last["disciplines_removed"] == ["archaeology"]
    assert "`archaeology`" not in (out / "README.md").read_text().split("## Changelog")[0]
    # the same command again (e.g. after a kill once it landed): nothing new, nothing listed twice
    landed = snapshot(out)
    assert publish_run(run, out, test_per_discipline=2, quiet=True, tag="v2").plan.is_empty
    assert snapshot(out) == landed
    # the tag for other data is refused
    write_clean(run, "physics", make_records("physics", 10, salt="c"))
    with pytest.raises(UsageError, match="already a release"):
        publish_run(run, out, test_per_discipline=2, quiet=True, tag="v2")
    assert snapshot(out) == landed


def test_refuses_clean_records_older_than_the_records_or_missing(tmp_path):
    run = make_run(tmp_path / "run", per_discipline=4, disciplines=["physics", "chemistry"])
    records = run / "records" / "physics.parquet"
    records.write_bytes(records.read_bytes())  # touched, same content: still fresh (content, not clock)
    publish_run(run, tmp_path / "fresh", quiet=True)
    pl.DataFrame(make_records("physics", 5, salt="new"), schema=record_polars_schema()).write_parquet(records)
    with pytest.raises(UsageError, match="out of date for physics.*glan decontaminate"):
        publish_run(run, tmp_path / "out", quiet=True)
    (run / "clean" / "physics.parquet").unlink()
    with pytest.raises(UsageError, match="physics"):
        publish_run(run, tmp_path / "out", quiet=True)
    # removed from the run, but the decontamination report still counts it: the card would show it
    records.unlink()
    report = run / "decontamination" / "report.json"
    data = json.loads(report.read_text())
    data["disciplines"]["physics"] = {"records_in": 4, "records_out": 4}
    report.write_text(json.dumps(data))
    with pytest.raises(UsageError, match="physics"):
        publish_run(run, tmp_path / "out", quiet=True)
    assert not (tmp_path / "out").exists()


def test_card_extra_is_kept_in_the_run_for_later_publishes(tmp_path):
    run = make_run(tmp_path / "run", per_discipline=4, disciplines=["physics"])
    extra = tmp_path / "extra.md"
    extra.write_text("Our extra words.\n")
    publish_run(run, tmp_path / "a", card_extra=extra, quiet=True)
    extra.unlink()
    publish_run(run, tmp_path / "b", quiet=True)
    assert "Our extra words." in (tmp_path / "b" / "README.md").read_text()
    with pytest.raises(UsageError, match="no such file"):
        publish_run(run, tmp_path / "c", card_extra=extra, quiet=True)


def test_demo_runs_get_a_loud_banner(tmp_path):
    run = make_run(tmp_path / "run", per_discipline=4, demo=True, disciplines=["physics"])
    publish_run(run, tmp_path / "out", quiet=True)
    from huggingface_hub import DatasetCard

    card = (tmp_path / "out" / "README.md").read_text()
    assert "PLACEHOLDER TEXT, NOT REAL DATA" in card
    assert "placeholder" in DatasetCard(card).data.pretty_name.lower()
    assert "demo" in DatasetCard(card).data.tags


def test_chart_is_deterministic(tmp_path):
    from glan_dataset.publishing.chart import render_records_per_field

    counts = [("Natural Science", 27, 9), ("Humanities", 18, 6)]
    render_records_per_field(counts, tmp_path / "a.png")
    render_records_per_field(counts, tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
