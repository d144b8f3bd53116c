"""The repository layout: parquet shards per discipline and split, and the configs that read them.

What ``load_dataset`` sees (DESIGN.md section 5)::

    data/<discipline>/<split>-00000-of-0000N-<digest>.parquet
    README.md          configs (all / field / sub-field / discipline) + dataset_info, written by card.py
    taxonomy.yaml, decontamination_report.json

Every config points at discipline folders with globs, so a field's rows are its disciplines' files:
nothing is stored twice. A shard's name ends with a digest of its split's content, and every glob
names that digest: a card only ever matches the shards it was written for, so a reader that read the
previous card while a new release lands still loads exactly the previous rows (see targets.py), and an
unchanged discipline keeps its names (nothing to upload). Shards are written with fixed writer settings so the same rows always give
byte-identical files; the publish plan compares sha256, so an unchanged discipline is never
re-uploaded.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl

from glan_dataset.defaults import DEFAULT_MAX_SHARD_SIZE
from glan_dataset.errors import GlanError, UsageError
from glan_dataset.publishing.split import DisciplineSplit

MAX_ROW_GROUP_BYTES = 100 * 10**6
"""Uncompressed bytes per row group, as ``datasets`` does: the dataset viewer reads one row group per page."""
SHARD_DIGEST_CHARS = 10
"""Hex digits of the split digest in shard names (40 bits: collisions within one discipline are moot)."""
CDC_OPTIONS = {"min_chunk_size": 256 * 1024, "max_chunk_size": 1024 * 1024, "norm_level": 0}
"""Parquet content-defined chunking (the ``datasets`` default): an edited shard shares most of its
pages with the old one, so Xet storage on the Hub only uploads the changed chunks."""
SPLITS: tuple[str, ...] = ("train", "test")
ALL_CONFIG = "all"
TAXONOMY_FILE = "taxonomy.yaml"
DECONTAMINATION_FILE = "decontamination_report.json"

ConfigKind = Literal["all", "field", "subfield", "discipline"]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_UNITS = {
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}


def parse_size(value: str | int) -> int:
    """``"500MB"`` / ``"1GB"`` / ``"64MiB"`` / ``1000000`` -> bytes (decimal units, as ``datasets``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise UsageError(f"bad size {value!r}: use a number of bytes or e.g. 500MB, 1GB, 64MiB")
        size = int(float(match.group(1)) * _UNITS[(match.group(2) or "B").upper()])
    if size <= 0:
        raise UsageError(f"bad size {value!r}: it must be positive")
    return size


# --------------------------------------------------------------------------------------------
# Shards
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShardInfo:
    """One written parquet file."""

    path: str  # relative to the repository root, POSIX
    num_examples: int
    num_bytes: int  # uncompressed Arrow size, what dataset_info's num_bytes means
    size: int  # bytes on disk (download size)


@dataclass
class DisciplineData:
    """A discipline as published: where it sits in the taxonomy and its shards per split."""

    discipline: str
    field: str
    subfield: str
    shards: dict[str, list[ShardInfo]]
    near_duplicates_removed: int = 0
    cross_discipline_removed: int = 0

    def num_examples(self, split: str) -> int:
        return sum(s.num_examples for s in self.shards.get(split, []))

    def num_bytes(self, split: str) -> int:
        return sum(s.num_bytes for s in self.shards.get(split, []))

    @property
    def download_size(self) -> int:
        return sum(s.size for shards in self.shards.values() for s in shards)

    @property
    def folder(self) -> str:
        return f"data/{self.discipline}"


def record_arrow_table(frame: pl.DataFrame) -> Any:
    """A polars frame of records as an Arrow table with the canonical schema (no large_string)."""
    from glan_dataset.records import RECORD_COLUMNS, record_features

    schema = record_features().arrow_schema  # carries the "huggingface" features metadata
    return frame.select(RECORD_COLUMNS).to_arrow().cast(schema)


def write_split_shards(
    frame: pl.DataFrame, out_dir: Path, rel_dir: str, split: str, max_shard_size: int
) -> list[ShardInfo]:
    """Write one split as ``<split>-XXXXX-of-NNNNN-<digest>.parquet`` shards of at most ~``max_shard_size``
    uncompressed bytes each (contiguous row ranges, as ``push_to_hub`` does).

    ``<digest>`` is a hash of every shard of the split: same rows, same names; other rows, other names.
    """
    import pyarrow.parquet as pq

    table = record_arrow_table(frame)
    total = table.nbytes
    num_shards = max(1, min(table.num_rows, int(total / max_shard_size) + 1))
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[tuple[str, Path, int, int]] = []
    digest = hashlib.sha256()
    div, mod = divmod(table.num_rows, num_shards)
    start = 0
    for index in range(num_shards):
        length = div + (1 if index < mod else 0)
        part = table.slice(start, length)
        start += length
        name = f"{split}-{index:05d}-of-{num_shards:05d}"
        path = out_dir / f".{name}.partial"
        row_group = max(1, part.num_rows * MAX_ROW_GROUP_BYTES // part.nbytes) if part.nbytes else 1
        pq.write_table(
            part,
            path,
            row_group_size=row_group,
            compression="zstd",
            use_content_defined_chunking=CDC_OPTIONS,
            write_page_index=True,
        )
        with open(path, "rb") as handle:  # streamed: a shard can be hundreds of MB
            digest.update(hashlib.file_digest(handle, "sha256").digest())
        written.append((name, path, part.num_rows, part.nbytes))
    suffix = digest.hexdigest()[:SHARD_DIGEST_CHARS]
    shards: list[ShardInfo] = []
    for name, path, rows, nbytes in written:
        final = out_dir / f"{name}-{suffix}.parquet"
        path.replace(final)
        shards.append(ShardInfo(f"{rel_dir}/{final.name}", rows, nbytes, final.stat().st_size))
    return shards


def split_glob(shards: list[ShardInfo]) -> str:
    """The glob matching exactly these shards of one split: ``data/<d>/<split>-*-<digest>.parquet``."""
    first = shards[0].path
    folder, name = first.rsplit("/", 1)
    split, digest = name.split("-", 1)[0], name.rsplit("-", 1)[1].removesuffix(".parquet")
    return f"{folder}/{split}-*-{digest}.parquet"


def write_discipline(split: DisciplineSplit, staging: Path, max_shard_size: int) -> DisciplineData:
    """Write a discipline's train and test shards under ``staging/data/<discipline>/``."""
    frames = split.frames()
    places = {(f, s) for frame in frames.values() for f, s in frame.select("field", "subfield").unique().iter_rows()}
    if len(places) != 1:
        raise GlanError(
            f"records of {split.discipline} sit in several places of the taxonomy ({sorted(places)}): "
            f"regenerate the discipline (glan generate) so its records agree"
        )
    field_slug, subfield_slug = places.pop()
    rel_dir = f"data/{split.discipline}"
    shards = {
        name: write_split_shards(frame, staging / rel_dir, rel_dir, name, max_shard_size)
        for name, frame in frames.items()
    }
    return DisciplineData(
        split.discipline,
        field_slug,
        subfield_slug,
        shards,
        split.near_duplicates_removed,
        split.cross_discipline_removed,
    )


# --------------------------------------------------------------------------------------------
# Configs
# --------------------------------------------------------------------------------------------


@dataclass
class ConfigSpec:
    """One ``load_dataset`` config: a name, what it is, and the disciplines whose folders it reads."""

    name: str
    kind: ConfigKind
    title: str
    disciplines: list[str] = field(default_factory=list)


@dataclass
class Names:
    """Display names and taxonomy order of slugs (from the run's taxonomy snapshot when readable)."""

    titles: dict[str, str] = field(default_factory=dict)
    order: dict[str, int] = field(default_factory=dict)

    def title(self, slug: str) -> str:
        return self.titles.get(slug) or slug.replace("-", " ").capitalize()

    def key(self, slug: str) -> tuple[int, str]:
        return (self.order.get(slug, len(self.order)), slug)


def taxonomy_names(taxonomy_path: Path | None) -> Names:
    """Names and order from a taxonomy file; empty (slug order, slug-derived titles) if it cannot be read.

    The records carry the slugs, so publishing never depends on the taxonomy file: it only makes
    the card read better.
    """
    if taxonomy_path is None or not taxonomy_path.exists():
        return Names()
    try:
        from glan_dataset.taxonomy import load_taxonomy

        taxonomy = load_taxonomy(taxonomy_path)
    except Exception:  # noqa: BLE001 - a snapshot the current code cannot read only costs pretty names
        return Names()
    names = Names()
    for fld in taxonomy.fields:
        for item in (fld, *fld.subfields, *(d for sub in fld.subfields for d in sub.disciplines)):
            names.titles.setdefault(item.slug, item.name)
            names.order.setdefault(item.slug, len(names.order))
    return names


def build_configs(disciplines: list[DisciplineData], names: Names) -> list[ConfigSpec]:
    """``all`` (the default), then each field, sub-field and discipline that has records.

    Config names are the taxonomy slugs, unique across levels (the taxonomy guarantees it; a run
    whose records break that is refused here rather than published with one config shadowing another).
    """
    ordered = sorted(disciplines, key=lambda d: (names.key(d.field), names.key(d.subfield), names.key(d.discipline)))
    configs = [ConfigSpec(ALL_CONFIG, "all", "All disciplines", [d.discipline for d in ordered])]
    by_field: dict[str, list[str]] = {}
    by_subfield: dict[str, list[str]] = {}
    for d in ordered:
        by_field.setdefault(d.field, []).append(d.discipline)
        by_subfield.setdefault(d.subfield, []).append(d.discipline)
    configs += [ConfigSpec(s, "field", names.title(s), ds) for s, ds in by_field.items()]
    configs += [ConfigSpec(s, "subfield", names.title(s), ds) for s, ds in by_subfield.items()]
    configs += [ConfigSpec(d.discipline, "discipline", names.title(d.discipline), [d.discipline]) for d in ordered]
    seen: dict[str, ConfigKind] = {}
    for config in configs:
        if config.name in seen:
            raise GlanError(
                f"config name {config.name!r} is both a {seen[config.name]} and a {config.kind}: "
                "fix the taxonomy slugs (they must be unique across levels) and regenerate"
            )
        seen[config.name] = config.kind
    return configs


def config_data_files(config: ConfigSpec, data: dict[str, DisciplineData]) -> list[dict[str, Any]]:
    """The ``data_files`` of a config: one glob per discipline and split, naming the split's digest.

    No ``data/*/...`` shortcut for ``all``: while a release lands, the folder may also hold the
    previous release's shards, and a glob without the digest would read both.
    """
    entries: list[dict[str, Any]] = []
    for split in SPLITS:
        globs = [split_glob(data[d].shards[split]) for d in config.disciplines if data[d].shards.get(split)]
        if not globs:
            continue
        paths: str | list[str] = globs[0] if len(globs) == 1 else globs
        entries.append({"split": split, "path": paths})
    return entries


def configs_metadata(configs: list[ConfigSpec], data: dict[str, DisciplineData]) -> list[dict[str, Any]]:
    """The README ``configs:`` list (``all`` first, with ``default: true``)."""
    result = []
    for config in configs:
        entry: dict[str, Any] = {"config_name": config.name, "data_files": config_data_files(config, data)}
        if config.kind == "all":
            entry["default"] = True
        result.append(entry)
    return result


def dataset_info_metadata(configs: list[ConfigSpec], data: dict[str, DisciplineData]) -> list[dict[str, Any]]:
    """The README ``dataset_info:`` list: features, per-split examples and bytes, sizes, per config."""
    from glan_dataset.records import record_features

    features = record_features()._to_yaml_list()  # the same YAML ``push_to_hub`` writes
    infos = []
    for config in configs:
        splits = []
        for split in SPLITS:
            members = [data[d] for d in config.disciplines]
            examples = sum(d.num_examples(split) for d in members)
            if examples:
                splits.append(
                    {"name": split, "num_bytes": sum(d.num_bytes(split) for d in members), "num_examples": examples}
                )
        infos.append(
            {
                "config_name": config.name,
                "features": copy.deepcopy(features),  # no YAML anchors/aliases in the card
                "splits": splits,
                "download_size": sum(data[d].download_size for d in config.disciplines),
                "dataset_size": sum(s["num_bytes"] for s in splits),
            }
        )
    return infos


# --------------------------------------------------------------------------------------------
# The whole staging folder (minus README, releases.json and chart, which need the publish history)
# --------------------------------------------------------------------------------------------


@dataclass
class StagedData:
    """What the layout writer produced; everything the card and the release notes need."""

    staging: Path
    disciplines: dict[str, DisciplineData]
    configs: list[ConfigSpec]
    names: Names
    test_per_discipline: int
    seed: int
    max_shard_size: int

    def total(self, split: str | None = None) -> int:
        splits = SPLITS if split is None else (split,)
        return sum(d.num_examples(s) for d in self.disciplines.values() for s in splits)

    def config(self, name: str) -> ConfigSpec:
        return next(c for c in self.configs if c.name == name)


def write_layout(
    splits: Iterable[DisciplineSplit],
    staging: Path,
    *,
    max_shard_size: str | int = DEFAULT_MAX_SHARD_SIZE,
    taxonomy_path: Path | None = None,
    decontamination_report: Path | None = None,
    test_per_discipline: int,
    seed: int,
) -> StagedData:
    """Write shards, ``taxonomy.yaml`` and ``decontamination_report.json`` into ``staging``."""
    limit = parse_size(max_shard_size)
    data: dict[str, DisciplineData] = {}
    for split in splits:  # one discipline at a time: written, then dropped from memory
        if split.train.height or split.test.height:
            data[split.discipline] = write_discipline(split, staging, limit)
    data = dict(sorted(data.items()))
    if not data:
        raise GlanError("no records to publish: every discipline's clean file is empty")
    names = taxonomy_names(taxonomy_path)
    if taxonomy_path is not None and taxonomy_path.exists():
        shutil.copyfile(taxonomy_path, staging / TAXONOMY_FILE)
    if decontamination_report is not None and decontamination_report.exists():
        report = json.loads(decontamination_report.read_text(encoding="utf-8"))
        # Re-running decontamination with the same result only changes its timestamp: leave it out
        # so an unchanged dataset publishes nothing (the run directory keeps the full report).
        report.pop("created_at", None)
        (staging / DECONTAMINATION_FILE).write_text(
            json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    return StagedData(
        staging=staging,
        disciplines=data,
        configs=build_configs(list(data.values()), names),
        names=names,
        test_per_discipline=test_per_discipline,
        seed=seed,
        max_shard_size=limit,
    )
