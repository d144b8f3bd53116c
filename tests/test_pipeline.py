"""The GLAN pipeline end to end against the loopback OpenAI-compatible server (real sockets, real client)."""

from __future__ import annotations

import gc
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from glan_dataset.pipeline import generate
from glan_dataset.records import RECORD_COLUMNS, Record
from glan_dataset.testing.openai_server import FakeOpenAIServer, FaultPlan
from tests.helpers import TINY_TAXONOMY, engine_config, tiny_settings

# calls of a tiny run per discipline: 2 subject lists + 2 conversions + 3 x (syllabus + conversion) + 12 x (question + answer)
CALLS_PER_DISCIPLINE = 2 + 2 + 3 * 2 + 12 * 2


def records_of(run: Path) -> pl.DataFrame:
    files = sorted((run / "records").glob("*.parquet"))
    return pl.concat([pl.read_parquet(f) for f in files]) if files else pl.DataFrame()


def run_tiny(run: Path, server: FakeOpenAIServer, **settings: object) -> None:
    generate(run, tiny_settings(**settings), engine_config(server), taxonomy_path=TINY_TAXONOMY, quiet=True)


def test_two_disciplines_with_full_provenance(tmp_path: Path, openai_server: FakeOpenAIServer) -> None:
    run = tmp_path / "run"
    run_tiny(run, openai_server)

    assert sorted(p.name for p in (run / "records").iterdir()) == ["chemistry.parquet", "physics.parquet"]
    assert openai_server.stats.chat_calls == 2 * CALLS_PER_DISCIPLINE
    frame = records_of(run)
    assert frame.columns == list(RECORD_COLUMNS)
    assert frame.height == 24 and frame["id"].n_unique() == 24
    manifest = json.loads((run / "run.json").read_text())
    for row in frame.iter_rows(named=True):
        record = Record.model_validate(row)
        for name in ("id", "field", "subfield", "discipline", "subject", "level", "question", "answer"):
            assert getattr(record, name).strip(), name
        assert record.field == "natural-science" and record.subfield == "physical-sciences"
        assert record.subtopics and record.key_concepts and record.sessions
        assert [m.role for m in record.messages] == ["user", "assistant"]
        assert record.messages[0].content == record.question and record.messages[1].content == record.answer
        assert record.question_model == "gpt-4.1" and record.answer_model == "gpt-4.1-mini"
        assert record.prompt_version == manifest["prompt_version"]
        if record.strategy == "single_session":
            assert len(record.sessions) == 1 and 1 <= len(record.key_concepts) <= 5
        else:
            assert len(record.sessions) == 2 and 2 <= len(record.key_concepts) <= 5
    assert set(frame["strategy"]) == {"single_session", "multi_session"}
    assert manifest["counts"]["physics"]["records"] == 12
    assert manifest["settings"]["subject_samples"] == 2
    assert set(manifest["prompt_versions"]) >= {"subjects", "syllabus", "question", "answer"}


def test_same_seed_same_samples_other_seed_other_samples(tmp_path: Path, openai_server: FakeOpenAIServer) -> None:
    run_tiny(tmp_path / "a", openai_server, config="physics")
    run_tiny(tmp_path / "b", openai_server, config="physics")
    run_tiny(tmp_path / "c", openai_server, config="physics", seed=7)

    def samples(run: Path) -> list[tuple[str, list[str], list[str]]]:
        frame = records_of(run).sort("id")
        return list(zip(frame["id"], frame["sessions"].to_list(), frame["key_concepts"].to_list(), strict=True))

    assert samples(tmp_path / "a") == samples(tmp_path / "b")
    assert set(records_of(tmp_path / "a")["id"]) != set(records_of(tmp_path / "c")["id"])


def test_rerun_reuses_everything_and_sends_no_call(tmp_path: Path, openai_server: FakeOpenAIServer) -> None:
    run = tmp_path / "run"
    threshold, frozen = gc.get_threshold(), gc.get_freeze_count()
    run_tiny(run, openai_server, config="physics")
    # the run tunes the garbage collector for itself and gives the process its settings back
    assert gc.get_threshold() == threshold and gc.get_freeze_count() == frozen
    before = records_of(run)
    openai_server.reset_stats()
    run_tiny(run, openai_server, config="physics")
    assert openai_server.stats.chat_calls == 0
    assert records_of(run).equals(before)


def test_bigger_run_reuses_what_still_applies(tmp_path: Path, openai_server: FakeOpenAIServer) -> None:
    run = tmp_path / "run"
    run_tiny(run, openai_server, config="physics")
    small = records_of(run)
    openai_server.reset_stats()
    run_tiny(run, openai_server, config="physics", questions_per_subject=6)
    # only the 2 new questions (and their answers) of each of the 3 subjects are new calls
    assert openai_server.stats.chat_calls == 3 * 2 * 2
    big = records_of(run)
    assert big.height == 18
    assert set(small["id"]) <= set(big["id"])


def test_failed_units_are_retried_by_the_next_run_and_never_empty(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    with FakeOpenAIServer() as server:
        run_tiny(reference, server, config="physics")
    run = tmp_path / "run"
    # one call at a time, so the seeded faults hit the same calls every time
    with FakeOpenAIServer(faults=FaultPlan(rate_500=0.15, seed=3)) as server:
        generate(
            run,
            tiny_settings(config="physics"),
            engine_config(server, max_attempts=1, concurrency=1),
            taxonomy_path=TINY_TAXONOMY,
            quiet=True,
        )
        failures = [json.loads(line) for line in (run / "failures.jsonl").read_text().splitlines()]
        assert failures and all(f["reason"] for f in failures)
        partial = records_of(run)
        assert 0 < partial.height < 12
        assert all(q.strip() and a.strip() for q, a in zip(partial["question"], partial["answer"], strict=True))
        server.set_faults(None)
        server.reset_stats()
        generate(run, tiny_settings(config="physics"), engine_config(server), taxonomy_path=TINY_TAXONOMY, quiet=True)
        retried = server.stats.chat_calls
    assert 0 < retried < CALLS_PER_DISCIPLINE
    # nothing is outstanding any more; the first run's failures are kept beside it
    assert not (run / "failures.jsonl").exists()
    previous = [json.loads(line) for line in (run / "failures.previous.jsonl").read_text().splitlines()]
    assert previous == failures
    assert sorted(records_of(run)["id"]) == sorted(records_of(reference)["id"])


def _cache_rows(run: Path) -> int:
    try:
        with sqlite3.connect(run / "llm-cache.sqlite") as db:
            return int(db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
    except sqlite3.OperationalError:  # the engine has not created its table yet
        return 0


def test_kill_9_midway_then_rerun_sends_exactly_the_missing_calls(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    with FakeOpenAIServer() as server:
        run_tiny(reference, server)
        total_calls = server.stats.chat_calls

    run = tmp_path / "run"
    with FakeOpenAIServer(latency=0.05) as server:
        command = [
            sys.executable, "-m", "glan_dataset", "generate", "--out", str(run), "--config", "physical-sciences",
            "--taxonomy", str(TINY_TAXONOMY), "--subject-samples", "2", "--max-subjects", "3",
            "--questions-per-subject", "4", "--concurrency", "2", "--base-url", server.base_url, "--quiet",
        ]  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (run / "llm-cache.sqlite").exists() and _cache_rows(run) >= total_calls // 2:
                break
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        persisted = _cache_rows(run)
        assert 0 < persisted < total_calls

        server.reset_stats()
        generate(run, tiny_settings(), engine_config(server), taxonomy_path=TINY_TAXONOMY, quiet=True)
        assert server.stats.chat_calls == total_calls - persisted
    assert sorted(records_of(run)["id"]) == sorted(records_of(reference)["id"])


def test_added_discipline_is_the_only_one_generated_and_removed_one_is_left_out(
    tmp_path: Path, openai_server: FakeOpenAIServer
) -> None:
    run = tmp_path / "run"
    run_tiny(run, openai_server, config="all")
    assert {p.stem for p in (run / "records").glob("*.parquet")} == {"physics", "chemistry", "biology", "logic"}

    grown = tmp_path / "grown.yaml"
    text = TINY_TAXONOMY.read_text()
    text = text.replace(
        "          - {name: Logic, slug: logic, description: 'The study of valid reasoning.'}\n",
        "          - {name: Logic, slug: logic, description: 'The study of valid reasoning.'}\n"
        "          - {name: Statistics, slug: statistics, description: 'Collecting and interpreting data.'}\n",
    )
    text = text.replace(
        "          - {name: Biology, slug: biology, description: 'Living organisms and their processes.'}\n", ""
    )
    text = text.replace(
        "      - name: Life sciences\n        slug: life-sciences\n        description: Living organisms.\n        disciplines:\n",
        "",
    )
    grown.write_text(text)
    (run / "clean").mkdir()  # as if the run had been decontaminated before the taxonomy changed
    for path in (run / "records").glob("*.parquet"):
        (run / "clean" / path.name).write_bytes(path.read_bytes())
    openai_server.reset_stats()
    generate(run, tiny_settings(config="all"), engine_config(openai_server), taxonomy_path=grown, quiet=True)

    assert openai_server.stats.chat_calls == CALLS_PER_DISCIPLINE  # statistics only
    assert {p.stem for p in (run / "records").glob("*.parquet")} == {"physics", "chemistry", "logic", "statistics"}
    assert (run / "retired" / "records" / "biology.parquet").exists()
    assert (run / "retired" / "clean" / "biology.parquet").exists()  # so it is never published
    assert not (run / "clean" / "biology.parquet").exists()
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["removed_disciplines"] == ["biology"]
    assert "biology" not in manifest["disciplines"]


@pytest.mark.parametrize("config", ["physics", "physical-sciences", "natural-science", "all"])
def test_config_selects_its_disciplines(tmp_path: Path, openai_server: FakeOpenAIServer, config: str) -> None:
    expected = {
        "physics": {"physics"},
        "physical-sciences": {"physics", "chemistry"},
        "natural-science": {"physics", "chemistry", "biology"},
        "all": {"physics", "chemistry", "biology", "logic"},
    }[config]
    run = tmp_path / "run"
    generate(
        run,
        tiny_settings(config=config, subject_samples=1, max_subjects=1, questions_per_subject=1),
        engine_config(openai_server),
        taxonomy_path=TINY_TAXONOMY,
        quiet=True,
    )
    assert {p.stem for p in (run / "records").glob("*.parquet")} == expected


def test_new_seed_resamples_questions_but_reuses_subjects_and_syllabi(
    tmp_path: Path, openai_server: FakeOpenAIServer
) -> None:
    run = tmp_path / "run"
    run_tiny(run, openai_server, config="physics")
    openai_server.reset_stats()
    run_tiny(run, openai_server, config="physics", seed=11)
    # 3 subjects x 4 questions, each a question and an answer call; no subject or syllabus call
    assert openai_server.stats.chat_calls <= 3 * 4 * 2
    assert openai_server.stats.chat_calls > 0
    assert json.loads((run / "run.json").read_text())["settings"]["seed"] == 11


def test_batch_mode_gives_the_same_records_as_online(tmp_path: Path) -> None:
    online, batch = tmp_path / "online", tmp_path / "batch"
    with FakeOpenAIServer(batch_delay=0.05) as server:
        run_tiny(online, server, config="physics")
        server.reset_stats()
        generate(
            batch,
            tiny_settings(config="physics"),
            engine_config(server, mode="batch", batch_poll_interval=0.05),
            taxonomy_path=TINY_TAXONOMY,
            quiet=True,
        )
        assert server.stats.batch_requests == CALLS_PER_DISCIPLINE and server.stats.chat_calls == 0
    assert (
        records_of(batch)
        .sort("id")
        .select("id", "question", "answer")
        .equals(records_of(online).sort("id").select("id", "question", "answer"))
    )
