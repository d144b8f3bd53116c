"""The leaderboard ``glan publish`` adds to the card from ``RUN/eval``, the published dataset still
loading, and ``glan eval`` reading a published folder (the same questions as its run directory)."""

from __future__ import annotations

import json

import datasets
import pytest
from typer.testing import CliRunner

from glan_dataset.cli import _register, app
from glan_dataset.evaluation import leaderboard_rows, load_test_set
from glan_dataset.publishing.publish import publish_run
from glan_dataset.testing.openai_server import FakeOpenAIServer
from tests.evaluation_support import BASELINE, CANDIDATE, JUDGE, PlantedJudge
from tests.publishing_support import make_run, offline_datasets

_register()


@pytest.fixture
def server():
    with FakeOpenAIServer(responder=PlantedJudge()) as srv:
        yield srv


def _eval(dataset, server, *extra):
    args = ["eval", str(dataset), "--model", CANDIDATE, "--judge-model", JUDGE, "--base-url", server.base_url, "-q"]
    result = CliRunner().invoke(app, [*args, *extra])
    assert result.exit_code == 0, result.output
    return result


def test_publish_adds_a_leaderboard_row_per_evaluation_and_the_dataset_loads(tmp_path, server):
    offline_datasets(tmp_path / "hf-cache")
    run = make_run(tmp_path / "run")
    _eval(run, server, "--baseline", BASELINE)
    _eval(run, server, "--reference")
    summaries = {p.parent.name: json.loads(p.read_text()) for p in (run / "eval").glob("*/summary.json")}
    assert len(summaries) == 2

    published = tmp_path / "published"
    publish_run(run, published, quiet=True)
    card = (published / "README.md").read_text()
    assert "## GLAN-Test leaderboard" in card
    table = [line for line in card.splitlines() if line.startswith(f"| `{CANDIDATE}`")]
    assert len(table) == 2
    for summary in summaries.values():
        overall = summary["overall"]
        row = next(line for line in table if f"| `{summary['baseline']}` |" in line)
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[2] == f"`{JUDGE}`" and cells[3] == "all" and cells[4] == "30"
        assert cells[5] == f"{overall['candidate_score']:.2f}" and cells[6] == f"{overall['baseline_score']:.2f}"
        assert cells[7] == f"{overall['gap']:+.2f}"
        assert cells[8] == f"{overall['wins']} / {overall['ties']} / {overall['losses']}"
        assert cells[9] == f"{100 * overall['consistency']:.0f}%" and cells[10] == summary["date"]
    # best gap first
    gaps = [r["gap"] for r in leaderboard_rows(run)]
    assert gaps == sorted(gaps, reverse=True)

    # the card's YAML and the data still load, with the split the evaluation used
    test = datasets.load_dataset(str(published.absolute()), "all", split="test")
    assert test.num_rows == 30
    assert sorted(test["id"]) == load_test_set(str(run)).frame.get_column("id").to_list()


def test_eval_reads_a_published_folder_and_a_card_without_evaluations_has_no_leaderboard(tmp_path, server):
    offline_datasets(tmp_path / "hf-cache")
    run = make_run(tmp_path / "run")
    published = tmp_path / "published"
    publish_run(run, published, quiet=True)
    assert "leaderboard" not in (published / "README.md").read_text().lower()

    from_folder = load_test_set(str(published), "natural-science")
    from_run = load_test_set(str(run), "natural-science")
    assert from_folder.kind == "folder" and from_run.kind == "run"
    assert from_folder.frame.equals(from_run.frame.with_columns(from_folder.frame.get_column("answer_model")))
    assert from_folder.names.title("natural-science") == "Natural Science"

    out = tmp_path / "evals"
    _eval(published, server, "--reference", "--config", "natural-science", "--out", str(out))
    summary = json.loads(next((out / "eval").glob("*/summary.json")).read_text())
    assert summary["dataset_kind"] == "folder" and summary["judged"] == 18
    assert server.stats.by_model == {CANDIDATE: 18, JUDGE: 36}


def test_a_corrupt_summary_does_not_stop_a_publish(tmp_path):
    run = make_run(tmp_path / "run")
    (run / "eval" / "broken").mkdir(parents=True)
    (run / "eval" / "broken" / "summary.json").write_text("{not json")
    assert leaderboard_rows(run) == []
    publish_run(run, tmp_path / "published", quiet=True)
    assert (tmp_path / "published" / "README.md").is_file()


def test_eval_reads_a_hub_repo_at_a_revision(fake_hub, tmp_path):
    run = make_run(tmp_path / "run")
    publish_run(run, "hf://org/glan-eval", tag="v1.0", quiet=True)
    from_hub = load_test_set("org/glan-eval", "physics", revision="v1.0")
    from_run = load_test_set(str(run), "physics")
    assert from_hub.kind == "hub" and from_hub.source == "org/glan-eval"
    assert from_hub.frame.get_column("id").to_list() == from_run.frame.get_column("id").to_list()
    assert from_hub.frame.get_column("question").to_list() == from_run.frame.get_column("question").to_list()
    assert from_hub.names.title("natural-science") == "Natural Science"  # from the repo's taxonomy.yaml (not the slug)
    assert fake_hub.unhandled == [] and fake_hub.blocked_connections == []
