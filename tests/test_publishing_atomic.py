"""A local publish lands all at once: kill -9 at random points while a reader loads the folder in a loop.

Two run directories hold two different datasets (A and B). A publisher process publishes them in
turn to one folder and is killed (SIGKILL) at a random point of each publish; a reader process
meanwhile loads the folder with ``load_dataset`` over and over. Every load must be exactly A or
exactly B (ids of both splits), never an error or a mix; the last rerun completes with no
leftovers, and ``releases.json`` and the card's changelog list each version once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from glan_dataset.publishing.targets import LocalFolderTarget
from tests.publishing_support import DISCIPLINES, expected_rows, make_records, make_run, write_clean

READER = textwrap.dedent(
    """
    import json, os, sys, tempfile
    import datasets
    datasets.config.USE_PARQUET_EXPORT = False
    datasets.disable_progress_bars()
    folder, stop, known, log = sys.argv[1], sys.argv[2], json.loads(open(sys.argv[3]).read()), sys.argv[4]
    versions = {name: set(ids) for name, ids in known.items()}
    out = open(log, "a", buffering=1)
    while not os.path.exists(stop):
        try:
            with tempfile.TemporaryDirectory() as cache:  # a cold cache: its key ignores the shards' content
                loaded = datasets.load_dataset(folder, "all", cache_dir=cache)
                ids = set(loaded["train"]["id"]) | set(loaded["test"]["id"])
            match = [name for name, expected in versions.items() if ids == expected]
            line = match[0] if match else f"MIX {len(ids)} rows"
        except Exception as error:  # noqa: BLE001 - reported to the test, which fails on it
            line = "ERROR " + " ".join(f"{type(error).__name__}: {error}".split())[:300]
        out.write(line + "\\n")
    """
)


def tree_state(root: Path, out: Path) -> set[tuple[str, int]]:
    """Every entry beside and under the target (through its link), with its inode: any write shows."""
    state = {(entry.name, entry.inode()) for entry in os.scandir(root)}
    for folder in (out, root / f".{out.name}.releases"):
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
            state |= {(os.path.join(dirpath, name), os.lstat(os.path.join(dirpath, name)).st_ino) for name in filenames}
            state |= {(os.path.join(dirpath, name), 0) for name in dirnames}
    return state


def wait_for_changes(root: Path, out: Path, publisher: subprocess.Popen, count: int, timeout: float) -> None:
    """Return once the publisher has changed the target ``count`` times as seen by polling (or ended):
    kills land all along its writing, however long each file takes on this machine."""
    last = tree_state(root, out)
    deadline = time.monotonic() + timeout
    while count > 0 and time.monotonic() < deadline and publisher.poll() is None:
        try:
            now = tree_state(root, out)
        except FileNotFoundError:  # a file vanished while listing: the next poll sees the change
            continue
        if now != last:
            count, last = count - 1, now
        time.sleep(0.001)


def publish_command(run: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "glan_dataset", "publish", str(run), "--to", str(out), "--quiet"]


def test_kill_9_during_publish_never_shows_a_mix_and_the_rerun_leaves_nothing_behind(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_UPDATE_DOWNLOAD_COUNTS": "0",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_DATASETS_CACHE": str(tmp_path / "hf-cache"),
    }
    run_a = make_run(tmp_path / "a", per_discipline=8)
    run_b = make_run(tmp_path / "b", per_discipline=8)
    write_clean(run_b, "chemistry", make_records("chemistry", 11, salt="b"))  # one more record, other answers
    write_clean(run_b, "history", make_records("history", 5, salt="b"))
    versions = {"A": sorted(expected_rows(run_a, DISCIPLINES)), "B": sorted(expected_rows(run_b, DISCIPLINES))}
    assert versions["A"] != versions["B"]
    (tmp_path / "versions.json").write_text(json.dumps(versions))
    out = tmp_path / "dataset"

    started = time.monotonic()
    subprocess.run(publish_command(run_a, out), env=env, check=True, timeout=120)
    full = time.monotonic() - started  # how long one publish takes here: kills land across all of it

    stop, log = tmp_path / "stop", tmp_path / "reader.log"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(out), str(stop), str(tmp_path / "versions.json"), str(log)],
        env=env,
        stderr=subprocess.DEVNULL,
    )

    def loads() -> list[str]:
        return log.read_text().split("\n")[:-1] if log.exists() else []

    def reader_catches_up() -> None:
        """Wait until a load that started after now has finished: the folder as the kill left it is read."""
        seen = len(loads())
        deadline = time.monotonic() + 60
        while len(loads()) < seen + 2 and time.monotonic() < deadline and reader.poll() is None:
            time.sleep(0.05)

    reader_catches_up()
    rng = random.Random(11)
    try:
        for iteration in range(6):
            run = run_b if iteration % 2 == 0 else run_a
            publisher = subprocess.Popen(
                publish_command(run, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            if iteration % 3 == 2:
                time.sleep(rng.uniform(0.3, 1.1) * full)  # anywhere (the start is mostly imports)
            else:  # while it writes the target: the moment that matters, a fraction of a publish
                wait_for_changes(tmp_path, out, publisher, count=rng.randint(1, 12), timeout=3 * full)
            publisher.send_signal(signal.SIGKILL)
            publisher.wait()
            reader_catches_up()
        # each run's killed publish is run again (its own staging leftovers go with that rerun), the last one last
        subprocess.run(publish_command(run_b, out), env=env, check=True, timeout=120)
        subprocess.run(publish_command(run_a, out), env=env, check=True, timeout=120)
        reader_catches_up()
    finally:
        stop.touch()
        reader.wait(timeout=60)
    seen = loads()
    assert seen and all(line in ("A", "B") for line in seen), [line for line in seen if line not in ("A", "B")][:3]
    assert seen[-1] == "A"

    # no leftovers: no staging folder in the runs, no link or staging file beside or in the target
    target = LocalFolderTarget(out)
    assert not list((tmp_path / "a").glob(".publish-*")) and not list((tmp_path / "b").glob(".publish-*"))
    assert not [p for p in tmp_path.iterdir() if ".link-" in p.name]
    assert not list(target.releases_dir.glob(".staging-*"))
    assert len(list(target.releases_dir.iterdir())) <= 2  # the release and the one before it
    assert not [p for p in out.rglob("*") if p.name.endswith((".tmp", ".partial"))]

    # each version once in the history and in the changelog; no phantom release
    releases = [r["version"] for r in json.loads((out / "releases.json").read_text())["releases"]]
    assert releases == [f"r{i}" for i in range(1, len(releases) + 1)]
    changelog = (out / "README.md").read_text().split("## Changelog", 1)[1]
    for version in releases:
        assert changelog.count(f"\n| {version} |") == 1, version
    assert set(json.loads((out / "releases.json").read_text())["releases"][-1]) >= {"version", "records"}
