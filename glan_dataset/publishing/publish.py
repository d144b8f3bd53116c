"""``publish_run``: from a decontaminated run directory to a published dataset repository.

Steps: split (GLAN-Test) and write the shards into a temporary staging folder; compare with what
the target holds to learn which disciplines changed; append a release to the target's
``releases.json``; render the chart and the card; plan again (now with every file) and let the
target apply the plan. Nothing is written to the target before the plan is complete, and with
``dry_run`` nothing is written at all.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from rich.console import Console

from glan_dataset.errors import GlanError, UsageError
from glan_dataset.evaluation.leaderboard import leaderboard_rows
from glan_dataset.publishing.card import DEFAULT_LICENSE, CardInputs, field_counts, render_card
from glan_dataset.publishing.chart import CHART_PATH, render_records_per_field
from glan_dataset.publishing.layout import DEFAULT_MAX_SHARD_SIZE, StagedData, write_layout
from glan_dataset.publishing.releases import RELEASES_FILE, dump_releases, load_releases, next_release
from glan_dataset.publishing.split import DEFAULT_TEST_PER_DISCIPLINE, iter_clean_splits
from glan_dataset.publishing.targets import (
    HUB_SCHEME,
    LocalFolderTarget,
    PublishPlan,
    PublishResult,
    PublishTarget,
    parse_target,
    plan_publish,
    preflight,
)
from glan_dataset.rundir import RunDir, write_json_atomic, write_text_atomic

CARD_EXTRA_FILE = "card_extra.md"
"""``RUN/card_extra.md``: the maintainer's extra card text, kept so later publishes reuse it."""
DEFAULT_TARGET_DIR = "published"
PRICES_FILE = "prices.json"
"""``RUN/prices.json``: prices given to ``glan publish --price`` (USD per million tokens), kept for later publishes."""
STAGING_PREFIX = ".publish-"
"""``RUN/.publish-<pid>-*``: the staging folder of a publish in progress (removed by the next one if left)."""
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


class MissingData(BaseModel):
    """What a run lacks for its config: the card's "missing from this release" and the refusal's reason."""

    no_records: list[str] = Field(default_factory=list)
    """Disciplines the config selects that have no records at all."""
    incomplete: dict[str, int] = Field(default_factory=dict)
    """Disciplines whose stage files are marked incomplete -> failed units counted for them in run.json."""
    outstanding_failures: int = 0
    """Lines in RUN/failures.jsonl: units that failed all their attempts and were not retried since."""

    @property
    def is_empty(self) -> bool:
        return not (self.no_records or self.incomplete or self.outstanding_failures)

    def summary(self) -> str:
        """One clause: '2 disciplines without records (x, y); failures outstanding in z (3 units)'."""
        parts = []
        if self.no_records:
            parts.append(f"{_count(len(self.no_records), 'discipline')} without records ({_listed(self.no_records)})")
        if self.incomplete:
            failed = sum(self.incomplete.values())
            units = f", {_count(failed, 'failed unit')}" if failed else ""
            parts.append(f"incomplete {_listed(sorted(self.incomplete))}{units}")
        if self.outstanding_failures and not self.incomplete:
            parts.append(f"{_count(self.outstanding_failures, 'failed unit')} outstanding in failures.jsonl")
        return "; ".join(parts)


def missing_data(run: RunDir, manifest: dict[str, Any]) -> MissingData:
    """Disciplines the run's config selects that are missing or incomplete, and outstanding failures."""
    from glan_dataset.stages import STAGES
    from glan_dataset.stages.store import StageStore

    have = set(run.record_disciplines())
    missing = MissingData()
    config = (manifest.get("settings") or {}).get("config")
    if config and run.taxonomy.is_file():
        from glan_dataset.taxonomy import load_taxonomy

        try:
            selected = {d.slug for d in load_taxonomy(run.taxonomy).select(config)}
        except GlanError:
            selected = set()  # a snapshot the config no longer selects from: the stale checks report it
        missing.no_records = sorted(selected - have)
    counts = manifest.get("counts") or {}
    store = StageStore(run)
    for discipline in sorted(have):
        for stage in STAGES:
            try:
                meta = store.meta(stage, discipline)
            except (OSError, ValueError) as error:
                raise UsageError(
                    f"{store.path(stage, discipline)} cannot be read ({type(error).__name__}): delete it and run "
                    f"`glan generate {run.root}` again to rebuild it"
                ) from None
            if meta is not None and not meta.complete:
                missing.incomplete[discipline] = int((counts.get(discipline) or {}).get("failures") or 0)
                break
    if run.failures.is_file():
        lines = run.failures.read_text(encoding="utf-8", errors="replace").splitlines()
        missing.outstanding_failures = sum(1 for line in lines if line.strip())
    return missing


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _listed(names: list[str], limit: int = 5) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


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
    allow_partial: bool = False,
    prices: list[str] | None = None,
    console: Console | None = None,
    **hub_options: Any,
) -> PublishResult:
    """Publish ``RUN/clean`` to a local folder (default ``RUN/published``) or ``hf://ORG/NAME``.

    A run whose config has disciplines without records, or units that failed (stage files marked
    incomplete, lines in ``failures.jsonl``), is refused unless ``allow_partial``: then the release
    is marked partial in ``releases.json`` and the card lists what is missing.
    ``prices`` (``MODEL=IN/OUT`` specs, as ``--price``) are remembered in ``RUN/prices.json`` and
    price the run's recorded token usage on the card.
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
    manifest = _read_manifest(run)
    missing = missing_data(run, manifest)
    if not missing.is_empty and not allow_partial:
        raise UsageError(
            f"{run.root} is partial: {missing.summary()}; run `glan generate {run.root}` again to retry "
            "(nothing paid is repeated), or publish with --allow-partial (the card then says what is missing)"
        )
    manifest = price_usage(manifest, _price_table(run, prices, store=not dry_run))
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
    # Token, write access, free tag, a writable folder: checked before any shard is written.
    target = parse_target(spec, **hub_options) if dry_run else preflight(spec, tag=tag, **hub_options)

    # Staged beside the run (same disk, which holds the data anyway; /tmp may be too small for 20 GB).
    _remove_stale_staging(run.root)
    try:
        return _stage_and_publish(
            run, target, spec, manifest, missing, extra, license=license, tag=tag, message=message,
            max_shard_size=max_shard_size, test_per_discipline=test_per_discipline, seed=seed,
            pretty_name=pretty_name, dry_run=dry_run, quiet=quiet, console=console, demo=demo,
        )  # fmt: skip
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        raise UsageError(
            f"cannot stage the release in {run.root}: {error.strerror or error}{where}; "
            "free some space or fix the folder's permissions, then publish again"
        ) from None


def _stage_and_publish(
    run: RunDir,
    target: PublishTarget,
    spec: str,
    manifest: dict[str, Any],
    missing: MissingData,
    extra: str | None,
    *,
    license: str,  # noqa: A002
    tag: str | None,
    message: str | None,
    max_shard_size: str | int,
    test_per_discipline: int,
    seed: int,
    pretty_name: str | None,
    dry_run: bool,
    quiet: bool,
    console: Console,
    demo: bool,
) -> PublishResult:
    """Write the release into a staging folder in the run, plan it against the target and apply the plan."""
    with tempfile.TemporaryDirectory(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=run.root) as tmp:
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
        previous = load_releases(target.read_file(RELEASES_FILE), source=f"{RELEASES_FILE} in {target.description}")
        releases = list(previous)
        tagged = tag is not None and any(r.tag == tag for r in previous)
        if tagged and (changed or removed):
            raise UsageError(
                f"tag {tag!r} is already a release of {target.description} with other data; choose a new --tag"
            )
        # A rerun of a release that landed (or whose tag failed after its commit) records nothing twice.
        new_release = bool(changed or removed or (tag and not tagged) or not previous)
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
                    missing=missing.model_dump() if not missing.is_empty else None,
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
            leaderboard=leaderboard_rows(run.root),
            missing=missing.model_dump() if not missing.is_empty else None,
        )
        (staging / "README.md").write_text(render_card(card), encoding="utf-8")
        plan = plan_publish(staging, existing, read_remote=target.read_file)
        version = releases[-1].version if new_release else None
        commit_message = message or _default_message(staged, version, changed, removed)
        if plan.is_empty and tag is None:
            result = PublishResult(target=target.description, plan=plan, dry_run=dry_run)
            if isinstance(target, LocalFolderTarget) and not dry_run:
                target.clean_leftovers()  # a rerun after a kill that came once the release had landed
        else:
            with _hub_progress_silenced(quiet and spec.startswith(HUB_SCHEME)):
                result = target.publish(staging, plan, message=commit_message, tag=tag, dry_run=dry_run)
    if not quiet:
        print_result(result, console)
    return result


@contextmanager
def _hub_progress_silenced(silence: bool) -> Iterator[None]:
    """huggingface_hub's upload bars off for the duration (``--quiet``), then as they were."""
    if not silence:
        yield
        return
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            enable_progress_bars()


def _remove_stale_staging(root: Path) -> None:
    """Staging folders left in the run by a killed publish (their process is gone) are removed."""
    for folder in root.glob(f"{STAGING_PREFIX}*"):
        pid = folder.name[len(STAGING_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
        text = _read_text(path, "--card-extra: give a UTF-8 Markdown file")
        if store:
            write_text_atomic(stored, text)
        return text
    return _read_text(stored, "fix it or delete it, or give --card-extra") if stored.is_file() else None


def _read_text(path: Path, fix: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{path} cannot be read as UTF-8 text ({type(error).__name__}): {fix}") from None


def _check_license(license: str) -> None:  # noqa: A002
    if not license or not set(license) <= _LICENSE_CHARS:
        raise UsageError(
            f"bad --license {license!r}: use a Hub license id in lower case, "
            "e.g. apache-2.0, mit, cc-by-4.0, odc-by, other"
        )


def _read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from the run directory, ``None`` if absent; a corrupt file is one line naming it."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as error:
        raise UsageError(
            f"{path} cannot be read ({type(error).__name__}): restore it, or rerun the step that writes it"
        ) from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} is not a JSON object: restore it, or rerun the step that writes it")
    return data


def _price_table(run: RunDir, specs: list[str] | None, *, store: bool) -> Any:
    """Prices remembered in ``RUN/prices.json``, updated with ``specs`` (which win) and stored again."""
    from glan_dataset.llm.cost import PriceTable

    path = run.root / PRICES_FILE
    stored = _read_json(path) or {}
    try:
        known = PriceTable.model_validate({"prices": stored.get("prices", {})})
    except ValueError:
        raise UsageError(f"{path} does not hold prices as MODEL: [IN, OUT]; fix or delete it") from None
    given = PriceTable.parse(specs or [])
    table = PriceTable(prices={**known.prices, **given.prices})
    if store and given.prices:
        write_json_atomic(path, {"prices": {m: list(p) for m, p in sorted(table.prices.items())}})
    return table


def price_usage(manifest: dict[str, Any], prices: Any) -> dict[str, Any]:
    """run.json with its recorded usage priced by ``prices`` where they name the model (tokens are kept
    in run.json, dollars are derived), so a price given after generation still shows a cost."""
    from dataclasses import fields

    from glan_dataset.llm.cost import UsageEntry

    usage = manifest.get("usage")
    if not prices.prices or not isinstance(usage, dict):
        return manifest
    names = {f.name for f in fields(UsageEntry)}
    priced: dict[str, Any] = {**usage}
    for table in ("session", "cumulative"):
        entries = []
        for entry in usage.get(table) or []:
            if isinstance(entry, dict) and entry.get("model") in prices.prices:
                counters = UsageEntry(**{k: int(v) for k, v in entry.items() if k in names and isinstance(v, int)})
                entry = {**entry, "cost_usd": counters.cost(prices, entry["model"])}
            entries.append(entry)
        priced[table] = entries
        costs = [e.get("cost_usd") for e in entries if isinstance(e, dict) and (e.get("calls") or e.get("batch_calls"))]
        key = f"{table}_cost_usd"
        if entries:
            priced[key] = None if any(c is None for c in costs) else sum(costs)
    return {**manifest, "usage": priced}


def _read_manifest(run: RunDir) -> dict[str, Any]:
    return _read_json(run.run_json) or {}


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
