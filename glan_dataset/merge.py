"""Combine run directories made on different machines (``glan generate --shard I/N``) into one.

At 10M pairs a run is split across machines by discipline; publishing needs one run directory. A
merge copies every source's stage files, adds its cached responses to the target's cache (so a
later ``generate`` on the merged run pays for nothing twice) and its token usage to the run's cost.
Everything is checked before anything is written: the sources must share the taxonomy and the
generation settings, and a discipline present in two sources must have identical files.

``RUN/merged-sources.json`` records where each stage file came from and how much of each source's
usage was already added: merging a shard again after it retried its failures replaces its files and
counts its new calls once and its old ones not again.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import glan_dataset
from glan_dataset.errors import UsageError
from glan_dataset.llm import PriceTable
from glan_dataset.llm.cache import ResponseCache
from glan_dataset.llm.cost import UsageEntry, UsageLedger
from glan_dataset.locking import MERGE_LOCK, RunLocks
from glan_dataset.rundir import RunDir, atomic_path, write_json_atomic
from glan_dataset.settings import RunManifest
from glan_dataset.stages import STAGES
from glan_dataset.stages.store import StageStore

MERGED_SOURCES = "merged-sources.json"


class MergeReport(BaseModel):
    target: str
    copied: dict[str, list[str]]  # stage -> disciplines copied
    identical: int  # stage files already present with the same content
    responses_added: int
    disciplines: list[str]


def _manifest(run: RunDir) -> RunManifest:
    data = run.read_run_json()
    if not data:
        raise UsageError(
            f"{run.root} is not a glan run directory (no run.json); pass run directories made by glan generate"
        )
    return RunManifest.model_validate(data)


def _comparable(manifest: RunManifest) -> dict[str, Any]:
    """What must be equal for two runs to be one dataset: everything but the config they selected."""
    return {
        "settings": manifest.settings.model_dump(exclude={"config"}),
        "taxonomy": manifest.taxonomy_hash,
        "prompt_version": manifest.prompt_version,
        "demo": manifest.demo,
    }


def _check_compatible(reference: tuple[Path, RunManifest], others: list[tuple[Path, RunManifest]]) -> None:
    expected = _comparable(reference[1])
    for path, manifest in others:
        found = _comparable(manifest)
        for key in expected:
            if found[key] != expected[key]:
                detail = key
                if key == "settings":
                    differing = [k for k in expected[key] if expected[key][k] != found[key].get(k)]
                    detail = f"settings ({', '.join(differing)})"
                raise UsageError(
                    f"{path} and {reference[0]} differ in {detail}: only runs made with the same taxonomy, "
                    "prompts and generation settings can be merged"
                )


def _plan_copies(
    sources: list[RunDir], target: RunDir, origins: dict[str, str]
) -> tuple[list[tuple[RunDir, str, str]], int]:
    """(source, stage, discipline) files to copy, and how many are already identical; refuses conflicts.

    A target file may be replaced only by the source it was merged from (that shard moved on, e.g. it
    retried its failures); a different file from any other run is a conflict.
    """
    target_store = StageStore(target)
    chosen: dict[tuple[str, str], tuple[RunDir, str]] = {}
    identical = 0
    for source in sources:
        store = StageStore(source)
        source_key = _key(source)
        for stage in STAGES:
            for path in sorted(source.stage_dir(stage).glob("*.parquet")):
                discipline = path.stem
                meta = store.meta(stage, discipline)
                if meta is None:
                    continue
                identity = meta.identity
                existing = target_store.meta(stage, discipline)
                if existing is not None:
                    if existing.identity == identity:
                        identical += 1
                        continue
                    if origins.get(f"{stage}/{discipline}") != source_key:
                        raise _conflict(stage, discipline, source.root, target.root)
                previous = chosen.get((stage, discipline))
                if previous is None:
                    chosen[(stage, discipline)] = (source, identity)
                elif previous[1] == identity:
                    identical += 1
                else:
                    raise _conflict(stage, discipline, previous[0].root, source.root)
    return [(source, stage, discipline) for (stage, discipline), (source, _) in chosen.items()], identical


def _conflict(stage: str, discipline: str, one: Path, other: Path) -> UsageError:
    return UsageError(
        f"{stage}/{discipline}.parquet differs between {one} and {other}; "
        "merge runs whose disciplines do not overlap (glan generate --shard I/N)"
    )


def _key(run: RunDir) -> str:
    return str(run.root.resolve())


def merge_runs(sources: Sequence[str | Path], target: str | Path) -> MergeReport:
    """Merge ``sources`` into ``target`` (created if missing; an existing compatible run is extended).

    One merge into a target at a time (``RUN/locks/merge.lock``; a second one stops at once, naming the
    holder): the target's ledger of what it already absorbed is read, extended and written back, and two
    merges of one source at once would count its usage twice."""
    target_run = RunDir(target)
    source_runs = [RunDir(s) for s in sources]
    if not source_runs:
        raise UsageError("name at least one run directory to merge")
    resolved = {run.root.resolve() for run in source_runs}
    if target_run.root.resolve() in resolved:
        raise UsageError(f"{target_run.root} is both a source and the target; merge into another directory")
    created = not target_run.root.exists()
    try:
        with RunLocks(target_run.root).alone(MERGE_LOCK, action="merged into"):
            return _merge_locked(source_runs, target_run)
    except UsageError:
        if created:  # a refusal leaves no target behind (the lock made the folder)
            shutil.rmtree(target_run.root, ignore_errors=True)
        raise


def _merge_locked(source_runs: list[RunDir], target_run: RunDir) -> MergeReport:
    manifests = [(run.root, _manifest(run)) for run in source_runs]
    existing = _manifest(target_run) if target_run.run_json.exists() else None
    reference = (target_run.root, existing) if existing is not None else manifests[0]
    _check_compatible(reference, manifests)
    ledger_path = target_run.root / MERGED_SOURCES
    ledger: dict[str, Any] = json.loads(ledger_path.read_text()) if ledger_path.exists() else {}
    usage_seen: dict[str, list[list[Any]]] = ledger.setdefault("usage", {})
    origins: dict[str, str] = ledger.setdefault("files", {})
    copies, identical = _plan_copies(source_runs, target_run, origins)

    # nothing was written so far: every refusal above leaves the target as it was
    target_run.root.mkdir(parents=True, exist_ok=True)
    first = source_runs[0]
    if not target_run.taxonomy.exists() and first.taxonomy.exists():
        _copy(first.taxonomy, target_run.taxonomy)
    copied: dict[str, list[str]] = {}
    for source, stage, discipline in copies:
        _copy(source.stage_file(stage, discipline), target_run.stage_file(stage, discipline))
        copied.setdefault(stage, []).append(discipline)
        origins[f"{stage}/{discipline}"] = _key(source)
    write_json_atomic(ledger_path, ledger)

    added = 0
    cache = ResponseCache(target_run.llm_cache)
    try:
        for source in source_runs:
            key = _key(source)
            if source.llm_cache.exists():
                counted = [tuple(row) for row in usage_seen.get(key, [])]
                rows, now = cache.absorb(source.llm_cache, counted)  # type: ignore[arg-type]
                added += rows
                usage_seen[key] = [list(row) for row in now]
                write_json_atomic(ledger_path, ledger)
            if source.failures.exists():
                with target_run.failures.open("a", encoding="utf-8") as out:
                    out.write(source.failures.read_text(encoding="utf-8"))
        usage_totals = cache.usage_totals()
    finally:
        cache.close()

    manifest = _merged_manifest(target_run, existing, [m for _, m in manifests], usage_totals)
    write_json_atomic(target_run.run_json, manifest.model_dump(mode="json"))
    return MergeReport(
        target=str(target_run.root),
        copied={stage: sorted(ds) for stage, ds in copied.items()},
        identical=identical,
        responses_added=added,
        disciplines=manifest.disciplines,
    )


def _merged_config(manifests: list[RunManifest]) -> str:
    configs = {manifest.settings.config for manifest in manifests}
    return configs.pop() if len(configs) == 1 else "all"


def _copy(source: Path, target: Path) -> None:
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def _merged_manifest(
    target: RunDir,
    existing: RunManifest | None,
    manifests: list[RunManifest],
    usage_totals: dict[tuple[str, str], UsageEntry],
) -> RunManifest:
    base = existing or manifests[0]
    counts = dict(base.counts)
    prices: dict[str, tuple[float, float]] = {}
    for manifest in [base, *manifests]:
        counts.update({d: c for d, c in manifest.counts.items() if d not in counts or c.records >= counts[d].records})
        prices.update({m: (p[0], p[1]) for m, p in manifest.usage.get("prices", {}).items()})
    usage = UsageLedger(PriceTable(prices=prices), usage_totals).to_dict()
    disciplines = target.record_disciplines()
    removed = sorted({d for m in [base, *manifests] for d in m.removed_disciplines} - set(disciplines))
    return base.model_copy(
        update={
            "glan_dataset_version": glan_dataset.__version__,
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "settings": base.settings.model_copy(update={"config": _merged_config([base, *manifests])}),
            "disciplines": disciplines,
            "removed_disciplines": removed,
            "counts": {d: c for d, c in counts.items() if d in disciplines},
            "usage": usage,
        }
    )
