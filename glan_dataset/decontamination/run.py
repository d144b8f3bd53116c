"""Decontaminate and de-duplicate a run directory: ``RUN/records/*.parquet`` -> ``RUN/clean/*.parquet``.

One discipline file at a time, in chunks of ``chunk_size`` records, so memory depends on the chunk
size and the benchmark index, not on the dataset:

* pass 1 reads ``id, question, answer`` chunk by chunk: stage 1 (n-gram candidates), stage 2
  (rapidfuzz confirmation), and the per-record dedup keys (8 bytes + LSH buckets, never texts);
* the duplicates are decided once the discipline's keys are all in;
* pass 2 streams every column again and writes the kept rows to ``RUN/clean/<d>.parquet``
  (atomically, schema unchanged). Without dedup nothing is decided later, so pass 1 reads every
  column and writes the kept rows itself: the file is read once.

Pass 1 is pipelined: one worker thread per core (polars' pool size) runs stage 1 on the next
chunks while the calling thread reads, confirms (in file order: deterministic) and writes. Measured
on 2 cores, 1M records of ~150 words: ~8.5 s with the benchmark cache warm, ~9.5 s cold, ~1 GB peak
(``bench/decontamination.py``).

The records files are only read, so a re-run gives the same output, and running again on the
output removes nothing more (``tests/test_decontamination_run.py`` checks both).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from glan_dataset.decontamination.benchmarks import BenchmarkSet, load_benchmarks
from glan_dataset.decontamination.dedup import DuplicateFinder, near_duplicates
from glan_dataset.decontamination.fuzzy import best_coverage
from glan_dataset.decontamination.identity import CleanMeta, clean_schema, records_identity
from glan_dataset.decontamination.ngrams import Matcher, NgramIndex, build_index, tokenize
from glan_dataset.decontamination.normalize import normalized_expr, words_expr
from glan_dataset.decontamination.report import (
    BenchmarkReport,
    DecontaminationReport,
    DecontaminationSettings,
    DisciplineReport,
    DuplicatesRemoved,
    decontamination_identity,
    load_report,
)
from glan_dataset.errors import UsageError
from glan_dataset.locking import DECONTAMINATE_LOCK, RunLocks
from glan_dataset.rundir import RunDir, atomic_path, write_json_atomic

Progress = Callable[[str], None]

REMOVED_COLUMNS: dict[str, Any] = {
    "record_id": pl.String,
    "discipline": pl.String,
    "reason": pl.String,
    "benchmark": pl.String,
    "split": pl.String,
    "item_id": pl.String,
    "field": pl.String,
    "score": pl.Float64,
    "matched_text": pl.String,
}
FIELDS = ("question", "answer")


def _empty_removed() -> pl.DataFrame:
    return pl.DataFrame(schema=REMOVED_COLUMNS)


def _batches(path: Path, columns: Sequence[str] | None, size: int) -> Iterator[tuple[int, pa.RecordBatch]]:
    """(offset of the first row, batch) over a parquet file, ``size`` rows at a time.

    ``pre_buffer=False``: with pyarrow's default (True) the reader keeps every pre-buffered column
    chunk until it is closed (apache/arrow#39808), so memory grew with the file (~+300 MB per
    million records here) and reading was 3x slower on a local disk.
    """
    offset = 0
    reader = pq.ParquetFile(path, pre_buffer=False)
    for batch in reader.iter_batches(batch_size=size, columns=list(columns) if columns else None):
        yield offset, batch
        offset += batch.num_rows


def _read_records_error(path: Path, error: Exception) -> UsageError:
    return UsageError(f"cannot read records file {path} ({type(error).__name__}): re-run the stage that writes it")


@dataclass
class _Discipline:
    """What pass 1 learns about one discipline."""

    name: str
    rows: int = 0
    contaminated: dict[int, dict[str, Any]] = field(default_factory=dict)  # row -> removed-row fields
    ids: dict[int, str] = field(default_factory=dict)  # row -> record id, for removed rows only
    candidates: int = 0


class _Confirmer:
    """Stage 2 over one chunk's candidates: word lists of the candidate texts and items only.

    Nothing is cached between chunks: the candidate items' words cost about a millisecond per chunk,
    and a cache would grow with the number of distinct items hit (memory must not grow with the data).
    """

    def __init__(self, index: NgramIndex, threshold: float) -> None:
        self.index = index
        self.threshold = threshold

    def _items(self, items: pl.Series) -> dict[int, list[list[str]]]:
        frame = self.index.items.filter(pl.col("item").is_in(items.unique().implode())).select(
            "item", words_expr(pl.col("question")).alias("q"), words_expr(pl.col("answer")).alias("a")
        )
        parts: dict[int, list[list[str]]] = {}
        for item, question, answer in frame.iter_rows():
            parts[item] = [question] if question else []
            if len(answer) >= self.index.min_ngram:  # "18" or "Idols" covered proves nothing
                parts[item].append(answer)
        return parts

    def confirm(self, docs: pl.DataFrame, candidates: pl.DataFrame) -> dict[int, tuple[int, float, str]]:
        """doc -> (item, score, matched text) of its best confirmed match."""
        if not candidates.height:
            return {}
        item_words = self._items(candidates["item"])
        wanted = candidates["doc"].unique().implode()
        texts = dict(
            docs.filter(pl.col("doc").is_in(wanted)).select("doc", words_expr(pl.col("text")).alias("w")).iter_rows()
        )
        best: dict[int, tuple[int, float, str]] = {}
        for doc, item in candidates.iter_rows():
            found = best_coverage(item_words.get(item, []), texts[doc], self.index.n)
            if found.score >= self.threshold and found.score > best.get(doc, (0, -1.0, ""))[1]:
                best[doc] = (item, round(found.score, 4), found.matched)
        return best


def _chunk_docs(chunk: pl.DataFrame) -> pl.DataFrame:
    """Record rows -> texts: doc = 2 * row (question), 2 * row + 1 (answer)."""
    return pl.concat(
        [
            chunk.select((pl.col("row") * 2).alias("doc"), pl.col("question").fill_null("").alias("text")),
            chunk.select((pl.col("row") * 2 + 1).alias("doc"), pl.col("answer").fill_null("").alias("text")),
        ]
    )


@dataclass
class _Analysed:
    """What a worker learns about one chunk (stage 1 and the dedup keys); stage 2 runs in order."""

    offset: int
    ids: pl.Series  # record ids of the chunk's rows
    docs: pl.DataFrame  # ``doc, text`` of the candidate texts only
    candidates: pl.DataFrame
    dedup: tuple[pl.DataFrame, pl.DataFrame | None] | None


def _analyse(batch: pa.RecordBatch, offset: int, matcher: Matcher, finder: DuplicateFinder | None) -> _Analysed:
    """Stage 1 (and the dedup keys) of one chunk. Runs in a worker thread: polars and numpy release
    the GIL, so two chunks are hashed and looked up at once on two cores."""
    chunk = pl.from_arrow(batch.select(["id", "question", "answer"]))
    assert isinstance(chunk, pl.DataFrame)
    chunk = chunk.with_columns(pl.int_range(offset, offset + chunk.height, dtype=pl.UInt32).alias("row"))
    docs = _chunk_docs(chunk)
    tokens = tokenize(docs["text"])
    candidates = matcher.candidates(docs, tokens)
    dedup = None
    if finder is not None:  # the first chunk.height texts are the questions, in row order
        questions = chunk.select(pl.col("row").alias("doc"), pl.col("question").fill_null("").alias("text"))
        dedup = finder.keys(questions, tokens.head(chunk.height))
    wanted = candidates["doc"].unique().implode()
    return _Analysed(offset, chunk["id"], docs.filter(pl.col("doc").is_in(wanted)), candidates, dedup)


def _workers() -> int:
    return max(1, min(pl.thread_pool_size(), os.cpu_count() or 1))


def _pass_one(
    path: Path,
    name: str,
    matcher: Matcher,
    confirmer: _Confirmer,
    finder: DuplicateFinder | None,
    chunk_size: int,
    splits: dict[str, str],
    writer: pq.ParquetWriter | None = None,
) -> _Discipline:
    """Stages 1 and 2 (and dedup keys) chunk by chunk. With a ``writer`` (no dedup: nothing is
    decided later), the kept rows are written in the same pass, so the file is read only once.

    Pipelined: worker threads run stage 1 on the next chunks while this thread reads, confirms
    (stage 2, in file order, so the result is deterministic) and writes. At most ``workers + 1``
    chunks are in memory at once, whatever the file size.
    """
    state = _Discipline(name)
    items = matcher.index.items
    columns = None if writer is not None else ["id", "question", "answer"]
    workers = _workers()
    pending: deque[tuple[pa.RecordBatch, Future[_Analysed]]] = deque()

    def finish(batch: pa.RecordBatch, analysed: _Analysed) -> None:
        state.candidates += analysed.candidates.height
        dropped: set[int] = set()
        for doc, (item, score, matched) in confirmer.confirm(analysed.docs, analysed.candidates).items():
            row = doc // 2
            dropped.add(row - analysed.offset)
            benchmark, item_id = items.row(item)[1:3]
            previous = state.contaminated.get(row)
            if previous is None or score > previous["score"]:
                state.contaminated[row] = {
                    "benchmark": benchmark,
                    "split": splits.get(benchmark, "test"),
                    "item_id": item_id,
                    "field": FIELDS[doc % 2],
                    "score": score,
                    "matched_text": matched,
                }
                state.ids[row] = analysed.ids[row - analysed.offset]
        if finder is not None and analysed.dedup is not None:
            finder.extend(*analysed.dedup)
        if writer is not None:
            if dropped:
                keep = np.ones(batch.num_rows, dtype=bool)
                keep[list(dropped)] = False
                batch = batch.filter(pa.array(keep))
            writer.write_batch(batch)
        state.rows += analysed.ids.len()

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decontaminate") as pool:
        try:
            for offset, batch in _batches(path, columns, chunk_size):
                pending.append((batch, pool.submit(_analyse, batch, offset, matcher, finder)))
                while len(pending) > workers:
                    done, future = pending.popleft()
                    finish(done, future.result())
            while pending:
                done, future = pending.popleft()
                finish(done, future.result())
        finally:
            for _, future in pending:
                future.cancel()
    return state


def _fetch(path: Path, rows: set[int], chunk_size: int) -> dict[int, tuple[str, str]]:
    """row -> (id, normalized question) for a few rows, streaming the file."""
    found: dict[int, tuple[str, str]] = {}
    if not rows:
        return found
    wanted = pl.Series(sorted(rows), dtype=pl.UInt32).implode()
    for offset, batch in _batches(path, ["id", "question"], chunk_size):
        chunk = pl.from_arrow(batch)
        assert isinstance(chunk, pl.DataFrame)
        picked = (
            chunk.with_columns(pl.int_range(offset, offset + chunk.height, dtype=pl.UInt32).alias("row"))
            .filter(pl.col("row").is_in(wanted))
            .select("row", "id", normalized_expr(pl.col("question").fill_null("")).alias("q"))
        )
        for row, record_id, question in picked.iter_rows():
            found[row] = (record_id, question)
    return found


def _duplicates(
    path: Path, state: _Discipline, finder: DuplicateFinder, threshold: float, chunk_size: int
) -> tuple[list[dict[str, Any]], int, int]:
    """Removed-row dicts for the discipline's exact and near duplicates, and their counts."""
    excluded = set(state.contaminated)
    exact = finder.exact_duplicates(excluded)
    pairs = finder.near_candidates(excluded | set(exact))
    pair_rows = set(pairs["earlier"].to_list()) | set(pairs["later"].to_list())
    texts = _fetch(path, set(exact) | set(exact.values()) | pair_rows, chunk_size)
    near = near_duplicates(pairs, {row: text for row, (_, text) in texts.items()}, threshold)
    removed: list[dict[str, Any]] = []
    for row, first in sorted(exact.items()):
        removed.append(
            {
                "row": row,
                "record_id": texts[row][0],
                "reason": "exact_duplicate",
                "item_id": texts[first][0],
                "score": 1.0,
                "matched_text": texts[row][1],
            }
        )
    for row, (earlier, score) in sorted(near.items()):
        removed.append(
            {
                "row": row,
                "record_id": texts[row][0],
                "reason": "near_duplicate",
                "item_id": texts[earlier][0],
                "score": score,
                "matched_text": texts[row][1],
            }
        )
    return removed, len(exact), len(near)


def _write_clean(source: Path, target: Path, drop: set[int], chunk_size: int, meta: CleanMeta) -> None:
    """Copy ``source`` to ``target`` without the ``drop`` rows, streaming, columns unchanged, stamped with ``meta``."""
    schema = clean_schema(pq.read_schema(source), meta)
    dropped = np.fromiter(sorted(drop), dtype=np.int64, count=len(drop))
    with atomic_path(target) as tmp:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for offset, batch in _batches(source, None, chunk_size):
                if dropped.size:
                    rows = np.arange(offset, offset + batch.num_rows)
                    batch = batch.filter(pa.array(~np.isin(rows, dropped)))
                writer.write_batch(batch)
            if not pq.ParquetFile(source).metadata.num_rows:
                writer.write_table(schema.empty_table())


def _process(
    run: RunDir,
    name: str,
    matcher: Matcher,
    settings: DecontaminationSettings,
    splits: dict[str, str],
    identity: str,
) -> tuple[DisciplineReport, pl.DataFrame, int]:
    path = run.records_file(name)
    source = records_identity(path)
    confirmer = _Confirmer(matcher.index, settings.threshold)
    finder = DuplicateFinder() if settings.dedup else None
    try:
        if finder is None:  # one pass: read, check and write the kept rows chunk by chunk
            meta = CleanMeta(discipline=name, records_identity=source, decontamination_identity=identity)
            with atomic_path(run.clean_file(name)) as tmp:
                with pq.ParquetWriter(tmp, clean_schema(pq.read_schema(path), meta), compression="zstd") as writer:
                    state = _pass_one(path, name, matcher, confirmer, None, settings.chunk_size, splits, writer)
        else:
            state = _pass_one(path, name, matcher, confirmer, finder, settings.chunk_size, splits)
    except (OSError, pa.ArrowException) as error:
        raise _read_records_error(path, error) from None
    removed = [
        {"record_id": state.ids[row], "reason": "contamination", **fields, "row": row}
        for row, fields in sorted(state.contaminated.items())
    ]
    exact = near = 0
    if finder is not None:
        duplicates, exact, near = _duplicates(path, state, finder, settings.near_dup_threshold, settings.chunk_size)
        removed.extend(duplicates)
    drop = {entry["row"] for entry in removed}
    if finder is not None:
        meta = CleanMeta(discipline=name, records_identity=source, decontamination_identity=identity)
        _write_clean(path, run.clean_file(name), drop, settings.chunk_size, meta)
    frame = (
        pl.DataFrame(
            [{key: value for key, value in entry.items() if key != "row"} | {"discipline": name} for entry in removed],
            schema=REMOVED_COLUMNS,
        )
        if removed
        else _empty_removed()
    )
    train = sum(1 for fields in state.contaminated.values() if fields["split"] == "train")
    report = DisciplineReport(
        records_in=state.rows,
        contaminated=len(state.contaminated),
        contaminated_test=len(state.contaminated) - train,
        contaminated_train=train,
        exact_duplicates=exact,
        near_duplicates=near,
        records_out=state.rows - len(drop),
        records_identity=source,
    )
    return report, frame, state.candidates


def _benchmark_reports(
    benchmarks: BenchmarkSet, index: NgramIndex, removed: pl.DataFrame
) -> dict[str, BenchmarkReport]:
    counts = dict(removed.filter(pl.col("reason") == "contamination").group_by("benchmark").len().iter_rows())
    return {
        b.name: BenchmarkReport(
            source=b.source,
            kind=b.kind,
            version=b.version,
            split=b.split,
            sha256=b.sha256,
            items=len(b),
            items_indexed=index.indexed.get(b.name, 0),
            boilerplate_ngrams=index.boilerplate.get(b.name, 0),
            records_removed=int(counts.get(b.name, 0)),
        )
        for b in benchmarks.loaded
    }


def _previous(run: RunDir, identity: str, say: Progress) -> tuple[dict[str, DisciplineReport], pl.DataFrame]:
    """Results of an earlier run with the same identity (settings and benchmark items), kept for the
    disciplines not re-run now. An unreadable report is an error here: dropping it silently would
    leave the other disciplines' clean files without a report that vouches for them."""
    report = load_report(run.decontamination_report)
    if report is None:
        return {}, _empty_removed()
    if report.identity != identity:
        if report.disciplines:
            say("the previous decontamination used other settings or benchmarks: its results are not kept")
        return {}, _empty_removed()
    try:
        removed = pl.read_parquet(run.decontamination_removed).select(list(REMOVED_COLUMNS)).cast(REMOVED_COLUMNS)
    except Exception as error:  # noqa: BLE001 - missing, truncated, foreign: the same fix
        raise UsageError(
            f"cannot read {run.decontamination_removed} ({type(error).__name__}): run `glan decontaminate` "
            "without --disciplines to rebuild it"
        ) from None
    # a discipline removed from the run since then (its records retired) is not carried forward
    kept = {d: r for d, r in report.disciplines.items() if run.records_file(d).exists()}
    return kept, removed.filter(pl.col("discipline").is_in(list(kept)))


def _no_benchmark_error(benchmarks: BenchmarkSet) -> UsageError:
    missing = ", ".join(benchmarks.unavailable) or "none asked for"
    return UsageError(
        f"no benchmark could be loaded (unavailable: {missing}): reinstall glan-dataset (it bundles GSM8K, "
        "HumanEval, MBPP, ARC and MMLU), pass --benchmark-file NAME=PATH, go online for the Hub, "
        "or say --benchmarks none to skip the benchmark check on purpose"
    )


def decontaminate_run(
    run_dir: str | Path,
    settings: DecontaminationSettings | None = None,
    disciplines: list[str] | None = None,
    *,
    progress: Progress | None = None,
    hub_loader: Callable[..., Any] | None = None,
) -> DecontaminationReport:
    """Decontaminate and de-duplicate ``RUN/records`` into ``RUN/clean``; write removed.parquet and report.json.

    ``disciplines`` limits the run to some disciplines; the report then keeps the other
    disciplines' results from the previous run if it had the same identity (settings and items).
    Loading no benchmark at all is a ``UsageError`` unless the settings say ``benchmarks=["none"]``;
    ``report.warning()`` says in one line what was not checked (callers should show it).
    """
    run = RunDir(run_dir)
    available = run.record_disciplines()
    if not available:
        raise UsageError(f"no records found in {run.stage_dir('records')}: generate records first (glan generate)")
    # one decontamination of a run at a time: the clean files and report.json must come from one run
    with RunLocks(run.root).alone(DECONTAMINATE_LOCK, action="decontaminated"):
        return _decontaminate_locked(
            run, available, settings or DecontaminationSettings(), disciplines, progress, hub_loader
        )


def _decontaminate_locked(
    run: RunDir,
    available: list[str],
    settings: DecontaminationSettings,
    disciplines: list[str] | None,
    progress: Progress | None,
    hub_loader: Callable[..., Any] | None,
) -> DecontaminationReport:
    say = progress or (lambda message: None)
    chosen = list(dict.fromkeys(disciplines)) if disciplines else available
    unknown = [d for d in chosen if d not in available]
    if unknown:
        raise UsageError(
            f"no records for discipline(s) {', '.join(unknown)} in {run.stage_dir('records')}: choose from {', '.join(available)}"
        )

    benchmarks = load_benchmarks(
        settings.benchmarks,
        settings.benchmark_files,
        require_all=settings.require_all,
        use_hub=settings.use_hub,
        hub_loader=hub_loader,
    )
    if not benchmarks.loaded and not settings.checks_nothing:
        raise _no_benchmark_error(benchmarks)
    for name, reason in benchmarks.unavailable.items():
        say(f"benchmark {name} unavailable: {reason}")
    say(f"indexing {benchmarks.items:,} items of {len(benchmarks.loaded)} benchmarks")
    index = build_index(
        benchmarks.loaded,
        n=settings.n,
        min_ngram=settings.min_ngram,
        max_item_share=settings.max_item_share,
        allowlist=settings.allowlist,
    )
    matcher = Matcher(index)
    identity = decontamination_identity(settings, _benchmark_reports(benchmarks, index, _empty_removed()))
    splits = {b.name: b.split for b in benchmarks.loaded}

    reports, removed_old = _previous(run, identity, say) if disciplines else ({}, _empty_removed())
    reports = {d: r for d, r in reports.items() if d not in chosen and d in available}
    frames = [removed_old.filter(pl.col("discipline").is_in(list(reports)))]
    candidates = 0
    for name in chosen:
        say(f"decontaminating {name}")
        report, frame, checked = _process(run, name, matcher, settings, splits, identity)
        reports[name] = report
        frames.append(frame)
        candidates += checked
    removed = pl.concat(frames, how="vertical_relaxed").sort("discipline", "reason", "record_id")
    reports = dict(sorted(reports.items()))
    result = DecontaminationReport(
        settings=settings,
        benchmarks=_benchmark_reports(benchmarks, index, removed),
        unavailable=benchmarks.unavailable,
        unavailable_splits=dict(benchmarks.splits),
        duplicates_removed=DuplicatesRemoved(
            exact=sum(r.exact_duplicates for r in reports.values()),
            near=sum(r.near_duplicates for r in reports.values()),
        ),
        contaminated=sum(r.contaminated for r in reports.values()),
        contaminated_test=sum(r.contaminated_test for r in reports.values()),
        contaminated_train=sum(r.contaminated_train for r in reports.values()),
        candidates_checked=candidates,
        records_in=sum(r.records_in for r in reports.values()),
        records_out=sum(r.records_out for r in reports.values()),
        disciplines=reports,
        identity=identity,
    )
    with atomic_path(run.decontamination_removed) as tmp:
        removed.write_parquet(tmp, compression="zstd")
    write_json_atomic(run.decontamination_report, result.model_dump(mode="json"))
    return result
