"""Every user mistake the CLI can meet is one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from glan_dataset.cli import main


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    monkeypatch.setattr("sys.argv", ["glan", *args])
    with pytest.raises(SystemExit) as exit_:
        main()
    return int(exit_.value.code or 0), capsys.readouterr().err


def assert_one_line(stderr: str, *fragments: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], stderr


def test_unknown_option_is_one_line_naming_the_help(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    code, stderr = run_cli(monkeypatch, capsys, "generate", "--bogus")
    assert code == 2
    assert_one_line(stderr, "--bogus", "generate --help")


def test_bad_option_value_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    code, stderr = run_cli(monkeypatch, capsys, "plan", "--concurrency", "many")
    assert code == 2
    assert_one_line(stderr, "--concurrency")


def test_unknown_command_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    code, stderr = run_cli(monkeypatch, capsys, "generat")
    assert code == 2
    assert_one_line(stderr, "generat")


@pytest.mark.parametrize("kind", ["missing", "folder"])
def test_taxonomy_that_is_not_a_file_is_one_line(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    path = tmp_path / "taxonomy.yaml"
    if kind == "folder":
        path.mkdir()
    code, stderr = run_cli(monkeypatch, capsys, "plan", "--config", "physics", "--taxonomy", str(path))
    assert code == 2
    assert_one_line(stderr, str(path), "taxonomy file")


def test_binary_review_sheet_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    sheet = tmp_path / "votes.xlsx"
    sheet.write_bytes(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xff\xfe" * 20)
    code, stderr = run_cli(
        monkeypatch, capsys, "taxonomy", "apply-votes", "tests/data/tiny_taxonomy.yaml", str(sheet),
        "--out", str(tmp_path / "out.yaml"),
    )  # fmt: skip
    assert code == 2
    assert_one_line(stderr, str(sheet), "CSV")
    assert not (tmp_path / "out.yaml").exists()


def test_out_under_a_regular_file_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, stderr = run_cli(
        monkeypatch, capsys, "generate", "--config", "physics", "--taxonomy", "tests/data/tiny_taxonomy.yaml",
        "--out", str(blocker / "run"), "--base-url", "http://127.0.0.1:9/v1", "--quiet",
    )  # fmt: skip
    assert code == 2
    assert_one_line(stderr, str(blocker / "run"))


def test_a_corrupt_response_cache_is_one_line_and_left_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    damaged = b"this is not an SQLite database" * 100
    (run / "llm-cache.sqlite").write_bytes(damaged)
    code, stderr = run_cli(
        monkeypatch, capsys, "generate", "--config", "physics", "--taxonomy", "tests/data/tiny_taxonomy.yaml",
        "--out", str(run), "--base-url", "http://127.0.0.1:9/v1", "--quiet",
    )  # fmt: skip
    assert code == 2
    assert_one_line(stderr, "llm-cache.sqlite", "restore it")
    assert (run / "llm-cache.sqlite").read_bytes() == damaged


def test_an_emptied_cache_of_a_run_with_stage_files_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from glan_dataset.testing.openai_server import FakeOpenAIServer

    run = tmp_path / "run"
    args = ["generate", "--config", "physics", "--taxonomy", "tests/data/tiny_taxonomy.yaml", "--out", str(run),
            "--quiet", "--subject-samples", "1", "--max-subjects", "1", "--questions-per-subject", "1"]  # fmt: skip
    with FakeOpenAIServer() as server:
        code, stderr = run_cli(monkeypatch, capsys, *args, "--base-url", server.base_url)
        assert code == 0, stderr
        (run / "llm-cache.sqlite").write_bytes(b"")  # e.g. a copy that went wrong
        for leftover in run.glob("llm-cache.sqlite-*"):
            leftover.unlink()
        calls = server.stats.chat_calls
        code, stderr = run_cli(monkeypatch, capsys, *args, "--base-url", server.base_url, "--questions-per-subject", "2")
        assert server.stats.chat_calls == calls  # nothing paid again
    assert code == 2
    assert_one_line(stderr, "llm-cache.sqlite", "empty")
