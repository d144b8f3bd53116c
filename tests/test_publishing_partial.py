"""Nothing partial is silent: a run with failed units or missing disciplines is refused unless
``--allow-partial``, and then the card and ``releases.json`` say what is missing. Also the
one-line refusals of bad targets and corrupt files, and prices given at publish time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from glan_dataset.errors import UsageError
from glan_dataset.publishing.publish import publish_run
from glan_dataset.testing.openai_server import FakeOpenAIServer
from glan_dataset.testing.openai_server.faults import FaultPlan
from tests.publishing_support import make_run, offline_datasets, write_taxonomy


def glan(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OPENAI_API_KEY": "test-key"}
    return subprocess.run(
        [sys.executable, "-m", "glan_dataset", *args], env=env, capture_output=True, text=True, timeout=300
    )


def cli_app():
    from glan_dataset.cli import _register, app

    _register()
    return app


def test_a_run_with_failed_units_is_refused_and_allow_partial_says_what_is_missing(tmp_path: Path) -> None:
    offline_datasets(tmp_path / "hf-cache")
    run = tmp_path / "run"
    write_taxonomy(tmp_path / "taxonomy.yaml", ["physics", "chemistry"])
    with FakeOpenAIServer(latency=0.0, faults=FaultPlan(rate_500=0.05, seed=1)) as server:
        generated = CliRunner().invoke(
            cli_app(),
            [
                "generate",
                "--out",
                str(run),
                "--taxonomy",
                str(tmp_path / "taxonomy.yaml"),
                "--config",
                "all",
                "--base-url",
                server.base_url,
                "--subject-samples",
                "2",
                "--max-subjects",
                "2",
                "--questions-per-subject",
                "3",
                "--max-attempts",
                "1",
                "--concurrency",
                "1",  # one request at a time: the same requests fail on every run of the test
                "--quiet",
            ],  # fmt: skip
            env={"OPENAI_API_KEY": "test-key"},
        )
    assert generated.exception is None or isinstance(generated.exception, SystemExit), generated.output
    failures = [line for line in (run / "failures.jsonl").read_text().splitlines() if line.strip()]
    assert failures, "the fault plan should have made some units fail"
    decontaminated = CliRunner().invoke(
        cli_app(), ["decontaminate", str(run), "--benchmarks", "gsm8k", "--no-hub", "--quiet"]
    )
    assert decontaminated.exit_code == 0, decontaminated.output

    out = tmp_path / "dataset"
    refused = glan("publish", str(run), "--to", str(out))
    assert refused.returncode == 2
    message = refused.stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in refused.stderr
    assert "partial" in message and "--allow-partial" in message and f"glan generate {run}" in message
    assert not out.exists()

    allowed = glan("publish", str(run), "--to", str(out), "--allow-partial", "--quiet")
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout == ""
    card = (out / "README.md").read_text()
    missing = card.split("## Missing from this release", 1)[1].split("\n## ", 1)[0]
    manifest = json.loads((run / "run.json").read_text())
    incomplete = [d for d in ("physics", "chemistry") if manifest["counts"].get(d, {}).get("failures")]
    without = [d for d in ("physics", "chemistry") if not (run / "records" / f"{d}.parquet").exists()]
    assert incomplete or without
    for discipline in incomplete:
        failed = manifest["counts"][discipline]["failures"]
        assert f"| `{discipline}` | {failed} |" in missing
    for discipline in without:
        assert f"`{discipline}`" in missing
    assert f"(`failures.jsonl`): {len(failures)}" in missing
    assert "**Partial release:**" in card
    release = json.loads((out / "releases.json").read_text())["releases"][-1]
    assert release["partial"] is True and release["missing"]["outstanding_failures"] == len(failures)


def test_a_selected_discipline_without_records_is_refused(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", per_discipline=4, disciplines=["physics"])
    write_taxonomy(run / "taxonomy.yaml", ["physics", "chemistry"])  # the config also selects chemistry
    with pytest.raises(UsageError, match=r"1 discipline without records \(chemistry\).*--allow-partial"):
        publish_run(run, tmp_path / "out", quiet=True)
    assert not (tmp_path / "out").exists()
    publish_run(run, tmp_path / "out", quiet=True, allow_partial=True)
    card = (tmp_path / "out" / "README.md").read_text()
    assert "Disciplines selected but without any records (1):\n`chemistry`." in card
    assert json.loads((tmp_path / "out" / "releases.json").read_text())["releases"][0]["missing"]["no_records"] == [
        "chemistry"
    ]


@pytest.mark.parametrize("where", ["under-a-file", "is-a-file", "read-only"])
def test_bad_targets_are_one_line_and_exit_2(tmp_path: Path, where: str) -> None:
    run = make_run(tmp_path / "run", per_discipline=4, disciplines=["physics"])
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    if where == "under-a-file":
        to = blocker / "dataset"
    elif where == "is-a-file":
        to = blocker
    else:  # /proc takes no new entries, whoever asks (root passes every permission check)
        to = Path("/proc/glan-publish-test/dataset")
    result = glan("publish", str(run), "--to", str(to))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "cannot publish to" in result.stderr
    assert not list(run.glob(".publish-*"))


def test_corrupt_files_are_one_line_and_exit_2(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", per_discipline=4, disciplines=["physics"])
    out = tmp_path / "dataset"
    assert glan("publish", str(run), "--to", str(out), "--quiet").returncode == 0
    before = (out / "README.md").read_bytes()

    # a corrupt release history in the target: refused (replacing it would erase the history)
    releases = out / "releases.json"
    releases.write_bytes(b"\x00\xffnot json")
    result = glan("publish", str(run), "--to", str(out), "--tag", "v1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "releases.json" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert (out / "README.md").read_bytes() == before
    releases.write_text(json.dumps({"releases": [{"version": 3}]}))  # valid JSON, wrong shape
    result = glan("publish", str(run), "--to", str(out))
    assert result.returncode == 2 and "releases.json" in result.stderr and "Traceback" not in result.stderr

    # a binary card extra, then a corrupt run.json
    extra = tmp_path / "extra.md"
    extra.write_bytes(b"\xff\xfe\x00binary")
    result = glan("publish", str(run), "--to", str(tmp_path / "other"), "--card-extra", str(extra))
    assert result.returncode == 2 and "extra.md" in result.stderr and "Traceback" not in result.stderr
    (run / "run.json").write_text("{truncated")
    result = glan("publish", str(run), "--to", str(tmp_path / "other"))
    assert result.returncode == 2 and "run.json" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_unreadable_readme_in_the_target_is_replaced_by_the_card(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", per_discipline=4, disciplines=["physics"])
    out = tmp_path / "dataset"
    out.mkdir()
    (out / "README.md").write_bytes(b"\xff\xfe\x00 not text")  # a folder made by hand, or a broken card
    result = glan("publish", str(run), "--to", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    assert (out / "README.md").read_text().startswith("---\n")


def test_prices_given_to_publish_are_kept_and_price_the_card(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", per_discipline=4, disciplines=["physics"])
    manifest = json.loads((run / "run.json").read_text())
    for entry in manifest["usage"]["cumulative"]:
        entry["cost_usd"] = None  # generated without --price: the card would say n/a
    manifest["usage"]["cumulative_cost_usd"] = None
    (run / "run.json").write_text(json.dumps(manifest))
    out = tmp_path / "dataset"
    publish_run(run, out, quiet=True)
    assert "n/a" in (out / "README.md").read_text().split("## How it was generated", 1)[1].split("\n## ", 1)[0]

    result = CliRunner().invoke(
        cli_app(),
        ["publish", str(run), "--to", str(out), "--price", "gpt-4.1=2/8", "--price", "gpt-4.1-mini=0.4/1.6", "-q"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads((run / "prices.json").read_text())["prices"]["gpt-4.1"] == [2.0, 8.0]
    card = (out / "README.md").read_text()
    # questions: 98765 in + 4321 out at 2/8 = 0.231098; answers: 54321 + 12345 at 0.4/1.6 = 0.04148
    assert "$0.23" in card and "$0.04" in card and "$0.27" in card
    # remembered: a later publish without --price still shows the cost
    publish_run(run, tmp_path / "again", quiet=True)
    assert "$0.27" in (tmp_path / "again" / "README.md").read_text()
