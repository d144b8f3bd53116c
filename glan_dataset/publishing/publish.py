"""``publish_run``: from a decontaminated run directory to a published dataset repository.

Steps: split (GLAN-Test) and write the shards into a temporary staging folder; compare with what
the target holds to learn which disciplines changed; append a release to the target's
``releases.json``; render the chart and the card; plan again (now with every file) and let the
target apply the plan. Nothing is written to the target before the plan is complete, and with
``dry_run`` nothing is written at all.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console

from glan_dataset.errors import UsageError
from glan_dataset.publishing.card import DEFAULT_LICENSE, CardInputs, field_counts, render_card
from glan_dataset.publishing.chart import CHART_PATH, render_records_per_field
from glan_dataset.publishing.layout import DEFAULT_MAX_SHARD_SIZE, StagedData, write_layout
from glan_dataset.publishing.releases import RELEASES_FILE, dump_releases, load_releases, next_release
from glan_dataset.publishing.split import DEFAULT_TEST_PER_DISCIPLINE, iter_clean_splits
from glan_dataset.publishing.targets import HUB_SCHEME, PublishPlan, PublishResult, parse_target, plan_publish
from glan_dataset.rundir import RunDir, write_text_atomic

CARD_EXTRA_FILE = "card_extra.md"
"""``RUN/card_extra.md``: the maintainer's extra card text, kept so later publishes reuse it."""
DEFAULT_TARGET_DIR = "published"
_LICENSE_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789.-+")


def stale_clean_disciplines(run: RunDir) -> list[str]:
    """Disciplines whose RUN/clean file does not reflect RUN/records and the decontamination report.

    By content, never by clock: each clean file records the identity of the records file and of the
    decontamination (settings + benchmark items) it was made with, and must match both the records
    now in the run and the report. Publishing a stale one would ship data that was never
    decontaminated, a discipline that was removed, or clean files of two settings under one card.
    A corrupt report or clean file is a one-line ``UsageError``.
    """
    from glan_dataset.decontamination.identity import stale_disciplines

    return stale_disciplines(run)


def default_target(run_dir: str | Path) -> Path:
    """Where ``glan publish RUN`` goes without ``--to``: ``RUN/published``."""
    return Path(run_dir) / DEFAULT_TARGET_DIR


def publish_run(
    run_dir: str | Path,
    target_spec: str | Path | None = None,
    *,
    license: str = DEFAULT_LICENSE,  # noqa: A002 - the Hub's metadata key
    tag: str | None = None,
    message: str | None = None,
    max_shard_size: str | int = DEFAULT_MAX_SHARD_SIZE,
    test_per_discipline: int = DEFAULT_TEST_PER_DISCIPLINE,
    seed: int | None = None,
    card_extra: str | Path | None = None,
    pretty_name: str | None = None,
    dry_run: bool = False,
    quiet: bool = False,
    console: Console | None = None,
    **hub_options: Any,
) -> PublishResult:
    """Publish ``RUN/clean`` to a local folder (default ``RUN/published``) or ``hf://ORG/NAME``.

    ``seed`` defaults to the run's generation seed. ``card_extra`` replaces the stored extra text
    (``RUN/card_extra.md``); without it the stored text is used. ``hub_options`` go to the Hub
    target (``private``, ``create_pr``, ``revision``).
    """
    run = RunDir(run_dir)
    console = console or Console()
    if not run.clean_dir.is_dir() or not any(run.clean_dir.glob("*.parquet")):
        raise UsageError(
            f"{run.root} has no decontaminated records (RUN/clean): run `glan decontaminate {run.root}` first"
        )
    stale = stale_clean_disciplines(run)
    if stale:
        listed = ", ".join(stale[:5]) + (f" and {len(stale) - 5} more" if len(stale) > 5 else "")
        raise UsageError(
            f"decontamination is out of date for {listed} (records generated, changed or removed since it ran): "
            f"run `glan decontaminate {run.root}` again, then publish"
        )
    manifest = run.read_run_json()
    demo = bool(manifest.get("demo"))
    spec = str(target_spec) if target_spec is not None else str(default_target(run.root))
    if demo and spec.startswith(HUB_SCHEME):
        raise UsageError("demo data is placeholder text; publish it to a local folder")
    _check_license(license)
    if test_per_discipline < 0:
        raise UsageError("--test-per-discipline must be 0 or more")
    if seed is None:
        seed = int((manifest.get("settings") or {}).get("seed", 0))
    extra = _card_extra(run, card_extra, store=not dry_run)
    target = parse_target(spec, **hub_options)

    # Staged beside the run (same disk, which holds the data anyway; /tmp may be too small for 20 GB).
    with tempfile.TemporaryDirectory(prefix=".publish-", dir=run.root) as tmp:
        staging = Path(tmp)
        staged = write_layout(
            iter_clean_splits(run.clean_dir, test_per_discipline=test_per_discipline, seed=seed),
            staging,
            max_shard_size=max_shard_size,
            taxonomy_path=run.taxonomy,
            decontamination_report=run.decontamination_report,
            test_per_discipline=test_per_discipline,
            seed=seed,
        )
        existing = target.existing_files()
        changed, removed = _changed_disciplines(plan_publish(staging, existing), staged)
        previous = load_releases(target.read_file(RELEASES_FILE))
        releases = list(previous)
        new_release = bool(changed or removed or tag or not previous)
        if new_release:
            releases.append(
                next_release(
                    previous,
                    tag=tag,
                    message=message or "",
                    train=staged.total("train"),
                    test=staged.total("test"),
                    disciplines=len(staged.disciplines),
                    changed=changed,
                    removed=removed,
                )
            )
        (staging / RELEASES_FILE).write_bytes(dump_releases(releases))
        render_records_per_field(field_counts(staged), staging / CHART_PATH, demo=demo)
        card = CardInputs(
            staged=staged,
            run=manifest,
            decontamination=_read_json(run.decontamination_report),
            releases=releases,
            license=license,
            dataset_id=_dataset_id(spec),
            on_hub=spec.startswith(HUB_SCHEME),
            extra=extra,
            pretty_name=pretty_name,
            demo=demo,
        )
        (staging / "README.md").write_text(render_card(card), encoding="utf-8")
        plan = plan_publish(staging, existing, read_remote=target.read_file)
        version = releases[-1].version if new_release else None
        commit_message = message or _default_message(staged, version, changed, removed)
        if plan.is_empty and tag is None:
            result = PublishResult(target=target.description, plan=plan, dry_run=dry_run)
        else:
            result = target.publish(staging, plan, message=commit_message, tag=tag, dry_run=dry_run)
    if not quiet:
        print_result(result, console)
    return result


def _dataset_id(spec: str) -> str:
    """What the card's ``load_dataset`` examples name: ``ORG/NAME`` on the Hub, else the folder's absolute path."""
    if spec.startswith(HUB_SCHEME):
        return spec[len(HUB_SCHEME) :].strip("/").split("@", 1)[0]
    return str(Path(spec).expanduser().absolute())


def _changed_disciplines(plan: PublishPlan, staged: StagedData) -> tuple[list[str], list[str]]:
    """Disciplines whose shards this publish adds, rewrites or deletes; and those that disappear."""
    touched = {p.split("/")[1] for p in plan.changes if p.startswith("data/") and p.count("/") >= 2}
    removed = sorted(d for d in touched if d not in staged.disciplines)
    return sorted(touched - set(removed)), removed


def _default_message(staged: StagedData, version: str | None, changed: list[str], removed: list[str]) -> str:
    head = f"Publish {version}: " if version else "Update the card: "
    body = f"{staged.total():,} records in {len(staged.disciplines)} disciplines"
    if changed or removed:
        body += f" ({len(changed)} changed, {len(removed)} removed)"
    return head + body


def _card_extra(run: RunDir, card_extra: str | Path | None, *, store: bool) -> str | None:
    """The extra card text: the given file (copied into the run so later publishes keep it), else the stored copy."""
    stored = run.root / CARD_EXTRA_FILE
    if card_extra is not None:
        path = Path(card_extra)
        if not path.is_file():
            raise UsageError(f"--card-extra {path}: no such file")
        text = path.read_text(encoding="utf-8")
        if store:
            write_text_atomic(stored, text)
        return text
    return stored.read_text(encoding="utf-8") if stored.is_file() else None


def _check_license(license: str) -> None:  # noqa: A002
    if not license or not set(license) <= _LICENSE_CHARS:
        raise UsageError(
            f"bad --license {license!r}: use a Hub license id in lower case, "
            "e.g. apache-2.0, mit, cc-by-4.0, odc-by, other"
        )


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def print_result(result: PublishResult, console: Console) -> None:
    """The plan (every added, updated and deleted file; unchanged ones counted) and what happened."""
    plan = result.plan
    verb = "would publish" if result.dry_run else "published"
    console.print(
        f"[bold]{result.target}[/bold]" + (" [yellow](dry run: nothing written)[/yellow]" if result.dry_run else "")
    )
    for label, style, paths in (
        ("add", "green", plan.add),
        ("update", "cyan", plan.update),
        ("delete", "red", plan.delete),
    ):
        for path in paths:
            console.print(f"  [{style}]{label:<6}[/{style}] {path}", highlight=False)
    console.print(f"  {len(plan.unchanged)} file(s) unchanged", highlight=False)
    if result.dry_run:
        return
    if plan.is_empty and result.tag is None:
        console.print("nothing changed: nothing published")
        return
    details = [f"{len(plan.changes)} file(s) {verb}"]
    if result.commit:
        details.append(f"commit {result.commit}")
    if result.tag:
        details.append(f"tag {result.tag}")
    if result.url:
        details.append(result.url)
    console.print(", ".join(details), highlight=False)
