"""HubTarget against the loopback fake Hub, driven by the real huggingface_hub client and datasets.

The staging folders are small script-free datasets built here with pyarrow (parquet shards under
``data/<discipline>/``, a README with ``configs:``), so these tests exercise the Hub protocol and
``load_dataset`` independently of the layout writer.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from glan_dataset.errors import GlanError, UsageError
from glan_dataset.publishing.hub import HubAuthError, HubConflictError, HubError, HubTarget
from glan_dataset.publishing.targets import PublishPlan, PublishResult, PublishTarget, parse_target, plan_publish
from tests.fakes.fake_hub import DEFAULT_TOKEN, FakeHub

REPO = "org/glan"
FIELDS = {"physics": "natural-sciences", "chemistry": "natural-sciences", "history": "humanities"}
CHART = "assets/records_per_field.png"


# ---------------------------------------------------------------------------------------------
# A small script-free dataset folder
# ---------------------------------------------------------------------------------------------


def rows(discipline: str, n: int, version: int = 1) -> list[dict[str, str]]:
    return [
        {"id": f"{discipline}-{i}", "discipline": discipline, "question": f"{discipline} question {i} (v{version})"}
        for i in range(n)
    ]


def parquet_bytes(records: list[dict[str, str]]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(records), buffer)
    return buffer.getvalue()


def readme(disciplines: dict[str, int], version: int) -> str:
    fields: dict[str, list[str]] = {}
    for name in sorted(disciplines):
        fields.setdefault(FIELDS[name], []).append(name)
    configs = [{"config_name": "all", "default": True, "data_files": [{"split": "train", "path": "data/*/train-*"}]}]
    for field_name, members in sorted(fields.items()):
        configs.append(
            {
                "config_name": field_name,
                "data_files": [{"split": "train", "path": [f"data/{m}/train-*" for m in members]}],
            }
        )
    for name in sorted(disciplines):
        configs.append({"config_name": name, "data_files": [{"split": "train", "path": f"data/{name}/train-*"}]})
    front = json.dumps({"license": "apache-2.0", "tags": ["synthetic", "glan"], "configs": configs}, indent=1)
    return f"---\n{front}\n---\n\n# GLAN test dataset\n\nRelease {version}.\n\n![chart]({CHART})\n"


def build_staging(
    root: Path,
    disciplines: dict[str, int],
    *,
    version: int = 1,
    changed: dict[str, int] | None = None,
    shards: dict[str, int] | None = None,
) -> Path:
    """A staging folder: ``disciplines`` maps name -> rows; ``changed`` -> content version; ``shards`` -> count."""
    changed, shards = changed or {}, shards or {}
    root.mkdir(parents=True, exist_ok=True)
    for name, n in disciplines.items():
        records = rows(name, n, changed.get(name, 1))
        count = shards.get(name, 1)
        for i in range(count):
            path = root / "data" / name / f"train-{i:05d}-of-{count:05d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(parquet_bytes(records[i::count]))
    (root / "README.md").write_text(readme(disciplines, version))
    (root / "releases.json").write_text(json.dumps({"releases": [f"v{v}" for v in range(1, version + 1)]}) + "\n")
    (root / "taxonomy.yaml").write_text("fields:\n- natural-sciences\n- humanities\n")
    chart = root / CHART
    chart.parent.mkdir(parents=True, exist_ok=True)
    chart.write_bytes(b"\x89PNG\r\n\x1a\n" + json.dumps(disciplines, sort_keys=True).encode())
    return root


def publish(target: HubTarget, staging: Path, *, tag: str | None = None, dry_run: bool = False) -> PublishResult:
    existing = target.existing_files()
    plan = plan_publish(staging, existing)
    return target.publish(staging, plan, message=f"release {tag or 'untagged'}", tag=tag, dry_run=dry_run)


def load(config: str | None = None, **kwargs: object) -> list[dict[str, str]]:
    import datasets

    ds = datasets.load_dataset(REPO, config, split="train", **kwargs)  # type: ignore[arg-type]
    return sorted(ds.to_list(), key=lambda r: r["id"])


def expected(disciplines: dict[str, int], changed: dict[str, int] | None = None) -> list[dict[str, str]]:
    out = [r for name, n in disciplines.items() for r in rows(name, n, (changed or {}).get(name, 1))]
    return sorted(out, key=lambda r: r["id"])


def ops(hub: FakeHub, revision: str = "main") -> set[tuple[str, str]]:
    return {(op.kind, op.path) for op in hub.commit(REPO, revision).operations}


def assert_clean(hub: FakeHub, *texts: str) -> None:
    """No unknown endpoint was called, nothing left loopback, the token is nowhere in ``texts``."""
    assert hub.unhandled == []
    assert hub.blocked_connections == []
    for text in texts:
        assert DEFAULT_TOKEN not in text


START = {"physics": 4, "chemistry": 3, "history": 2}


@pytest.fixture
def first(fake_hub: FakeHub, tmp_path: Path) -> tuple[FakeHub, PublishResult]:
    """A repo after a first push tagged v1.0."""
    staging = build_staging(tmp_path / "v1", START)
    result = publish(HubTarget(REPO), staging, tag="v1.0")
    return fake_hub, result


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------


def test_target_protocol_and_description_never_show_the_token() -> None:
    target = HubTarget(REPO, revision="dev", token=DEFAULT_TOKEN)
    assert isinstance(target, PublishTarget)
    assert target.description == "hf://org/glan@dev"
    assert DEFAULT_TOKEN not in repr(target) and DEFAULT_TOKEN not in target.description
    assert isinstance(parse_target("hf://org/glan", private=True), HubTarget)
    for bad in ("glan", "org/glan/x", "org/../x", "org/a--b"):
        with pytest.raises(UsageError):
            HubTarget(bad)
    with pytest.raises(UsageError, match="branch"):
        HubTarget(REPO, revision="refs/pr/1")


def test_first_push_creates_repo_with_one_commit_holding_every_file(
    fake_hub: FakeHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    staging = build_staging(tmp_path / "v1", START)
    target = HubTarget(REPO, private=True)
    assert target.existing_files() == {}  # no repo yet

    result = publish(target, staging, tag="v1.0")

    repo = fake_hub.repo(REPO)
    assert repo.private
    history = fake_hub.history(REPO)
    assert [c.title for c in history] == ["release v1.0", "initial commit"]  # exactly one publish commit
    staged = {p.relative_to(staging).as_posix(): p.read_bytes() for p in staging.rglob("*") if p.is_file()}
    assert {k: v for k, v in fake_hub.files(REPO).items() if k != ".gitattributes"} == staged
    assert ops(fake_hub) == {("lfsFile" if p.endswith((".parquet", ".png")) else "file", p) for p in staged}
    assert result.commit == history[0].oid and result.tag == "v1.0" and not result.dry_run
    assert repo.tags == {"v1.0": result.commit}
    assert sorted(result.plan.add) == sorted(staged) and not result.plan.update and not result.plan.delete
    # LFS objects went through the batch API and were verified, then the single commit.
    kinds = [r.kind for r in fake_hub.mutating_requests()]
    assert kinds.count("commit") == 1 and kinds.count("create_repo") == 1 and kinds.count("lfs_upload") == 4

    # The listing now reports every file with the same sha256 as the staging folder: nothing to do.
    again = plan_publish(staging, HubTarget(REPO).existing_files())
    assert again.is_empty and sorted(again.unchanged) == sorted(staged)
    assert HubTarget(REPO).read_file("releases.json") == (staging / "releases.json").read_bytes()
    assert HubTarget(REPO).read_file("nope.json") is None
    assert_clean(fake_hub, capsys.readouterr().out, capsys.readouterr().err, result.model_dump_json())


def test_load_dataset_by_config_field_default_and_tag(first: tuple[FakeHub, PublishResult]) -> None:
    hub, _ = first
    assert load("physics") == expected({"physics": 4})
    assert load("natural-sciences") == expected({"physics": 4, "chemistry": 3})
    assert load() == expected(START)  # `all` is the default config
    assert load("history", revision="v1.0") == expected({"history": 2})
    assert_clean(hub)


def test_second_push_commits_only_what_changed(first: tuple[FakeHub, PublishResult], tmp_path: Path) -> None:
    hub, v1 = first
    before = hub.repo(REPO).commits[v1.commit or ""].files
    # physics changed and now has 2 shards; chemistry and history are byte-identical.
    staging = build_staging(tmp_path / "v2", START, version=2, changed={"physics": 2}, shards={"physics": 2})
    hub.requests.clear()

    result = publish(HubTarget(REPO), staging, tag="v2.0")

    assert ops(hub) == {
        ("lfsFile", "data/physics/train-00000-of-00002.parquet"),
        ("lfsFile", "data/physics/train-00001-of-00002.parquet"),
        ("deletedFile", "data/physics/train-00000-of-00001.parquet"),
        ("file", "README.md"),
        ("file", "releases.json"),
    }  # the chart did not change (same counts), so it is not in the commit
    assert result.plan.delete == ["data/physics/train-00000-of-00001.parquet"]
    assert "data/chemistry/train-00000-of-00001.parquet" in result.plan.unchanged
    assert "taxonomy.yaml" in result.plan.unchanged and CHART in result.plan.unchanged
    after = hub.commit(REPO).files
    assert after["data/chemistry/train-00000-of-00001.parquet"] is before["data/chemistry/train-00000-of-00001.parquet"]
    assert len([r for r in hub.requests if r.kind == "lfs_upload"]) == 2  # only the new physics shards
    assert len([r for r in hub.requests if r.kind == "commit"]) == 1

    assert load("physics") == expected({"physics": 4}, {"physics": 2})
    assert load("physics", revision="v1.0") == expected({"physics": 4})  # the old release still loads
    assert load("chemistry") == expected({"chemistry": 3})
    assert_clean(hub)


def test_chart_and_dropped_discipline_change_in_the_same_commit(
    first: tuple[FakeHub, PublishResult], tmp_path: Path
) -> None:
    hub, _ = first
    staging = build_staging(tmp_path / "v2", {"physics": 4, "chemistry": 3}, version=2)
    publish(HubTarget(REPO), staging)
    assert ops(hub) == {
        ("deletedFile", "data/history/train-00000-of-00001.parquet"),
        ("file", "README.md"),
        ("file", "releases.json"),
        ("lfsFile", CHART),
    }
    assert not any(p.startswith("data/history/") for p in hub.files(REPO))
    assert load() == expected({"physics": 4, "chemistry": 3})


def test_existing_tag_is_refused_before_any_write(first: tuple[FakeHub, PublishResult], tmp_path: Path) -> None:
    hub, v1 = first
    staging = build_staging(tmp_path / "v2", START, version=2, changed={"history": 2})
    hub.requests.clear()
    for dry_run in (True, False):
        with pytest.raises(UsageError, match="tag 'v1.0' already exists"):
            publish(HubTarget(REPO), staging, tag="v1.0", dry_run=dry_run)
    assert hub.mutating_requests() == []
    assert hub.head(REPO) == v1.commit and hub.repo(REPO).tags == {"v1.0": v1.commit}


def test_stale_parent_is_refused_before_uploading(first: tuple[FakeHub, PublishResult], tmp_path: Path) -> None:
    hub, _ = first
    staging = build_staging(tmp_path / "v2", START, version=2, changed={"physics": 2})
    target = HubTarget(REPO)
    plan = plan_publish(staging, target.existing_files())
    concurrent = hub.push_direct(REPO, {"NOTES.md": b"someone else's push\n"})
    hub.requests.clear()

    with pytest.raises(HubConflictError) as caught:
        target.publish(staging, plan, message="v2", tag="v2.0", dry_run=False)

    message = str(caught.value)
    assert "\n" not in message and "run publish again" in message and "hf://org/glan" in message
    assert hub.mutating_requests() == []  # not even an LFS upload
    assert hub.head(REPO) == concurrent and "v2.0" not in hub.repo(REPO).tags


def test_concurrent_push_during_commit_gets_412_and_nothing_is_written(
    first: tuple[FakeHub, PublishResult], tmp_path: Path
) -> None:
    hub, _ = first
    staging = build_staging(tmp_path / "v2", START, version=2, changed={"physics": 2})
    target = HubTarget(REPO)
    plan = plan_publish(staging, target.existing_files())
    landed: list[str] = []
    hub.before_commit = lambda repo_id, rev: landed.append(hub.push_direct(repo_id, {"NOTES.md": b"race\n"}))

    with pytest.raises(HubConflictError, match="run publish again") as caught:
        target.publish(staging, plan, message="v2", tag="v2.0", dry_run=False)

    assert "\n" not in str(caught.value) and DEFAULT_TOKEN not in str(caught.value)
    assert hub.head(REPO) == landed[0]  # the other push stands; ours left no commit and no tag
    assert "README.md" not in hub.commit(REPO).changed_paths
    assert sorted(hub.repo(REPO).tags) == ["v1.0"]


def test_create_pr_leaves_main_alone(first: tuple[FakeHub, PublishResult], tmp_path: Path) -> None:
    hub, v1 = first
    staging = build_staging(tmp_path / "v2", START, version=2, changed={"history": 2})
    target = HubTarget(REPO, create_pr=True)
    with pytest.raises(UsageError, match="--create-pr"):
        publish(target, staging, tag="v2.0")

    result = publish(target, staging)

    assert hub.head(REPO) == v1.commit
    pr_head = hub.head(REPO, "refs/pr/1")
    assert result.commit == pr_head and result.url and result.url.endswith("/discussions/1")
    assert ops(hub, "refs/pr/1") == {
        ("lfsFile", "data/history/train-00000-of-00001.parquet"),
        ("file", "README.md"),
        ("file", "releases.json"),
    }
    assert load("history", revision="refs/pr/1") == expected({"history": 2}, {"history": 2})
    assert load("history") == expected({"history": 2})


def test_revision_branch_is_created_from_main_and_gets_only_the_changes(
    first: tuple[FakeHub, PublishResult], tmp_path: Path
) -> None:
    hub, v1 = first
    staging = build_staging(tmp_path / "v2", START, version=2, changed={"chemistry": 2})
    target = HubTarget(REPO, revision="dev")
    assert target.description == "hf://org/glan@dev"

    result = publish(target, staging, tag="v2.0-rc1")

    assert hub.head(REPO) == v1.commit  # main untouched
    assert hub.history(REPO, "dev")[1].oid == v1.commit  # dev branched from main's head
    assert ops(hub, "dev") == {
        ("lfsFile", "data/chemistry/train-00000-of-00001.parquet"),
        ("file", "README.md"),
        ("file", "releases.json"),
    }
    assert hub.repo(REPO).tags["v2.0-rc1"] == result.commit == hub.head(REPO, "dev")
    assert load("chemistry", revision="dev") == expected({"chemistry": 3}, {"chemistry": 2})

    # A second push to the now-existing branch lists the branch, not main.
    staging3 = build_staging(tmp_path / "v3", START, version=3, changed={"chemistry": 3})
    publish(HubTarget(REPO, revision="dev"), staging3)
    assert ops(hub, "dev") == {
        ("lfsFile", "data/chemistry/train-00000-of-00001.parquet"),
        ("file", "README.md"),
        ("file", "releases.json"),
    }
    with pytest.raises(UsageError, match="is a tag"):
        publish(HubTarget(REPO, revision="v1.0"), staging3)
    assert_clean(hub)


def test_dry_run_sends_no_writes(fake_hub: FakeHub, tmp_path: Path) -> None:
    staging = build_staging(tmp_path / "v1", START)
    result = publish(HubTarget(REPO), staging, tag="v1.0", dry_run=True)
    assert result.dry_run and result.commit is None and len(result.plan.add) == 7
    assert fake_hub.mutating_requests() == [] and REPO not in fake_hub.repos

    publish(HubTarget(REPO), staging)
    fake_hub.requests.clear()
    changed = build_staging(tmp_path / "v2", START, version=2, changed={"physics": 2})
    result = publish(HubTarget(REPO), changed, tag="v2.0", dry_run=True)
    assert result.plan.update == ["README.md", "data/physics/train-00000-of-00001.parquet", "releases.json"]
    assert fake_hub.mutating_requests() == []
    assert {r.method for r in fake_hub.requests} <= {"GET", "HEAD", "POST"}  # POSTs: read-only paths-info
    assert {r.kind for r in fake_hub.requests if r.method == "POST"} <= {"paths_info"}


def test_unchanged_publish_makes_no_commit_but_can_tag(first: tuple[FakeHub, PublishResult], tmp_path: Path) -> None:
    hub, v1 = first
    staging = build_staging(tmp_path / "v1-again", START)
    hub.requests.clear()
    result = publish(HubTarget(REPO), staging, tag="v1.0.1")
    assert result.plan.is_empty and result.commit == v1.commit
    assert [r.kind for r in hub.mutating_requests()] == ["create_tag"]
    assert hub.repo(REPO).tags["v1.0.1"] == v1.commit


def test_missing_token_is_one_line(fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN")
    staging = build_staging(tmp_path / "v1", START)
    with pytest.raises(HubAuthError) as caught:
        publish(HubTarget(REPO), staging)
    message = str(caught.value)
    assert "\n" not in message and "HF_TOKEN" in message and "hf auth login" in message
    assert isinstance(caught.value, GlanError) and fake_hub.mutating_requests() == []
    # A dry run reads anonymously and needs no token.
    assert publish(HubTarget(REPO), staging, dry_run=True).dry_run


def test_refused_token_is_one_line_and_never_echoed(fake_hub: FakeHub, tmp_path: Path) -> None:
    bad = "hf_definitelyNotTheRightToken123456"
    staging = build_staging(tmp_path / "v1", START)
    with pytest.raises(HubAuthError) as caught:
        publish(HubTarget(REPO, token=bad), staging)
    message = str(caught.value)
    assert "401" in message and "\n" not in message and bad not in message and DEFAULT_TOKEN not in message
    assert REPO not in fake_hub.repos

    with pytest.raises(HubAuthError, match="403"):
        publish(HubTarget("someone-else/glan"), staging)


def test_private_repo_is_invisible_without_the_token(
    fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    staging = build_staging(tmp_path / "v1", START)
    publish(HubTarget(REPO, private=True), staging)
    assert HubTarget(REPO).existing_files()  # with HF_TOKEN
    monkeypatch.delenv("HF_TOKEN")
    assert HubTarget(REPO).existing_files() == {}  # a private repo looks absent, as on the Hub


def test_unreachable_hub_is_one_line(fake_hub: FakeHub, tmp_path: Path) -> None:
    target = HubTarget(REPO, endpoint="http://127.0.0.1:9")  # discard port: connection refused
    with pytest.raises(HubError, match="cannot reach the Hub") as caught:
        target.existing_files()
    assert "\n" not in str(caught.value)


def test_pagination_of_large_trees(fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fake_hub, "page_size", 3)
    staging = build_staging(tmp_path / "v1", START, shards={"physics": 4})
    publish(HubTarget(REPO), staging)
    existing = HubTarget(REPO).existing_files()
    assert len(existing) == 10 + 1  # 10 staged files + .gitattributes
    assert sum(1 for r in fake_hub.requests if r.kind == "list_tree" and "cursor=" in r.query) >= 3
    assert plan_publish(staging, existing).is_empty
    assert load("physics") == expected({"physics": 4})


def test_plan_is_the_commit(first: tuple[FakeHub, PublishResult], tmp_path: Path) -> None:
    """What the plan says (and a dry run prints) is exactly what the commit does."""
    hub, _ = first
    staging = build_staging(tmp_path / "v2", START, version=2, changed={"physics": 2, "history": 3})
    result = publish(HubTarget(REPO), staging)
    plan: PublishPlan = result.plan
    assert {p for _, p in ops(hub)} == set(plan.add) | set(plan.update) | set(plan.delete)


def test_publish_run_end_to_end_with_the_real_layout_and_card(
    fake_hub: FakeHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``publish_run`` (layout writer, card, chart, releases) -> HubTarget -> fake Hub -> load_dataset."""
    import datasets

    from glan_dataset.publishing.chart import CHART_PATH
    from glan_dataset.publishing.publish import publish_run
    from tests.publishing_support import expected_rows, make_records, make_run, write_clean

    def ids(config: str, **kwargs: object) -> set[str]:
        loaded = datasets.load_dataset(REPO, config, **kwargs)  # type: ignore[arg-type]
        assert set(loaded) == {"train", "test"}
        return {row for split in loaded.values() for row in split["id"]}

    run = make_run(tmp_path / "run", per_discipline=10)
    publish_run(run, f"hf://{REPO}", tag="v1.0", test_per_discipline=2, quiet=True)
    v1_chemistry = expected_rows(run, ["chemistry"])
    assert [c.title for c in fake_hub.history(REPO)][1:] == ["initial commit"]

    write_clean(run, "chemistry", make_records("chemistry", 11, salt="b"))
    result = publish_run(run, f"hf://{REPO}", tag="v1.1", test_per_discipline=2, quiet=True)

    changed = fake_hub.commit(REPO).changed_paths
    data = {p for p in changed if p.startswith("data/")}
    assert data and all(p.startswith("data/chemistry/") for p in data)
    # decontamination_report.json: re-decontaminating chemistry rewrites the report (its records identity)
    allowed = data | {"README.md", "releases.json", CHART_PATH, "decontamination_report.json"}
    assert {"README.md", "releases.json"} <= changed <= allowed
    assert set(result.plan.changes) == changed and fake_hub.repo(REPO).tags["v1.1"] == result.commit

    assert ids("chemistry") == expected_rows(run, ["chemistry"])
    assert ids("chemistry", revision="v1.0") == v1_chemistry
    assert ids("natural-science") == expected_rows(run, ["physics", "chemistry", "biology"])
    assert ids("all") == expected_rows(run, ["physics", "chemistry", "biology", "history", "archaeology"])
    out = capsys.readouterr()
    assert_clean(fake_hub, out.out, out.err, fake_hub.files(REPO)["README.md"].decode())


def test_network_guard_blocks_anything_but_loopback(fake_hub: FakeHub) -> None:
    from huggingface_hub.utils import get_session

    with pytest.raises(Exception, match="network guard"):
        get_session().get("https://huggingface.co/api/whoami-v2", timeout=2)
    assert fake_hub.blocked_connections == ["huggingface.co"]
    fake_hub.blocked_connections.clear()  # expected here: don't fail the test at teardown


def test_new_repo_straight_to_a_branch(fake_hub: FakeHub, tmp_path: Path) -> None:
    staging = build_staging(tmp_path / "v1", {"physics": 2})
    result = publish(HubTarget(REPO, revision="dev"), staging)
    assert fake_hub.files(REPO).keys() == {".gitattributes"}  # main keeps only the initial commit
    assert result.commit == fake_hub.head(REPO, "dev") and "README.md" in fake_hub.files(REPO, "dev")


def test_server_errors_are_one_line(first: tuple[FakeHub, PublishResult], tmp_path: Path) -> None:
    from tests.fakes.fake_hub import HubHTTPError

    hub, v1 = first

    def fail(repo_id: str, rev: str) -> None:
        raise HubHTTPError(503, "Service Unavailable\nstack trace line 1\nline 2")

    hub.before_commit = fail
    staging = build_staging(tmp_path / "v2", START, version=2, changed={"physics": 2})
    with pytest.raises(HubError) as caught:
        publish(HubTarget(REPO), staging, tag="v2.0")
    message = str(caught.value)
    assert "503" in message and "try again later" in message and "\n" not in message
    assert hub.head(REPO) == v1.commit and "v2.0" not in hub.repo(REPO).tags


# ---------------------------------------------------------------------------------------------
# Preflight (before any money is spent) and idempotent reruns
# ---------------------------------------------------------------------------------------------


def test_preflight_passes_for_a_writable_target_and_a_free_tag(first: tuple[FakeHub, PublishResult]) -> None:
    from glan_dataset.publishing import preflight

    hub, v1 = first
    hub.requests.clear()
    assert isinstance(preflight(f"hf://{REPO}", tag="v2.0"), HubTarget)
    preflight("hf://org/new-dataset", tag="v1.0")  # a repo to create in a namespace the token may write to
    preflight(f"hf://{REPO}", tag="v1.0")  # the tag names the head: a rerun of the release that landed
    assert hub.mutating_requests() == [] and hub.unhandled == []


@pytest.mark.parametrize("case", ["no-token", "read-token", "read-only-org", "foreign-namespace", "tag-taken"])
def test_preflight_refuses_in_one_line_and_writes_nothing(
    first: tuple[FakeHub, PublishResult], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    from glan_dataset.publishing import preflight
    from glan_dataset.publishing.publish import publish_run
    from tests.publishing_support import make_run

    hub, v1 = first
    repo, tag = REPO, "v2.0"
    if case == "no-token":
        monkeypatch.delenv("HF_TOKEN")
    elif case == "read-token":
        hub.token_role = "read"
    elif case == "read-only-org":
        hub.org_roles["org"] = "read"
    elif case == "foreign-namespace":
        repo = "someone-else/glan"
    else:  # the tag exists on an older commit
        hub.push_direct(REPO, {"notes.md": b"a later commit"}, title="a later change")
        tag = "v1.0"
    hub.requests.clear()
    with pytest.raises(GlanError) as caught:
        preflight(f"hf://{repo}", tag=tag)
    message = str(caught.value)
    assert "\n" not in message and DEFAULT_TOKEN not in message
    expected = {
        "no-token": "HF_TOKEN",
        "read-token": "read-only",
        "read-only-org": "read-only access to 'org'",
        "foreign-namespace": "not a member of 'someone-else'",
        "tag-taken": "tag 'v1.0' already exists",
    }[case]
    assert expected in message

    # publish_run checks the same before it stages a single shard
    run = make_run(tmp_path / "run", per_discipline=4, disciplines=["physics"])
    with pytest.raises(GlanError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        publish_run(run, f"hf://{repo}", tag=tag, quiet=True)
    assert hub.mutating_requests() == [] and not list(run.glob(".publish-*"))


def test_a_tag_that_failed_after_its_commit_is_retried_without_a_second_commit_or_entry(
    fake_hub: FakeHub, tmp_path: Path
) -> None:
    from glan_dataset.publishing.publish import publish_run
    from tests.publishing_support import make_run

    run = make_run(tmp_path / "run", per_discipline=6, disciplines=["physics", "history"])
    publish_run(run, f"hf://{REPO}", tag="v1.0", quiet=True)
    fake_hub.fail_next["create_tag"] = 500
    with pytest.raises(HubError, match="committed .* but .*500"):
        _republish_changed(run)  # physics changed: v1.1 is committed, then its tag fails
    head = fake_hub.head(REPO)
    assert "v1.1" not in fake_hub.repo(REPO).tags

    fake_hub.requests.clear()
    result = publish_run(run, f"hf://{REPO}", tag="v1.1", quiet=True)
    assert result.plan.is_empty and result.commit == head
    assert [r.kind for r in fake_hub.mutating_requests()] == ["create_tag"]
    assert fake_hub.repo(REPO).tags["v1.1"] == head
    releases = json.loads(fake_hub.files(REPO)["releases.json"])["releases"]
    assert [r["version"] for r in releases] == ["v1.0", "v1.1"]

    # and once more: the release is complete, nothing is sent at all
    fake_hub.requests.clear()
    assert publish_run(run, f"hf://{REPO}", tag="v1.1", quiet=True).plan.is_empty
    assert fake_hub.mutating_requests() == []


def _republish_changed(run: Path) -> None:
    from glan_dataset.publishing.publish import publish_run
    from tests.publishing_support import make_records, write_clean

    write_clean(run, "physics", make_records("physics", 7, salt="b"))
    publish_run(run, f"hf://{REPO}", tag="v1.1", quiet=True)


def test_quiet_publish_shows_no_upload_bars(fake_hub: FakeHub, tmp_path: Path) -> None:
    from tests.fakes.hub_fixture import hub_env
    from tests.publishing_support import make_run

    run = make_run(tmp_path / "run", per_discipline=6, disciplines=["physics"])
    env = hub_env(fake_hub, tmp_path / "hf-home")
    env.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
    command = [sys.executable, "-m", "glan_dataset", "publish", str(run), "--to", f"hf://{REPO}"]
    loud = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert loud.returncode == 0, loud.stderr
    assert "Upload 3 LFS files" in loud.stderr  # huggingface_hub's bars, which --quiet must silence
    from tests.publishing_support import make_records, write_clean

    write_clean(run, "physics", make_records("physics", 7, salt="b"))
    quiet = subprocess.run([*command, "--quiet"], env=env, capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout == "" and quiet.stderr == ""
    assert "LFS" not in quiet.stderr
    assert_clean(fake_hub, loud.stdout, loud.stderr)
