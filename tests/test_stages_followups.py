"""Multi-turn conversations (``step_options['conversations'] = {'turns': N}``, ``--turns N``) against
the loopback server: the whole conversation in ``messages``, every turn's calls counted, planned and
cached, and one turn leaves the records exactly as they were."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from glan_dataset.errors import UsageError
from glan_dataset.llm import PriceTable
from glan_dataset.pipeline import discipline_contexts, generate
from glan_dataset.plan import plan_generation
from glan_dataset.prompts import PromptLibrary
from glan_dataset.rundir import RunDir
from glan_dataset.settings import RunManifest
from glan_dataset.stages import STEPS, check_step_options, prompt_names
from glan_dataset.taxonomy import load_taxonomy
from glan_dataset.testing.openai_server import FakeOpenAIServer
from tests.helpers import TINY_TAXONOMY, engine_config, tiny_settings


def turns(n: int, **overrides: object) -> dict[str, object]:
    return {"config": "physics", "step_options": {"conversations": {"turns": n}}, **overrides}


def test_three_turns_give_six_message_conversations(tmp_path: Path, openai_server: FakeOpenAIServer) -> None:
    single, multi = tmp_path / "single", tmp_path / "multi"
    generate(
        single, tiny_settings(config="physics"), engine_config(openai_server), taxonomy_path=TINY_TAXONOMY, quiet=True
    )
    single_calls = openai_server.stats.chat_calls
    openai_server.reset_stats()
    settings = tiny_settings(**turns(3))
    generate(multi, settings, engine_config(openai_server), taxonomy_path=TINY_TAXONOMY, quiet=True)

    records = pl.read_parquet(single / "records" / "physics.parquet")
    conversations = pl.read_parquet(multi / "conversations" / "physics.parquet")
    assert pl.read_parquet(multi / "records" / "physics.parquet").equals(records)  # turn 1 is the same pair
    assert conversations.schema == records.schema and conversations["id"].to_list() == records["id"].to_list()
    # 2 extra turns x (student question + teacher answer) per record, nothing else
    assert openai_server.stats.chat_calls == single_calls + 4 * records.height
    for record, conversation in zip(records.iter_rows(named=True), conversations.iter_rows(named=True), strict=True):
        messages = conversation["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant"] * 3
        assert messages[:2] == record["messages"]
        assert (conversation["question"], conversation["answer"]) == (record["question"], record["answer"])
        assert len({m["content"] for m in messages[::2]}) == 3  # each turn asks something new
        assert conversation["prompt_version"] != record["prompt_version"]  # the follow-up template is in the chain

    manifest = RunManifest.model_validate_json((multi / "run.json").read_text())
    assert (
        manifest.records_stage == "conversations"
        and RunDir(multi).records_file("physics").parent.name == "conversations"
    )
    assert manifest.counts["physics"]["conversations"] == records.height
    assert {row["stage"] for row in manifest.usage["cumulative"]} >= {
        "followup_question_2", "followup_answer_2", "followup_question_3", "followup_answer_3",
    }  # fmt: skip

    # a rerun replays nothing; a fourth turn pays only for turn 4
    openai_server.reset_stats()
    generate(multi, settings, engine_config(openai_server), taxonomy_path=TINY_TAXONOMY, quiet=True)
    assert openai_server.stats.chat_calls == 0
    generate(multi, tiny_settings(**turns(4)), engine_config(openai_server), taxonomy_path=TINY_TAXONOMY, quiet=True)
    assert openai_server.stats.chat_calls == 2 * records.height
    longer = pl.read_parquet(multi / "conversations" / "physics.parquet")
    assert [len(m) for m in longer["messages"].to_list()] == [8] * records.height
    assert [m[:6] for m in longer["messages"].to_list()] == conversations["messages"].to_list()


def test_the_teacher_sees_the_whole_conversation(tmp_path: Path) -> None:
    bodies: list[list[dict[str, str]]] = []

    def spy(body: dict[str, object]) -> None:
        messages = body["messages"]
        assert isinstance(messages, list)
        bodies.append(messages)

    with FakeOpenAIServer(responder=spy) as server:
        settings = tiny_settings(**turns(2), questions_per_subject=1, max_subjects=1)
        generate(tmp_path / "run", settings, engine_config(server), taxonomy_path=TINY_TAXONOMY, quiet=True)
    conversation = pl.read_parquet(tmp_path / "run" / "conversations" / "physics.parquet")["messages"][0].to_list()
    assert [b for b in bodies if b == conversation[:3]]  # the follow-up answer's request is the conversation so far
    student = [b for b in bodies if "follow-up question" in b[-1]["content"]]
    assert len(student) == 1 and conversation[0]["content"] in student[0][-1]["content"]
    assert conversation[1]["content"] in student[0][-1]["content"]


def test_one_turn_makes_no_conversations_and_keeps_the_records(tmp_path: Path, openai_server: FakeOpenAIServer) -> None:
    settings = tiny_settings(**turns(1))
    generate(tmp_path / "run", settings, engine_config(openai_server), taxonomy_path=TINY_TAXONOMY, quiet=True)
    assert not (tmp_path / "run" / "conversations").exists()
    assert RunManifest.model_validate_json((tmp_path / "run" / "run.json").read_text()).records_stage == "records"
    assert "followup_question" not in prompt_names(settings)


def test_plan_counts_every_turn() -> None:
    contexts = discipline_contexts(load_taxonomy(TINY_TAXONOMY), "physics")
    one = plan_generation(tiny_settings(config="physics"), contexts, PromptLibrary(), PriceTable(), steps=STEPS)
    three = plan_generation(tiny_settings(**turns(3)), contexts, PromptLibrary(), PriceTable(), steps=STEPS)
    extra = three.stages[len(one.stages) :]
    assert [s.stage for s in extra] == [
        "followup_question_2",
        "followup_answer_2",
        "followup_question_3",
        "followup_answer_3",
    ]
    assert all(s.calls == one.records for s in extra) and three.records == one.records
    assert [s.model for s in extra] == ["gpt-4.1", "gpt-4.1-mini"] * 2
    # later turns carry a longer history
    assert extra[2].prompt_tokens > extra[0].prompt_tokens and extra[3].prompt_tokens > extra[1].prompt_tokens


def is_turn_2(messages: list[dict[str, str]]) -> bool:
    """A turn-2 call: the student question after one pair, or the teacher answer to it."""
    roles = [m["role"] for m in messages if m["role"] != "system"]
    last = messages[-1]["content"]
    return roles == ["user", "assistant", "user"] or ("follow-up question" in last and last.count("Teacher: ") == 1)


def test_kill_9_in_the_middle_of_turn_2_repays_nothing(tmp_path: Path) -> None:
    flags = ["--config", "physics", "--taxonomy", str(TINY_TAXONOMY), "--subject-samples", "2", "--max-subjects", "3",
             "--questions-per-subject", "4", "--turns", "3", "--quiet"]  # fmt: skip
    settings = tiny_settings(**turns(3))
    with FakeOpenAIServer() as server:
        generate(tmp_path / "reference", settings, engine_config(server), taxonomy_path=TINY_TAXONOMY, quiet=True)
        uninterrupted = server.stats.chat_calls
    turn_2_total = 2 * pl.read_parquet(tmp_path / "reference" / "records" / "physics.parquet").height

    turn_2: list[int] = []
    lock = threading.Lock()

    def count(body: dict[str, Any]) -> None:
        if is_turn_2(body["messages"]):
            with lock:
                turn_2.append(1)

    run = tmp_path / "run"
    with FakeOpenAIServer(latency=0.05, responder=count) as server:
        command = [sys.executable, "-m", "glan_dataset", "generate", "--out", str(run), *flags,
                   "--concurrency", "2", "--base-url", server.base_url]  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while len(turn_2) < turn_2_total // 3 and time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        sent_before = server.stats.chat_calls
        persisted = cache_rows(run)
        assert turn_2_total // 3 <= len(turn_2) < turn_2_total, "killed in the middle of turn 2"
        assert not (run / "conversations").exists()

        server.reset_stats()
        generate(run, settings, engine_config(server), taxonomy_path=TINY_TAXONOMY, quiet=True)
        # every call whose reply was stored is replayed; only the rest is sent: the <= 2 in flight at the kill,
        # plus the replies of the last commit interval (the cache commits in groups: 0.1 s here, so at most
        # 2 slots x 0.1 s / 0.05 s latency = 4 calls; README "durability")
        assert server.stats.chat_calls == uninterrupted - persisted
        assert sent_before + server.stats.chat_calls - uninterrupted <= 2 + 4
    reference = pl.read_parquet(tmp_path / "reference" / "conversations" / "physics.parquet")
    assert pl.read_parquet(run / "conversations" / "physics.parquet").equals(reference)


def cache_rows(run: Path) -> int:
    with sqlite3.connect(run / "llm-cache.sqlite") as db:
        return int(db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])


def test_cli_turns_flag_and_plan(tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    flags = ["--config", "physics", "--taxonomy", str(TINY_TAXONOMY), "--subject-samples", "2", "--max-subjects", "3",
             "--questions-per-subject", "4"]  # fmt: skip
    plan = subprocess.run(
        [sys.executable, "-m", "glan_dataset", "plan", *flags, "--turns", "3"], capture_output=True, text=True, env=base
    )
    assert plan.returncode == 0, plan.stderr
    assert "followup_answer_3" in plan.stdout and "conversations of 3 turns" in plan.stdout
    with pytest.raises(UsageError, match="invalid step option conversations.turns: Input should be greater"):
        check_step_options(tiny_settings(**turns(0)))
    with FakeOpenAIServer() as server:
        made = subprocess.run(
            [sys.executable, "-m", "glan_dataset", "generate", "--out", str(tmp_path / "run"), *flags, "--turns", "2",
             "--base-url", server.base_url, "--quiet"],
            capture_output=True, text=True, env=base,
        )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "run/conversations" in made.stderr.replace(os.sep, "/")
    conversations = pl.read_parquet(tmp_path / "run" / "conversations" / "physics.parquet")
    assert {len(m) for m in conversations["messages"].to_list()} == {4}


def test_conversations_are_decontaminated_and_published(tmp_path: Path, openai_server: FakeOpenAIServer) -> None:
    from glan_dataset import flows

    run = tmp_path / "run"
    generate(run, tiny_settings(**turns(3)), engine_config(openai_server), taxonomy_path=TINY_TAXONOMY, quiet=True)
    benchmark = tmp_path / "benchmark.jsonl"
    benchmark.write_text('{"question": "What is the capital of the country with the longest coastline?"}\n')
    flows.decontaminate(run, {"benchmarks": [], "benchmark_files": [benchmark]})
    flows.publish(run, tmp_path / "out", quiet=True)
    rows = pl.concat([pl.read_parquet(p) for p in sorted((tmp_path / "out" / "data").glob("*/*.parquet"))])
    assert rows.height == pl.read_parquet(run / "conversations" / "physics.parquet").height
    assert {len(m) for m in rows["messages"].to_list()} == {6}
    assert "| Question-answer turns per conversation | 3 |" in (tmp_path / "out" / "README.md").read_text()
