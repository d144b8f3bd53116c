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
