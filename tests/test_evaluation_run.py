"""``glan eval`` end to end against the loopback server, with planted verdicts: every aggregate, both
orders per pair, resumption, ``--reference``, ``--plan`` and the one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from glan_dataset.cli import _register, app
from glan_dataset.errors import GlanError
from glan_dataset.evaluation import leaderboard_rows
from glan_dataset.publishing.split import split_clean_dir
from glan_dataset.testing.openai_server import FakeOpenAIServer
from tests.evaluation_support import BASELINE, CANDIDATE, JUDGE, PlantedJudge, expected_stats
from tests.publishing_support import LAYOUT, make_run

_register()
SEED = 7  # tests.publishing_support.run_manifest


@pytest.fixture
def planted() -> PlantedJudge:
    return PlantedJudge()


@pytest.fixture
def server(planted: PlantedJudge):
    with FakeOpenAIServer(responder=planted) as srv:
        yield srv


def _eval(run: Path, server: FakeOpenAIServer, *extra: str) -> object:
    args = ["eval", str(run), "--model", CANDIDATE, "--judge-model", JUDGE, "--base-url", server.base_url, "-q"]
    result = CliRunner().invoke(app, [*args, *extra])
    return result


def _test_questions(run: Path) -> pl.DataFrame:
    """The test split exactly as `glan publish` makes it (publishing's own code, not the evaluator's)."""
    splits = split_clean_dir(run / "clean", seed=SEED)
    return pl.concat([s.test for s in splits.values()]).select("id", "field", "subfield", "discipline", "question")


def _check_row(row: dict, expected: dict) -> None:
    for key, value in expected.items():
        assert row[key] == pytest.approx(value), (row["level"], row["node"], key)


def test_every_aggregate_matches_the_planted_verdicts(tmp_path, server, planted):
    run = make_run(tmp_path / "run")
    result = _eval(run, server, "--baseline", BASELINE)
    assert result.exit_code == 0, result.output

    directory = run / "eval" / f"{CANDIDATE}-vs-{BASELINE}-by-{JUDGE}"
    results = pl.read_parquet(directory / "results.parquet")
    questions = _test_questions(run)
    assert questions.height == 30  # 6 of 12 records held out in each of 5 disciplines

    by_level = {level: {r["node"]: r for r in results.filter(pl.col("level") == level).to_dicts()}
                for level in ("discipline", "subfield", "field", "overall")}  # fmt: skip
    for level, column in (("discipline", "discipline"), ("subfield", "subfield"), ("field", "field")):
        groups = questions.group_by(column).agg(pl.col("question")).to_dicts()
        assert set(by_level[level]) == {g[column] for g in groups}
        for group in groups:
            _check_row(by_level[level][group[column]], expected_stats(group["question"]))
    _check_row(by_level["overall"]["overall"], expected_stats(questions.get_column("question").to_list()))
    assert set(by_level["field"]) == set(LAYOUT)
    assert by_level["field"]["natural-science"]["title"] == "Natural Science"

    # some questions are judged inconsistently, some consistently: the rate is really tested
    assert 0 < by_level["overall"]["overall"]["consistency"] < 1

    # both orders were sent for every pair, once each
    asked = set(questions.get_column("question").to_list())
    assert set(planted.judged) == {(q, order) for q in asked for order in ("ab", "ba")}
    assert all(count == 1 for count in planted.judged.values())
    assert server.stats.by_model == {CANDIDATE: 30, BASELINE: 30, JUDGE: 60}

    # per-question verdicts and the summary agree with the results
    verdicts = pl.read_parquet(directory / "verdicts.parquet")
    assert verdicts.height == 30 and set(verdicts.get_column("reason_ab")) == {"planted ab"}
    summary = json.loads((directory / "summary.json").read_text())
    assert summary["complete"] and summary["judged"] == summary["questions"] == 30
    assert (summary["model"], summary["baseline"], summary["judge_model"]) == (CANDIDATE, BASELINE, JUDGE)
    _check_row({"level": "overall", "node": "overall", **summary["overall"]},
               expected_stats(questions.get_column("question").to_list()))  # fmt: skip
    assert (directory / "gap_per_field.png").read_bytes().startswith(b"\x89PNG")
    assert "Natural Science" in result.output and "Overall" in result.output

    # a second run is answered from the eval's caches: nothing is paid twice, the files are unchanged
    before = {p.name: p.read_bytes() for p in directory.glob("*.*")}
    server.reset_stats()
    assert _eval(run, server, "--baseline", BASELINE).exit_code == 0
    assert server.stats.chat_calls == 0
    assert {p.name: p.read_bytes() for p in directory.glob("*.*")} == before


def test_reference_mode_judges_against_the_datasets_answers_for_one_config(tmp_path, server, planted):
    run = make_run(tmp_path / "run")
    result = _eval(run, server, "--reference", "--config", "physics", "--name", "Mine vs Ref")
    assert result.exit_code == 0, result.output
    summary = json.loads((run / "eval" / "mine-vs-ref" / "summary.json").read_text())
    assert summary["baseline"] == "reference" and summary["config"] == "physics"
    assert summary["judged"] == 6
    assert server.stats.by_model == {CANDIDATE: 6, JUDGE: 12}  # no baseline model is asked
    # the reference answer is what the judge saw opposite the candidate
    physics = _test_questions(run).filter(pl.col("discipline") == "physics")
    records = pl.read_parquet(run / "clean" / "physics.parquet")
    verdicts = pl.read_parquet(run / "eval" / "mine-vs-ref" / "verdicts.parquet")
    joined = verdicts.join(records.select("id", "answer"), on="id")
    assert joined.height == 6 and (joined.get_column("baseline_answer") == joined.get_column("answer")).all()
    assert set(verdicts.get_column("id")) == set(physics.get_column("id"))


def test_separate_endpoints_per_role_and_keys_never_written(tmp_path, planted, monkeypatch):
    monkeypatch.setenv("GLAN_TEST_JUDGE_KEY", "sk-judge-secret-0123456789")
    run = make_run(tmp_path / "run", disciplines=["physics"])
    with (
        FakeOpenAIServer(responder=planted) as answers,
        FakeOpenAIServer(responder=planted) as baseline,
        FakeOpenAIServer(responder=planted) as judge,
    ):
        result = CliRunner().invoke(
            app,
            ["eval", str(run), "--model", CANDIDATE, "--baseline", BASELINE, "--judge-model", JUDGE, "-q",
             "--base-url", answers.base_url, "--baseline-base-url", baseline.base_url,
             "--judge-base-url", judge.base_url, "--judge-api-key-env", "GLAN_TEST_JUDGE_KEY"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert answers.stats.by_model == {CANDIDATE: 6}
        assert baseline.stats.by_model == {BASELINE: 6}
        assert judge.stats.by_model == {JUDGE: 12}
    written = [p for p in (run / "eval").rglob("*") if p.is_file()]
    assert len(written) > 5 and not any(b"sk-judge-secret" in p.read_bytes() for p in written)
    assert "sk-judge-secret" not in result.output


def test_plan_counts_calls_and_prices_them_without_calling(tmp_path, server):
    run = make_run(tmp_path / "run")
    result = CliRunner().invoke(
        app,
        ["eval", str(run), "--model", CANDIDATE, "--baseline", BASELINE, "--judge-model", JUDGE, "--plan",
         "--price", f"{CANDIDATE}=1/2", "--price", f"{BASELINE}=1/2", "--price", f"{JUDGE}=10/30"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split() for line in result.output.splitlines() if line.strip()}
    assert lines["candidate"][3] == "30" and lines["baseline"][3] == "30" and lines["judge"][3] == "60"
    assert lines["total"][1] == "120" and lines["total"][-1].startswith("$")
    assert server.stats.chat_calls == 0
    assert not (run / "eval").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--baseline", BASELINE, "--reference"], "not both"),
        ([], "--baseline MODEL"),
        (["--reference", "--config", "no-such-discipline"], "no-such-discipline"),
        (["--reference", "--judge-api-key-env", "GLAN_TEST_UNSET_KEY"], "GLAN_TEST_UNSET_KEY is not set"),
        (["--reference", "--api-key-env", "GLAN_TEST_UNSET_KEY"], "--api-key-env GLAN_TEST_UNSET_KEY"),
    ],
)
def test_bad_input_is_a_usage_error_and_calls_nothing(tmp_path, server, args, message):
    run = make_run(tmp_path / "run", disciplines=["physics"])
    result = _eval(run, server, *args)
    assert isinstance(result.exception, GlanError), result.output
    assert message in str(result.exception)
    assert server.stats.chat_calls == 0


def test_the_command_prints_one_line_and_exits_2(tmp_path):
    run = make_run(tmp_path / "run", disciplines=["physics"])
    process = subprocess.run(
        [sys.executable, "-m", "glan_dataset", "eval", str(run), "--model", CANDIDATE, "--judge-model", JUDGE],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert process.returncode == 2
    assert process.stderr.strip().splitlines() == [
        "error: give --baseline MODEL (a model to compare with) or --reference (the dataset's own answers)"
    ]


def test_a_folder_that_is_no_dataset_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(
        app, ["eval", str(tmp_path / "empty"), "--model", "m", "--judge-model", "j", "--reference"]
    )
    assert result.exit_code != 0
    assert "neither a run directory" in str(result.exception)


def test_batch_mode_gives_the_same_results_through_the_batch_api(tmp_path, planted):
    from glan_dataset.evaluation import EvalSettings, RoleEndpoints, evaluate, load_test_set
    from glan_dataset.llm import EngineConfig

    run = make_run(tmp_path / "run", disciplines=["physics", "history"])
    settings = EvalSettings(model=CANDIDATE, baseline=BASELINE, judge_model=JUDGE)
    test = load_test_set(str(run))
    with FakeOpenAIServer(responder=planted, batch_delay=0.05) as srv:
        batch = EngineConfig(base_url=srv.base_url, quiet=True, mode="batch", batch_poll_interval=0.05)
        by_batch = evaluate(test, settings, RoleEndpoints(candidate=batch, judge=batch), tmp_path / "batch")
        assert srv.stats.chat_calls == 0 and srv.stats.batch_requests == 12 + 12 + 24
        online = EngineConfig(base_url=srv.base_url, quiet=True)
        by_chat = evaluate(test, settings, RoleEndpoints(candidate=online, judge=online), tmp_path / "online")
    assert by_batch.complete and by_batch.results.height and by_batch.results.equals(by_chat.results)


def test_unjudgeable_pairs_are_reported_and_retried_by_the_next_run(tmp_path, planted):
    run = make_run(tmp_path / "run", disciplines=["physics"])
    broken = {"on": True}

    def responder(body):
        reply = planted(body)
        if body["model"] == JUDGE and broken["on"] and "(physics 1)" in body["messages"][-1]["content"]:
            return "I refuse to give JSON"
        return reply

    with FakeOpenAIServer(responder=responder) as srv:
        result = _eval(run, srv, "--baseline", BASELINE, "--max-attempts", "1")
        assert result.exit_code == 0, result.output
        directory = run / "eval" / f"{CANDIDATE}-vs-{BASELINE}-by-{JUDGE}"
        summary = json.loads((directory / "summary.json").read_text())
        held_out = _test_questions(run).get_column("question").to_list()
        assert any("(physics 1)" in q for q in held_out)
        assert not summary["complete"] and summary["failures"]["judge"] == 2  # both orders of that pair
        assert summary["judged"] == summary["questions"] - 1
        assert [r["complete"] for r in leaderboard_rows(run)] == [False]

        broken["on"] = False
        srv.reset_stats()
        assert _eval(run, srv, "--baseline", BASELINE).exit_code == 0
        assert srv.stats.by_model == {JUDGE: 2}  # only the failed verdicts are asked again
        summary = json.loads((directory / "summary.json").read_text())
        assert summary["complete"] and summary["judged"] == summary["questions"]
