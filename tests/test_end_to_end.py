"""The whole flow as a maintainer runs it: taxonomy -> generate -> decontaminate -> publish -> load_dataset.

Every step is the real ``glan`` command in its own process, the LLM is the loopback OpenAI-compatible
server and the Hub is the loopback fake Hub; the consumer side is the real ``datasets.load_dataset``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import polars as pl

from glan_dataset.publishing.targets import LocalFolderTarget
from glan_dataset.records import record_features
from glan_dataset.taxonomy import load_taxonomy
from glan_dataset.testing.openai_server import FakeOpenAIServer
from tests.fakes.fake_hub import FakeHub
from tests.fakes.hub_fixture import hub_env
from tests.helpers import TINY_TAXONOMY

REPO = "org/glan-tiny"


def glan(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    result = subprocess.run(
        [sys.executable, "-m", "glan_dataset", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=300,
    )
    assert result.returncode == 0, f"glan {' '.join(args)} failed:\n{result.stderr}"
    return result


def loaded_ids(source: str, config: str | None, **kwargs: object) -> dict[str, set[str]]:
    dataset = datasets.load_dataset(source, config, **kwargs)  # type: ignore[arg-type]
    assert set(dataset) == {"train", "test"}
    for split in dataset.values():
        assert split.features == record_features()
    return {name: set(split["id"]) for name, split in dataset.items()}


def test_taxonomy_to_published_and_reloaded_dataset(tmp_path: Path, fake_hub: FakeHub) -> None:
    run, folder = tmp_path / "run", tmp_path / "published"
    with FakeOpenAIServer() as server:
        glan(
            "generate", "--config", "all", "--taxonomy", str(TINY_TAXONOMY), "--out", str(run),
            "--subject-samples", "2", "--max-subjects", "3", "--questions-per-subject", "4", "--quiet",
            env={"OPENAI_BASE_URL": server.base_url},
        )  # fmt: skip
    records = pl.concat([pl.read_parquet(p) for p in sorted((run / "records").glob("*.parquet"))])
    assert records.height == 4 * 3 * 4

    # a "benchmark" that contains one generated question, word for word, must take it out of the data
    leaked = records.row(0, named=True)
    benchmark = tmp_path / "leak.jsonl"
    benchmark.write_text(json.dumps({"question": leaked["question"], "answer": ""}) + "\n")
    glan(
        "decontaminate",
        str(run),
        "--benchmarks",
        "offline",
        "--benchmark-file",
        f"leak={benchmark}",
        "--no-hub",
        "--quiet",
    )
    report = json.loads((run / "decontamination" / "report.json").read_text())
    assert report["benchmarks"]["leak"]["records_removed"] >= 1
    clean = pl.concat([pl.read_parquet(p) for p in sorted((run / "clean").glob("*.parquet"))])
    assert leaked["id"] not in set(clean["id"])

    glan("publish", str(run), "--to", str(folder), "--test-per-discipline", "2", "--quiet")
    taxonomy = load_taxonomy(TINY_TAXONOMY)
    source = str(folder.resolve())
    for config in taxonomy.config_names():
        disciplines = {d.slug for d in taxonomy.select(config)}
        expected = set(clean.filter(pl.col("discipline").is_in(list(disciplines)))["id"])
        ids = loaded_ids(source, config)
        assert ids["train"] | ids["test"] == expected, config
        assert not ids["train"] & ids["test"]
        assert len(ids["test"]) == 2 * len(disciplines)
    assert loaded_ids(source, None) == loaded_ids(source, "all")

    # the same release on the (fake) Hub, versioned by a tag, and loadable by config and by tag
    env = hub_env(fake_hub, tmp_path / "hf-home")
    glan("publish", str(run), "--to", f"hf://{REPO}", "--tag", "v1.0", "--test-per-discipline", "2", "--quiet", env=env)
    assert fake_hub.repo(REPO).tags["v1.0"]
    for config in ("physics", "natural-science", "all"):
        assert loaded_ids(REPO, config, revision="v1.0") == loaded_ids(source, config)


def test_a_discipline_removed_from_the_taxonomy_leaves_the_published_dataset(tmp_path: Path) -> None:
    run, folder = tmp_path / "run", tmp_path / "published"
    smaller = tmp_path / "smaller.yaml"
    smaller.write_text(
        TINY_TAXONOMY.read_text()
        .replace(
            "          - {name: Biology, slug: biology, description: 'Living organisms and their processes.'}\n", ""
        )
        .replace(
            "      - name: Life sciences\n        slug: life-sciences\n        description: Living organisms.\n", ""
        )
        .replace("        disciplines:\n  - name: Formal Science", "  - name: Formal Science")
    )
    common = [
        "--config", "all", "--out", str(run), "--to", str(folder), "--subject-samples", "1", "--max-subjects", "1",
        "--questions-per-subject", "4", "--benchmarks", "offline", "--no-hub", "--test-per-discipline", "1", "--quiet",
    ]  # fmt: skip
    with FakeOpenAIServer() as server:
        env = {"OPENAI_BASE_URL": server.base_url}
        glan("build", "--taxonomy", str(TINY_TAXONOMY), *common, env=env)
        assert (folder / "data" / "biology").is_dir()
        glan("build", "--taxonomy", str(smaller), *common, env=env)
    published = {rel.split("/")[1] for rel in LocalFolderTarget(folder).existing_files() if rel.startswith("data/")}
    assert sorted(published) == ["chemistry", "logic", "physics"]  # (biology's old shards stay one release, unlisted)
    report = json.loads((folder / "decontamination_report.json").read_text())
    assert sorted(report["disciplines"]) == ["chemistry", "logic", "physics"]
    card = (folder / "README.md").read_text()
    assert "config_name: biology" not in card and "config_name: life-sciences" not in card
    loaded = loaded_ids(str(folder.resolve()), "all")
    clean = pl.concat([pl.read_parquet(p) for p in sorted((run / "clean").glob("*.parquet"))])
    assert loaded["train"] | loaded["test"] == set(clean["id"])
    assert set(clean["discipline"]) == {"chemistry", "logic", "physics"}
