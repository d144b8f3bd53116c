"""Token budgets per call (defaults that fit each step, --max-tokens overrides) and the model check
that runs before the first paid call, through the real engine against the loopback server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from glan_dataset.errors import ConfigurationError, UsageError
from glan_dataset.pipeline import generate
from glan_dataset.testing.openai_server import FakeOpenAIServer
from tests.helpers import TINY_TAXONOMY, engine_config, tiny_settings


def test_every_call_asks_for_its_own_budget(tmp_path: Path) -> None:
    bodies: list[dict[str, Any]] = []
    with FakeOpenAIServer(responder=lambda body: bodies.append(body)) as server:
        generate(tmp_path / "run", tiny_settings(), engine_config(server), taxonomy_path=TINY_TAXONOMY, quiet=True)
    budgets = {body.get("max_tokens") for body in bodies}
    # subjects 2048, subjects_to_json 4096, syllabus 4096, syllabus_to_json 8192, question 512, answer 2048
    assert budgets == {512, 2048, 4096, 8192}
    structured = {body["max_tokens"] for body in bodies if "response_format" in body}
    assert structured == {4096, 8192}


def test_max_tokens_overrides_one_call_or_all(tmp_path: Path) -> None:
    bodies: list[dict[str, Any]] = []
    with FakeOpenAIServer(responder=lambda body: bodies.append(body)) as server:
        generate(
            tmp_path / "run",
            tiny_settings(max_tokens={"*": 3000, "answer": 700}),
            engine_config(server),
            taxonomy_path=TINY_TAXONOMY,
            quiet=True,
        )
    answers = [b for b in bodies if b["temperature"] == 0.7]
    others = [b for b in bodies if b["temperature"] != 0.7]
    assert answers and {b["max_tokens"] for b in answers} == {700}
    assert others and {b["max_tokens"] for b in others} == {3000}


def test_a_budget_for_no_call_is_refused_before_any_call(tmp_path: Path, openai_server: FakeOpenAIServer) -> None:
    with pytest.raises(UsageError, match="anwser"):
        generate(
            tmp_path / "run",
            tiny_settings(max_tokens={"anwser": 100}),
            engine_config(openai_server),
            taxonomy_path=TINY_TAXONOMY,
            quiet=True,
        )
    assert openai_server.stats.chat_calls == 0


def test_a_model_the_endpoint_does_not_serve_fails_before_any_paid_call(tmp_path: Path) -> None:
    with FakeOpenAIServer(models=("gpt-4.1",)) as server:  # the answer model is missing
        with pytest.raises(ConfigurationError, match="gpt-4.1-mini"):
            generate(tmp_path / "run", tiny_settings(), engine_config(server), taxonomy_path=TINY_TAXONOMY, quiet=True)
        assert server.stats.chat_calls == 0  # not one subject list was paid for


def test_a_fully_cached_rerun_needs_no_endpoint_check(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with FakeOpenAIServer() as server:
        generate(run, tiny_settings(), engine_config(server), taxonomy_path=TINY_TAXONOMY, quiet=True)
    # the same run against an endpoint that no longer lists the models: nothing to send, nothing checked
    with FakeOpenAIServer(models=("another-model",)) as server:
        generate(run, tiny_settings(), engine_config(server), taxonomy_path=TINY_TAXONOMY, quiet=True)
        assert server.stats.chat_calls == 0



def test_a_resume_needs_no_base_url_and_run_json_keeps_no_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from glan_dataset.cli import main

    run = tmp_path / "run"
    secret = "sk-never-written-down-4242"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    args = ["generate", "--config", "physics", "--taxonomy", str(TINY_TAXONOMY), "--out", str(run), "--quiet",
            "--subject-samples", "1", "--max-subjects", "2", "--questions-per-subject", "2"]  # fmt: skip
    with FakeOpenAIServer() as server:
        # the second run names no endpoint and asks for one more question per subject: those calls must
        # reach the remembered endpoint (anything else is refused by the tests' network guard)
        for extra in (["--base-url", server.base_url], ["--questions-per-subject", "3"]):
            monkeypatch.setattr("sys.argv", ["glan", *args, *extra])
            with pytest.raises(SystemExit) as exit_:
                main()
            assert exit_.value.code == 0, capsys.readouterr().err
            if "--base-url" in extra:
                calls = server.stats.chat_calls
        assert server.stats.chat_calls > calls  # one question and one answer more per subject, sent there
    text = (run / "run.json").read_text()
    assert server.base_url in text and secret not in text


def test_public_url_drops_what_can_hold_credentials() -> None:
    from glan_dataset.llm import public_url

    assert public_url("https://me:pw@host.example:8443/openai/v1/?api-key=K#f") == "https://host.example:8443/openai/v1/"
    assert public_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"
