"""The GLAN-Test questions to evaluate on: the ``test`` split of one config of a GLAN dataset.

A dataset is named three ways, as users hold it: a run directory (its decontaminated records, split
exactly as ``glan publish`` splits them), a published folder, or a Hub repo id (both read with
``datasets.load_dataset``, the way every consumer reads them). Each question keeps its discipline,
sub-field and field, so results can be aggregated per taxonomy node.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import polars as pl

from glan_dataset.errors import UsageError
from glan_dataset.publishing.layout import Names, taxonomy_names
from glan_dataset.publishing.split import DEFAULT_TEST_PER_DISCIPLINE, iter_clean_splits
from glan_dataset.rundir import RunDir

TEST_COLUMNS: tuple[str, ...] = ("id", "field", "subfield", "discipline", "question", "answer", "answer_model")
_HUB_ID = re.compile(r"^(hf://)?(datasets/)?[A-Za-z0-9][\w.-]*/[\w.-]+$")

SourceKind = Literal["run", "folder", "hub"]


@dataclass
class TestSet:
    """The questions of one config's test split (``frame`` has :data:`TEST_COLUMNS`, sorted by id)."""

    __test__ = False  # not a pytest class

    frame: pl.DataFrame
    source: str
    kind: SourceKind
    config: str
    names: Names = field(default_factory=Names)
    run_dir: Path | None = None

    def __len__(self) -> int:
        return self.frame.height


def source_kind(dataset: str) -> SourceKind:
    """What ``dataset`` names: a run directory, a published folder or a Hub repo id."""
    path = Path(dataset).expanduser()
    if path.is_dir():
        if (path / "run.json").is_file() or (path / "clean").is_dir():
            return "run"
        if (path / "README.md").is_file() and (path / "data").is_dir():
            return "folder"
        raise UsageError(
            f"{path} is neither a run directory (run.json, clean/) nor a published dataset folder "
            "(README.md, data/): pass one of those, or a Hub repo id ORG/NAME"
        )
    if _HUB_ID.match(dataset) and not path.exists():
        return "hub"
    raise UsageError(
        f"dataset {dataset!r} not found: pass a run directory, a published folder or a Hub repo id ORG/NAME"
    )


def load_test_set(
    dataset: str,
    config: str = "all",
    *,
    test_per_discipline: int = DEFAULT_TEST_PER_DISCIPLINE,
    revision: str | None = None,
) -> TestSet:
    """The test split of ``config`` (``all``, a field, a sub-field or a discipline slug) of ``dataset``."""
    kind = source_kind(dataset)
    if kind == "run":
        return _from_run(Path(dataset).expanduser(), config, test_per_discipline)
    if kind == "folder":
        folder = Path(dataset).expanduser().absolute()
        frame = _load_with_datasets(str(folder), config, revision=None)
        return TestSet(_tidy(frame), str(folder), kind, config, taxonomy_names(folder / "taxonomy.yaml"))
    repo_id = re.sub(r"^(hf://)?(datasets/)?", "", dataset)
    frame = _load_with_datasets(repo_id, config, revision=revision)
    return TestSet(_tidy(frame), repo_id, kind, config, _hub_names(repo_id, revision))


def _from_run(root: Path, config: str, test_per_discipline: int) -> TestSet:
    from glan_dataset.taxonomy import load_taxonomy

    run = RunDir(root)
    if not run.clean_dir.is_dir() or not any(run.clean_dir.glob("*.parquet")):
        raise UsageError(f"{root} has no decontaminated records (RUN/clean): run `glan decontaminate {root}` first")
    taxonomy = load_taxonomy(run.taxonomy if run.taxonomy.exists() else None)
    wanted = [d.slug for d in taxonomy.select(config)]  # UnknownConfigError names the closest configs
    seed = int((run.read_run_json().get("settings") or {}).get("seed", 0))
    tests = [
        split.test
        for split in iter_clean_splits(
            run.clean_dir, disciplines=wanted, test_per_discipline=test_per_discipline, seed=seed
        )
    ]
    if not tests or not sum(frame.height for frame in tests):
        raise UsageError(f"{root} has no test questions for config {config!r}: generate and decontaminate it first")
    return TestSet(_tidy(pl.concat(tests, how="diagonal_relaxed")), str(root), "run", config,
                   taxonomy_names(run.taxonomy), run_dir=root)  # fmt: skip


def _load_with_datasets(path: str, config: str, *, revision: str | None) -> pl.DataFrame:
    import datasets

    try:
        loaded = datasets.load_dataset(path, config, split="test", revision=revision)
    except ValueError as error:  # unknown config or split: datasets lists the valid ones in its message
        raise UsageError(f"cannot load the test split of config {config!r} from {path}: {_one_line(error)}") from None
    except FileNotFoundError as error:
        raise UsageError(f"cannot load {path}: {_one_line(error)}") from None
    return pl.from_arrow(loaded.select_columns([c for c in TEST_COLUMNS if c in loaded.column_names]).data.table)  # type: ignore[return-value]


def _tidy(frame: pl.DataFrame) -> pl.DataFrame:
    missing = [c for c in TEST_COLUMNS if c not in frame.columns and c != "answer_model"]
    if missing:
        raise UsageError(f"the test split lacks column(s) {', '.join(missing)}: is it a GLAN dataset?")
    if "answer_model" not in frame.columns:
        frame = frame.with_columns(pl.lit("").alias("answer_model"))
    return frame.select([pl.col(c).cast(pl.String) for c in TEST_COLUMNS]).unique(subset="id", keep="first").sort("id")


def _hub_names(repo_id: str, revision: str | None) -> Names:
    """Titles from the repo's ``taxonomy.yaml`` when it has one (slug-derived titles otherwise)."""
    try:
        from huggingface_hub import hf_hub_download

        with tempfile.TemporaryDirectory() as tmp:
            path = hf_hub_download(repo_id, "taxonomy.yaml", repo_type="dataset", revision=revision, local_dir=tmp)
            return taxonomy_names(Path(path))
    except Exception:  # noqa: BLE001 - only display names depend on it
        return Names()


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:300]
