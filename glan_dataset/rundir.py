"""The run directory: where every stage reads its input and writes its output (DESIGN.md section 3).

A stage file for a discipline is written once, atomically, when it is complete: readers never see a
half-written file, and "the file exists" is the resume test for a finished stage. Which stage folders
exist is for the steps to say (``glan_dataset.stages.STAGES``); this module only knows the paths.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class RunDir:
    """Paths inside one run directory. Creating the object creates nothing on disk."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # settings and snapshots
    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def taxonomy(self) -> Path:
        return self.root / "taxonomy.yaml"

    @property
    def llm_cache(self) -> Path:
        return self.root / "llm-cache.sqlite"

    @property
    def failures(self) -> Path:
        return self.root / "failures.jsonl"

    @property
    def batches_dir(self) -> Path:
        return self.root / "batches"

    # stage outputs
    def stage_dir(self, stage: str) -> Path:
        return self.root / stage

    def stage_file(self, stage: str, discipline: str) -> Path:
        return self.root / stage / f"{discipline}.parquet"

    def records_file(self, discipline: str) -> Path:
        return self.stage_file("records", discipline)

    # decontamination
    @property
    def clean_dir(self) -> Path:
        """Decontaminated and de-duplicated records, one file per discipline (what publishing reads)."""
        return self.root / "clean"

    def clean_file(self, discipline: str) -> Path:
        return self.clean_dir / f"{discipline}.parquet"

    @property
    def decontamination_dir(self) -> Path:
        return self.root / "decontamination"

    @property
    def decontamination_report(self) -> Path:
        return self.decontamination_dir / "report.json"

    @property
    def decontamination_removed(self) -> Path:
        return self.decontamination_dir / "removed.parquet"

    def record_disciplines(self) -> list[str]:
        """Slugs of the disciplines whose records are complete."""
        return sorted(p.stem for p in self.stage_dir("records").glob("*.parquet"))

    def read_run_json(self) -> dict[str, Any]:
        if not self.run_json.exists():
            return {}
        return json.loads(self.run_json.read_text(encoding="utf-8"))


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target`` in one rename."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file private; give it the permissions an ordinary file would get
        os.chmod(tmp_path, 0o666 & ~_umask())
        with open(tmp_path, "rb") as written:  # on disk before it takes the target's name
            os.fsync(written.fileno())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    """The process umask (reading it means setting it; restore at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomic(target: str | Path, text: str) -> None:
    """UTF-8, written as given (no newline translation: a CSV keeps its line endings)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="")


def write_bytes_atomic(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(target: str | Path, data: Any) -> None:
    write_text_atomic(target, json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def write_parquet_atomic(target: str | Path, frame: Any) -> None:
    """Write a polars DataFrame as parquet (zstd) atomically."""
    with atomic_path(target) as tmp:
        frame.write_parquet(tmp, compression="zstd")
