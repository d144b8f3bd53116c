"""The LLM judge of the quality gate (``step_options['judgements'] = {'model': M}``, ``--judge-model``)
against the loopback server: a JSON-schema verdict per record, cached, costed and planned like every
other call, and nothing at all without a judge model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from glan_dataset.llm import PriceTable
from glan_dataset.pipeline import discipline_contexts, generate
from glan_dataset.plan import plan_generation
from glan_dataset.prompts import PromptLibrary
from glan_dataset.quality import RUBRIC
from glan_dataset.settings import RunManifest
from glan_dataset.stages import STEPS
from glan_dataset.taxonomy import load_taxonomy
from glan_dataset.testing.openai_server import FakeOpenAIServer
from tests.helpers import TINY_TAXONOMY, engine_config, tiny_settings

JUDGE = "gpt-4o"  # a model the loopback server lists (the endpoint check runs first)


def planted_score(question: str) -> int:
    return len(question) % 10 + 1


def judge_replies(body: dict[str, Any]) -> str | None:
    """The judge's reply: a score derived from the question, so the test knows which score each record gets."""
    if body["model"] != JUDGE:
        return None
    prompt = body["messages"][-1]["content"]
    question = prompt.split("Question:\n", 1)[1].split("\n\nAnswer:\n", 1)[0]
    score = planted_score(question)
    return json.dumps({"score": score, "rationale": f"The derivation is sound; scored {score}."})


def test_the_judge_scores_every_record_once(tmp_path: Path) -> None:
    run = tmp_path / "run"
    settings = tiny_settings(config="physics", step_options={"judgements": {"model": JUDGE}})
    with FakeOpenAIServer(responder=judge_replies) as server:
        generate(run, settings, engine_config(server), taxonomy_path=TINY_TAXONOMY, quiet=True)
        records = pl.read_parquet(run / "records" / "physics.parquet")
        assert server.stats.by_model[JUDGE] == records.height
        server.reset_stats()
        generate(run, settings, engine_config(server), taxonomy_path=TINY_TAXONOMY, quiet=True)
        assert server.stats.chat_calls == 0  # fresh, and replayed from the cache if not

    judgements = pl.read_parquet(run / "judgements" / "physics.parquet")
    assert judgements.columns == ["id", "score", "rationale", "judge_model"]
    assert judgements["id"].to_list() == records["id"].to_list()  # records unchanged, one verdict each
    assert judgements["score"].to_list() == [planted_score(q) for q in records["question"]]
    assert judgements["judge_model"].unique().to_list() == [JUDGE]
    assert all(r.startswith("The derivation is sound") for r in judgements["rationale"])
    manifest = RunManifest.model_validate_json((run / "run.json").read_text())
    assert manifest.records_stage == "records" and manifest.counts["physics"]["judgements"] == records.height
    costed = [row for row in manifest.usage["cumulative"] if row["stage"] == "judge"]
    assert costed and costed[0]["model"] == JUDGE


def test_the_judge_request_carries_the_rubric_level_and_a_json_schema(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    def spy(body: dict[str, Any]) -> str | None:
        if body["model"] == JUDGE:
            seen.append(body)
        return judge_replies(body)

    settings = tiny_settings(
        config="physics", max_subjects=1, questions_per_subject=1, step_options={"judgements": {"model": JUDGE}}
    )
    with FakeOpenAIServer(responder=spy) as server:
        generate(tmp_path / "run", settings, engine_config(server), taxonomy_path=TINY_TAXONOMY, quiet=True)
    record = pl.read_parquet(tmp_path / "run" / "records" / "physics.parquet").row(0, named=True)
    (body,) = seen
    prompt = body["messages"][-1]["content"]
    assert record["question"] in prompt and record["answer"] in prompt and record["level"] in prompt
    assert all(name in prompt and description in prompt for name, description in RUBRIC)
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["score"]["minimum"] == 1 and schema["properties"]["score"]["maximum"] == 10
    assert body["temperature"] == 0.0


def test_no_judge_model_no_judge(tmp_path: Path, openai_server: FakeOpenAIServer) -> None:
    generate(
        tmp_path / "run",
        tiny_settings(config="physics"),
        engine_config(openai_server),
        taxonomy_path=TINY_TAXONOMY,
        quiet=True,
    )
    assert not (tmp_path / "run" / "judgements").exists()
    assert "judge" not in {
        row["stage"] for row in json.loads((tmp_path / "run" / "run.json").read_text())["usage"]["cumulative"]
    }


def test_plan_counts_the_judge() -> None:
    contexts = discipline_contexts(load_taxonomy(TINY_TAXONOMY), "physics")
    settings = tiny_settings(config="physics", step_options={"judgements": {"model": JUDGE}})
    plan = plan_generation(settings, contexts, PromptLibrary(), PriceTable.parse([f"{JUDGE}=1/2"]), steps=STEPS)
    judge = plan.stages[-1]
    assert (judge.stage, judge.model, judge.calls) == ("judge", JUDGE, plan.records)
    assert judge.cost is not None and judge.cost > 0


def test_cli_judge_model_flag_in_plan() -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    flags = ["--config", "physics", "--taxonomy", str(TINY_TAXONOMY), "--judge-model", JUDGE, "--price", f"{JUDGE}=1/2"]
    result = subprocess.run(
        [sys.executable, "-m", "glan_dataset", "plan", *flags], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.strip().startswith("judge"))
    assert JUDGE in row and "$" in row


def test_batch_mode_judges_like_online(tmp_path: Path) -> None:
    settings = tiny_settings(config="physics", max_subjects=1, step_options={"judgements": {"model": JUDGE}})
    with FakeOpenAIServer(responder=judge_replies, batch_delay=0.05) as server:
        generate(tmp_path / "online", settings, engine_config(server), taxonomy_path=TINY_TAXONOMY, quiet=True)
        server.reset_stats()
        batch = engine_config(server, mode="batch", batch_poll_interval=0.05)
        generate(tmp_path / "batch", settings, batch, taxonomy_path=TINY_TAXONOMY, quiet=True)
        assert server.stats.chat_calls == 0 and server.stats.batch_requests > 0
    online = pl.read_parquet(tmp_path / "online" / "judgements" / "physics.parquet")
    assert pl.read_parquet(tmp_path / "batch" / "judgements" / "physics.parquet").equals(online)
    assert online.height == pl.read_parquet(tmp_path / "online" / "records" / "physics.parquet").height
