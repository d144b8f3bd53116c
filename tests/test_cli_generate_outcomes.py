"""What `glan generate` says and returns when it is not a clean success: outstanding units (exit 3),
nothing generated, a damaged snapshot, damaged files (one line, exit 2), and remembered prices."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from glan_dataset.cli import main
from glan_dataset.testing.openai_server import FakeOpenAIServer, FaultPlan
from tests.helpers import TINY_TAXONOMY

PRICES = ["--price", "gpt-4.1=2/8", "--price", "gpt-4.1-mini=0.4/1.6"]


def glan(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.argv", ["glan", *args])
    try:
        with pytest.raises(SystemExit) as exit_:
            main()
    finally:  # main() adds a stderr handler each time; capsys gives a new stderr each call
        logging.getLogger("glan_dataset").handlers.clear()
    captured = capsys.readouterr()
    return int(exit_.value.code or 0), captured.out, captured.err


def generate_args(run: Path, server: FakeOpenAIServer, config: str, *extra: str, taxonomy: bool = True) -> list[str]:
    args = [
        "generate", "--out", str(run), "--config", config, "--subject-samples", "2", "--max-subjects", "3",
        "--questions-per-subject", "4", "--concurrency", "4", "--max-attempts", "1", "--base-url", server.base_url,
        "--quiet", *extra,
    ]  # fmt: skip
    return args + (["--taxonomy", str(TINY_TAXONOMY)] if taxonomy else [])


def one_line(stderr: str, *fragments: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if " INFO " not in line]  # --quiet progress lines
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    for fragment in fragments:
        assert fragment in lines[0], stderr
    return lines[0]


def test_outstanding_units_exit_3_after_the_summary_and_a_clean_rerun_exits_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    with FakeOpenAIServer(faults=FaultPlan(rate_500=0.3, seed=3)) as server:
        code, _, stderr = glan(monkeypatch, capsys, *generate_args(run, server, "physics"))
        assert code == 3
        assert "failed unit(s) outstanding" in stderr.strip().splitlines()[-1], stderr
        server.set_faults(None)
        code, _, stderr = glan(monkeypatch, capsys, *generate_args(run, server, "physics"))
    assert code == 0, stderr
    assert " records in 1 discipline(s)" in stderr.strip().splitlines()[-1]


def test_a_run_that_produced_nothing_says_so_in_its_last_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeOpenAIServer(faults=FaultPlan(rate_500=1.0)) as server:
        code, _, stderr = glan(monkeypatch, capsys, *generate_args(tmp_path / "run", server, "physics"))
    assert code == 3
    last = stderr.strip().splitlines()[-1]
    assert "nothing was generated for --config physics" in last and "physics" in last, stderr


def test_a_truncated_snapshot_retires_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    with FakeOpenAIServer() as server:
        assert glan(monkeypatch, capsys, *generate_args(run, server, "physical-sciences"))[0] == 0
        snapshot = run / "taxonomy.yaml"
        text = snapshot.read_text()
        chemistry = "          - name: Chemistry\n            slug: chemistry\n"
        assert chemistry in text
        start = text.index(chemistry)
        end = text.index("\n", text.index("description:", start)) + 1
        snapshot.write_text(text[:start] + text[end:])  # still a valid taxonomy, one discipline short
        server.reset_stats()
        code, _, stderr = glan(monkeypatch, capsys, *generate_args(run, server, "physics", taxonomy=False))
        assert server.stats.chat_calls == 0
    assert code == 2
    one_line(stderr, str(snapshot), "--taxonomy")
    assert (run / "records" / "chemistry.parquet").exists() and not (run / "retired").exists()
    assert "chemistry" in json.loads((run / "run.json").read_text())["disciplines"]


@pytest.mark.parametrize(
    "damage", ["stage file", "run.json not json", "run.json a list", "run.json a folder", "prices.json", "snapshot"]
)
def test_damaged_files_are_one_line_and_never_replaced(
    damage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    with FakeOpenAIServer() as server:
        assert glan(monkeypatch, capsys, *generate_args(run, server, "physics"))[0] == 0
        if damage == "stage file":
            path = run / "syllabi" / "physics.parquet"
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # cut, as by a full disk
        elif damage == "prices.json":
            path = run / "prices.json"
            path.write_text('{"prices": {"gpt-4.1": "cheap"}}')
        elif damage == "snapshot":
            path = run / "taxonomy.yaml"
            path.write_bytes(b"fields: [\x00\xff")
        elif damage == "run.json a folder":
            path = run / "run.json"
            path.unlink()
            path.mkdir()
        else:
            path = run / "run.json"
            path.write_text("[1, 2]" if damage == "run.json a list" else '{"glan_dataset_version": "0.')
        before = path.read_bytes() if path.is_file() else None
        server.reset_stats()
        code, _, stderr = glan(
            monkeypatch, capsys, *generate_args(run, server, "physics", taxonomy=damage != "snapshot")
        )
        assert server.stats.chat_calls == 0
    assert code == 2
    one_line(stderr, str(path))
    if damage == "stage file":
        one_line(stderr, "delete it")
    if before is not None:
        assert path.read_bytes() == before  # left for the user to look at, not silently replaced


def test_prices_given_once_are_remembered_by_later_runs_and_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    with FakeOpenAIServer() as server:
        assert glan(monkeypatch, capsys, *generate_args(run, server, "physics", *PRICES))[0] == 0
        assert glan(monkeypatch, capsys, *generate_args(run, server, "chemistry"))[0] == 0  # no --price
    usage = json.loads((run / "run.json").read_text())["usage"]
    assert usage["cumulative_cost_usd"] is not None and usage["cumulative_cost_usd"] > 0
    assert usage["prices"] == {"gpt-4.1": [2.0, 8.0], "gpt-4.1-mini": [0.4, 1.6]}
    assert "key" not in (run / "prices.json").read_text().lower()
    code, out, _ = glan(
        monkeypatch, capsys, "plan", "--config", "physics", "--taxonomy", str(TINY_TAXONOMY), "--out", str(run)
    )
    assert code == 0 and "n/a" not in out and "$" in out
