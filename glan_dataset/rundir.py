"""The run directory: where every stage reads its input and writes its output (DESIGN.md section 3).

A stage file for a discipline is written once, atomically, when it is complete: readers never see a
half-written file, and "the file exists" is the resume test for a finished stage. Which stage folders
exist is for the steps to say (``glan_dataset.stages.STAGES``); this module only knows the paths.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from glan_dataset.errors import UsageError


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

    @property
    def records_stage(self) -> str:
        """The stage folder of the finished records, as the last generation recorded it in run.json
        (``records``; ``conversations`` with follow-up turns)."""
        return str(self.read_run_json().get("records_stage") or "records")

    def records_file(self, discipline: str) -> Path:
        return self.stage_file(self.records_stage, discipline)

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

    def record_disciplines(self, stage: str | None = None) -> list[str]:
        """Slugs of the disciplines with finished records (in ``stage``, default :attr:`records_stage`)."""
        return sorted(p.stem for p in self.stage_dir(stage or self.records_stage).glob("*.parquet"))

    @property
    def prices(self) -> Path:
        """Prices (USD per million tokens) given to ``--price``, remembered for later runs, plan and card."""
        return self.root / "prices.json"

    def read_run_json(self) -> dict[str, Any]:
        """run.json as a dict ({} when there is none); a damaged one is a one-line UsageError naming it."""
        if not self.run_json.exists():
            return {}
        try:
            data = json.loads(self.run_json.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise UsageError(
                f"{self.run_json} is damaged (not JSON: {type(error).__name__}); restore it from a copy, or move it "
                "aside and run `glan generate` with the same settings again to rebuild it (paid calls come from the cache)"
            ) from None
        if not isinstance(data, dict):
            raise UsageError(f"{self.run_json} is not a glan run manifest (a JSON object); restore it or move it aside")
        return data


def read_prices(run: RunDir) -> dict[str, tuple[float, float]]:
    """``RUN/prices.json`` as ``{model: (in, out)}`` ({} when there is none)."""
    path = run.prices
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {str(model): (float(pair[0]), float(pair[1])) for model, pair in data["prices"].items()}
    except (ValueError, UnicodeDecodeError, KeyError, TypeError, IndexError, AttributeError):
        raise UsageError(f"{path} does not hold prices as MODEL: [IN, OUT]; fix or delete it") from None


def write_prices(run: RunDir, prices: dict[str, tuple[float, float]]) -> None:
    write_json_atomic(run.prices, {"prices": {model: list(pair) for model, pair in sorted(prices.items())}})


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target`` in one rename.

    The writer creates the file itself, so it gets the permissions of any file the process makes (no
    umask read, which would briefly change the process-wide mask: stage files are written from
    worker threads). The random name keeps concurrent writers of one target apart."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    try:
        yield tmp_path
        with open(tmp_path, "rb") as written:  # on disk before it takes the target's name
            os.fsync(written.fileno())
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


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
