"""The GLAN-Test split: a held-out ``test`` set per discipline, with its near duplicates out of train.

The paper evaluates on 50 held-out questions per discipline (GLAN-Test). Two properties matter:

* **stable**: the test set of a discipline depends only on the seed and the record ids, never on
  row order or on other disciplines, so republishing the same run gives the same split and a
  bigger run keeps most of the old test questions (a record stays in test while fewer than
  ``test_size`` records rank before it);
* **clean**: a train question that is a near duplicate of a test question (rapidfuzz
  ``token_sort_ratio`` >= :data:`NEAR_DUPLICATE_THRESHOLD` on normalized text) would leak the test
  set into training, so it is dropped from train and counted. Subjects recur across disciplines
  (calculus in physics and in mathematics), so train questions are compared with the test questions
  of *every* discipline: exhaustively within their own discipline (50 test questions), and through a
  :class:`HeldOutIndex` of all disciplines' test questions for the others (MinHash LSH proposes the
  pairs, rapidfuzz confirms them with the same scorer and threshold).

Both splits are sorted by ``id`` so identical rows always give identical parquet bytes.

Memory: a publish reads the clean files twice, one discipline at a time: first only the ids (and
the held-out rows' questions) to build the index of every test question (~6,300 for the paper's
126 x 50: a few MB), then each discipline whole, as before. So the peak stays one discipline's
records plus that index, plus for the LSH pass 16 band keys per train question (~0.3 KB each with
the join frame), its sorted-word copies, and the words of 8,192 questions at a time: measured here,
+140 MB peak for a discipline of 80k questions of ~60 words.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from glan_dataset.defaults import DEFAULT_TEST_PER_DISCIPLINE
from glan_dataset.records import RECORD_COLUMNS, record_polars_schema
from glan_dataset.text import normalize

NEAR_DUPLICATE_THRESHOLD = 90.0
"""rapidfuzz ``token_sort_ratio`` (0-100) at or above which a train question counts as a copy of a
test question. 90 catches re-orderings and small edits (a changed number, a plural) of the same
question while distinct questions on the same concept, which share much vocabulary, stay below."""


LSH_BANDS = 16
LSH_ROWS = 6
"""MinHash LSH over each question's set of normalized words: a pair becomes a candidate with probability
``1 - (1 - J**6)**16`` at word-set Jaccard ``J``: 0.99 at 0.8, 0.87 at 0.7 (a near copy is far above:
one changed word of 30 is 0.94, a re-ordering 1.0), and 2e-4 at the ~0.15 of two unrelated questions,
so 10M train questions against 6,300 test questions give ~1e7 candidates instead of 6.3e10 pairs.
Word sets, not 2-gram shingles, because the confirming scorer (``token_sort_ratio``) ignores order."""
_LSH_SEED = 20260112
_HASH_SEED = 0x5EED_7E57
_BAND_PRIME = np.uint64(0x100000001B3)


def _lsh_permutations() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(_LSH_SEED)
    size = LSH_BANDS * LSH_ROWS
    multipliers = rng.integers(1, 2**63, size=size, dtype=np.uint64) | np.uint64(1)
    offsets = rng.integers(0, 2**63, size=size, dtype=np.uint64)
    return multipliers, offsets


LSH_CHUNK = 8192
"""Questions hashed at once: bounds the exploded word lists (~25 bytes a word) whatever the discipline's size."""


def lsh_band_keys(normalized: list[str]) -> np.ndarray:
    """One u64 bucket key per (question, band): shape ``(len(normalized), LSH_BANDS)``.

    ``normalized`` are questions already passed through :func:`glan_dataset.text.normalize`. Keys
    are compared only within one process (polars hashes are stable within a version, never stored).
    """
    keys = np.empty((len(normalized), LSH_BANDS), dtype=np.uint64)
    multipliers, offsets = _lsh_permutations()
    for start in range(0, len(normalized), LSH_CHUNK):
        chunk = normalized[start : start + LSH_CHUNK]
        words = pl.Series(chunk, dtype=pl.String).str.split(" ").list.unique()
        lengths = words.list.len().to_numpy()  # >= 1: "" splits into [""]
        values = words.explode().hash(seed=_HASH_SEED).to_numpy()
        del words
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
        permuted = np.empty_like(values)  # one buffer for every permutation (no temporary per step)
        with np.errstate(over="ignore"):
            for band in range(LSH_BANDS):
                key = np.full(len(chunk), band + 1, dtype=np.uint64)
                for row in range(LSH_ROWS):
                    k = band * LSH_ROWS + row
                    np.multiply(values, multipliers[k], out=permuted)
                    np.add(permuted, offsets[k], out=permuted)
                    key *= _BAND_PRIME
                    key += np.minimum.reduceat(permuted, starts)
                keys[start : start + len(chunk), band] = key
    return keys


def sorted_words(normalized: str) -> str:
    """The words of a normalized question in sorted order: ``fuzz.ratio`` of two of these is
    ``fuzz.token_sort_ratio`` of the questions, without sorting again for every pair (2x faster)."""
    return " ".join(sorted(normalized.split()))


def _bucket_frame(keys: np.ndarray, doc_column: str) -> pl.DataFrame:
    n = keys.shape[0]
    return pl.DataFrame(
        {
            doc_column: np.repeat(np.arange(n, dtype=np.uint32), LSH_BANDS),
            "band": np.tile(np.arange(LSH_BANDS, dtype=np.uint8), n),
            "key": keys.reshape(-1),
        }
    )


@dataclass(frozen=True)
class HeldOutIndex:
    """Every discipline's test questions (normalized) and their LSH buckets: the global GLAN-Test."""

    disciplines: list[str]
    ids: list[str]
    questions: list[str]  # normalized, words sorted (:func:`sorted_words`)
    buckets: pl.DataFrame  # test (row in the lists above), band, key

    @classmethod
    def build(cls, tests: list[tuple[str, str, str]]) -> HeldOutIndex:
        """From ``(discipline, id, question)`` triples of the test split (the question as written)."""
        questions = [sorted_words(normalize(q)) for _, _, q in tests]
        return cls(
            disciplines=[d for d, _, _ in tests],
            ids=[i for _, i, _ in tests],
            questions=questions,
            buckets=_bucket_frame(lsh_band_keys(questions), "test"),
        )

    def __len__(self) -> int:
        return len(self.ids)

    def near_duplicates(
        self, discipline: str, normalized: list[str], threshold: float = NEAR_DUPLICATE_THRESHOLD
    ) -> dict[int, str]:
        """Rows of ``normalized`` (train questions of ``discipline``) that near-duplicate a test
        question of ANOTHER discipline -> that discipline (the first one in index order)."""
        from rapidfuzz import fuzz

        if not normalized or not len(self):
            return {}
        questions = [sorted_words(q) for q in normalized]
        train = _bucket_frame(lsh_band_keys(questions), "row")
        pairs = (
            train.join(self.buckets, on=["band", "key"], how="inner").select("row", "test").unique().sort("row", "test")
        )
        found: dict[int, str] = {}
        for row, test in pairs.iter_rows():
            other = self.disciplines[test]
            if row in found or other == discipline:
                continue
            if fuzz.ratio(questions[row], self.questions[test]) >= threshold:  # = token_sort_ratio
                found[row] = other
        return found


def held_out_ids(ids: list[str], *, test_per_discipline: int, seed: int) -> set[str]:
    """The ids one discipline holds out: the first :func:`holdout_size` distinct ids by rank key."""
    distinct = list(dict.fromkeys(ids))
    n_test = holdout_size(len(distinct), test_per_discipline)
    return set(sorted(distinct, key=lambda i: holdout_rank_key(seed, i))[:n_test])


def holdout_rank_key(seed: int, record_id: str) -> str:
    """The order in which records are drawn into the test set: sha256 of (seed, id)."""
    return hashlib.sha256(f"{seed}\x1f{record_id}".encode()).hexdigest()


def holdout_size(n_records: int, test_per_discipline: int) -> int:
    """How many records a discipline holds out: ``test_per_discipline``, but never more than half.

    A tiny discipline (a demo, a first small run) would otherwise end up with an empty train split.
    """
    return max(0, min(test_per_discipline, n_records // 2))


@dataclass(frozen=True)
class DisciplineSplit:
    """The train and test rows of one discipline and what the split removed from train."""

    discipline: str
    train: pl.DataFrame
    test: pl.DataFrame
    near_duplicates_removed: int
    """Train questions that near-duplicate a test question of the same discipline."""
    cross_discipline_removed: int = 0
    """Train questions that near-duplicate a test question of another discipline."""
    removed_for: tuple[tuple[str, int], ...] = ()
    """The cross-discipline removals by the discipline whose test question they copied."""

    def frames(self) -> dict[str, pl.DataFrame]:
        """Non-empty splits by name (an empty split gets no shard and no ``data_files`` entry)."""
        return {name: frame for name, frame in (("train", self.train), ("test", self.test)) if frame.height}


def split_discipline(
    frame: pl.DataFrame,
    *,
    test_per_discipline: int = DEFAULT_TEST_PER_DISCIPLINE,
    seed: int = 0,
    threshold: float = NEAR_DUPLICATE_THRESHOLD,
    held_out: HeldOutIndex | None = None,
) -> DisciplineSplit:
    """Split one discipline's clean records into train and test (deterministic).

    With ``held_out`` (the test questions of every discipline), train questions that copy another
    discipline's test question leave train too.
    """
    from rapidfuzz import fuzz, process

    frame = frame.select(RECORD_COLUMNS).unique(subset="id", keep="first", maintain_order=True)
    disciplines = frame.get_column("discipline").unique().to_list()
    discipline = disciplines[0] if len(disciplines) == 1 else ",".join(sorted(map(str, disciplines)))
    test_ids = held_out_ids(frame.get_column("id").to_list(), test_per_discipline=test_per_discipline, seed=seed)
    in_test = pl.col("id").is_in(list(test_ids))
    test = frame.filter(in_test).sort("id")
    train = frame.filter(~in_test).sort("id")

    removed = 0
    train_q = [normalize(q) for q in train.get_column("question").to_list()]
    if test.height and train.height:
        test_q = [sorted_words(normalize(q)) for q in test.get_column("question").to_list()]
        scores = process.cdist(  # fuzz.ratio of sorted words = token_sort_ratio
            [sorted_words(q) for q in train_q],
            test_q,
            scorer=fuzz.ratio,
            score_cutoff=threshold,
            dtype="float32",
            workers=1,
        )
        keep = (scores.max(axis=1) < threshold).tolist()
        removed = keep.count(False)
        train = train.filter(pl.Series(keep, dtype=pl.Boolean))
        train_q = [q for q, kept in zip(train_q, keep, strict=True) if kept]

    cross: dict[str, int] = {}
    if held_out is not None and train.height:
        copied = held_out.near_duplicates(str(discipline), train_q, threshold)
        for other in copied.values():
            cross[other] = cross.get(other, 0) + 1
        if copied:
            keep = [row not in copied for row in range(train.height)]
            train = train.filter(pl.Series(keep, dtype=pl.Boolean))
    return DisciplineSplit(
        discipline=str(discipline),
        train=train,
        test=test,
        near_duplicates_removed=removed,
        cross_discipline_removed=sum(cross.values()),
        removed_for=tuple(sorted(cross.items())),
    )


def read_clean(path: Path) -> pl.DataFrame:
    """A clean record file, cast to the canonical polars schema (column order = ``RECORD_COLUMNS``)."""
    schema = record_polars_schema()
    frame = pl.read_parquet(path)
    return frame.select([pl.col(name).cast(dtype) for name, dtype in schema.items()])


def _clean_paths(clean_dir: Path, disciplines: list[str] | None) -> list[tuple[str, Path]]:
    names = disciplines if disciplines is not None else sorted(p.stem for p in clean_dir.glob("*.parquet"))
    return [(name, clean_dir / f"{name}.parquet") for name in sorted(names) if (clean_dir / f"{name}.parquet").exists()]


def held_out_index(
    clean_dir: Path,
    *,
    disciplines: list[str] | None = None,
    test_per_discipline: int = DEFAULT_TEST_PER_DISCIPLINE,
    seed: int = 0,
) -> HeldOutIndex:
    """The test questions of every clean file (or of ``disciplines``), read one file at a time.

    Reads each file's ``id`` column, then the question of the held-out rows only.
    """
    tests: list[tuple[str, str, str]] = []
    for name, path in _clean_paths(clean_dir, disciplines):
        ids = pl.read_parquet(path, columns=["id"]).get_column("id").cast(pl.String).to_list()
        chosen = held_out_ids(ids, test_per_discipline=test_per_discipline, seed=seed)
        if not chosen:
            continue
        rows = (
            pl.scan_parquet(path)
            .select(pl.col("id").cast(pl.String), pl.col("question").cast(pl.String))
            .filter(pl.col("id").is_in(list(chosen)))
            .unique(subset="id", keep="first", maintain_order=True)
            .sort("id")
            .collect()
        )
        tests += [(name, i, q) for i, q in rows.iter_rows()]
    return HeldOutIndex.build(tests)


def iter_clean_splits(
    clean_dir: Path,
    *,
    disciplines: list[str] | None = None,
    test_per_discipline: int = DEFAULT_TEST_PER_DISCIPLINE,
    seed: int = 0,
    held_out: HeldOutIndex | None = None,
) -> Iterator[DisciplineSplit]:
    """Split ``clean_dir/<discipline>.parquet`` files one at a time (sorted by name; empty ones skipped).

    A generator so a 10M-record run never holds more than one discipline in memory. Train questions
    are checked against the test questions of every clean file in ``clean_dir`` (``held_out``, built
    here unless given), also when only some ``disciplines`` are split.
    """
    if held_out is None:
        held_out = held_out_index(clean_dir, test_per_discipline=test_per_discipline, seed=seed)
    for name, path in _clean_paths(clean_dir, disciplines):
        frame = read_clean(path)
        if frame.height:
            split = split_discipline(frame, test_per_discipline=test_per_discipline, seed=seed, held_out=held_out)
            yield DisciplineSplit(
                name,
                split.train,
                split.test,
                split.near_duplicates_removed,
                split.cross_discipline_removed,
                split.removed_for,
            )


def split_clean_dir(
    clean_dir: Path,
    *,
    disciplines: list[str] | None = None,
    test_per_discipline: int = DEFAULT_TEST_PER_DISCIPLINE,
    seed: int = 0,
) -> dict[str, DisciplineSplit]:
    """Like :func:`iter_clean_splits`, as a dict by discipline (for a config's few disciplines)."""
    return {
        s.discipline: s
        for s in iter_clean_splits(
            clean_dir, disciplines=disciplines, test_per_discipline=test_per_discipline, seed=seed
        )
    }
