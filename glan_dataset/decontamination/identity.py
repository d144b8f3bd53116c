"""Staleness by content: what a clean file was made from, recorded in the file itself.

Every ``RUN/clean/<discipline>.parquet`` carries, in its parquet metadata (key ``CLEAN_META_KEY``),
the identity of the records file it was made from (``StageMeta.identity``; a records file without
stage metadata is identified by its sha256) and the decontamination identity (settings + the exact
benchmark items, ``report.decontamination_identity``). ``report.json`` records both too.

``stale_disciplines`` compares those identities with what the run holds now. File modification
times never matter, so a run directory copied in any order (``cp -r``, ``rsync``, a restored backup)
publishes the same thing, and clean files of two decontamination settings (an interrupted re-run)
are never taken for one dataset.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ValidationError

from glan_dataset.decontamination.report import DecontaminationReport, load_report
from glan_dataset.errors import UsageError
from glan_dataset.rundir import RunDir
from glan_dataset.stages.store import META_KEY, StageMeta

CLEAN_META_KEY = "glan_dataset_clean"


class CleanMeta(BaseModel):
    """What one clean file was made from."""

    discipline: str
    records_identity: str
    decontamination_identity: str


def _metadata(path: Path, what: str, fix: str) -> dict[bytes, bytes]:
    """The parquet footer's key-value metadata (what polars' ``metadata=`` and pyarrow's schema metadata write)."""
    try:
        return dict(pq.read_metadata(path).metadata or {})
    except (OSError, pa.ArrowException) as error:
        raise UsageError(f"{what} {path} is unreadable or corrupt ({type(error).__name__}): {fix}") from None


def records_identity(path: str | Path) -> str:
    """The identity of a records file: its ``StageMeta.identity``, else the sha256 of its bytes."""
    path = Path(path)
    fix = "re-run `glan generate` for that discipline (or delete the file)"
    raw = _metadata(path, "records file", fix).get(META_KEY.encode())
    if raw:
        try:
            return StageMeta.model_validate_json(raw).identity
        except ValidationError:
            raise UsageError(f"records file {path} has corrupt stage metadata: {fix}") from None
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return f"sha256:{sha.hexdigest()[:24]}"


def clean_schema(schema: pa.Schema, meta: CleanMeta) -> pa.Schema:
    """``schema`` with the clean file's identity added to its metadata (the rest kept)."""
    return schema.with_metadata({**(schema.metadata or {}), CLEAN_META_KEY.encode(): meta.model_dump_json().encode()})


def clean_meta(path: str | Path) -> CleanMeta | None:
    """The identity stamped on a clean file, or None if it has none (written by an older version)."""
    path = Path(path)
    fix = "run `glan decontaminate` again (it rewrites the clean files)"
    raw = _metadata(path, "clean file", fix).get(CLEAN_META_KEY.encode())
    if raw is None:
        return None
    try:
        return CleanMeta.model_validate_json(raw)
    except ValidationError:
        raise UsageError(f"clean file {path} has corrupt metadata: {fix}") from None


def stale_disciplines(run: RunDir, report: DecontaminationReport | None = None) -> list[str]:
    """Disciplines whose clean file does not reflect the records and the report, by content.

    Stale: no clean file; a clean file made from another records file, with other settings or
    benchmarks than the report, or without an identity; a clean file or report entry whose records
    are gone; a report entry made from other records. Reads only parquet footers (and hashes
    records files that carry no stage metadata).
    """
    if report is None:
        report = load_report(run.decontamination_report)
    records = {path.stem: path for path in run.stage_dir("records").glob("*.parquet")}
    clean = {path.stem: path for path in run.clean_dir.glob("*.parquet")} if run.clean_dir.is_dir() else {}
    entries = report.disciplines if report is not None else {}
    stale: set[str] = set(clean) - set(records)
    stale |= set(entries) - set(records)
    for discipline, path in records.items():
        if discipline not in clean:
            stale.add(discipline)
            continue
        meta = clean_meta(clean[discipline])
        entry = entries.get(discipline)
        current = records_identity(path)
        if (
            meta is None
            or report is None
            or entry is None
            or meta.records_identity != current
            or entry.records_identity != current
            or meta.decontamination_identity != report.identity
        ):
            stale.add(discipline)
    return sorted(stale)
