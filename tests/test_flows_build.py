"""`glan build`: a partial generation is not published unless asked, and a Hub target is checked
before the first paid call (token, write access, tag)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from glan_dataset import flows
from glan_dataset.cli import main
from glan_dataset.decontamination import DecontaminationSettings
from glan_dataset.errors import GlanError, IncompleteError
from glan_dataset.testing.openai_server import FakeOpenAIServer, FaultPlan
from tests.decontamination_support import benchmark_files
from tests.fakes.fake_hub import FakeHub
from tests.helpers import TINY_TAXONOMY, engine_config, tiny_settings


def build(
    run: Path, server: FakeOpenAIServer, target: str | Path, tmp_path: Path, config: str = "physics", **options: object
) -> object:
    decontamination = DecontaminationSettings(
        benchmarks=[], benchmark_files=benchmark_files(tmp_path / "benchmarks"), quiet=True
    )
    return flows.build(
        run,
        tiny_settings(config),
        engine_config(server, max_attempts=1),
        target,
        taxonomy_path=TINY_TAXONOMY,
        decontamination_settings=decontamination,
        quiet=True,
        test_per_discipline=1,
        **options,
    )


def test_a_partial_build_is_refused_with_exit_3_unless_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run, folder = tmp_path / "run", tmp_path / "published"
    with FakeOpenAIServer() as server:
        build(run, server, tmp_path / "physics-only", tmp_path)  # physics is complete
        server.set_faults(FaultPlan(rate_500=1.0))  # chemistry fails entirely
        with pytest.raises(IncompleteError, match="--allow-partial") as refused:
            build(run, server, folder, tmp_path, "physical-sciences")
        assert refused.value.exit_code == 3 and "chemistry" in str(refused.value)
        assert not folder.exists()
        args = [
            "glan", "build", "--out", str(run), "--config", "physical-sciences", "--taxonomy", str(TINY_TAXONOMY),
            "--to", str(folder), "--subject-samples", "2", "--max-subjects", "3", "--questions-per-subject", "4",
            "--max-attempts", "1", "--base-url", server.base_url, "--benchmarks", "offline", "--no-hub", "--quiet",
        ]  # fmt: skip
        monkeypatch.setattr("sys.argv", args)
        try:
            with pytest.raises(SystemExit) as exit_:
                main()
        finally:
            logging.getLogger("glan_dataset").handlers.clear()
        assert exit_.value.code == 3
        assert "--allow-partial" in capsys.readouterr().err and not folder.exists()
        build(run, server, folder, tmp_path, "physical-sciences", allow_partial=True)
    assert (folder / "README.md").is_file() and (folder / "data" / "physics").is_dir()


def test_a_build_that_generated_nothing_is_incomplete(tmp_path: Path) -> None:
    with FakeOpenAIServer(faults=FaultPlan(rate_500=1.0)) as server:
        with pytest.raises(IncompleteError, match="no records were generated") as refused:
            build(tmp_path / "run", server, tmp_path / "published", tmp_path)
    assert refused.value.exit_code == 3


@pytest.mark.parametrize("problem", ["no token", "foreign namespace", "tag taken"])
def test_the_hub_target_is_checked_before_the_first_llm_call(
    problem: str, tmp_path: Path, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import HfApi

    repo = "fake-user/glan"
    if problem == "no token":
        monkeypatch.delenv("HF_TOKEN")
    if problem == "foreign namespace":
        repo = "someone-else/glan"
    if problem == "tag taken":
        api = HfApi()
        api.create_repo(repo, repo_type="dataset")
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo, repo_type="dataset")
        api.create_tag(repo, tag="v1", repo_type="dataset")
        api.upload_file(path_or_fileobj=b"y", path_in_repo="y.txt", repo_id=repo, repo_type="dataset")
    with FakeOpenAIServer() as server:
        with pytest.raises(GlanError) as refused:
            build(tmp_path / "run", server, f"hf://{repo}", tmp_path, tag="v1")
        assert server.stats.chat_calls == 0  # nothing paid
    message = str(refused.value)
    assert "\n" not in message and fake_hub.token not in message
    expected = {"no token": "HF_TOKEN", "foreign namespace": "someone-else", "tag taken": "v1"}[problem]
    assert expected in message
