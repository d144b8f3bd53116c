"""Benchmark decontamination and de-duplication of generated records (issue 5, DESIGN.md section 6).

``decontaminate_run(RUN, DecontaminationSettings())`` reads ``RUN/records/*.parquet`` and writes
``RUN/clean/<discipline>.parquet`` (same schema), ``RUN/decontamination/removed.parquet`` and
``RUN/decontamination/report.json`` (a ``DecontaminationReport``; ``report.warning()`` says in one line
what was not checked). Every clean file records what it was made from (``identity``), so
``stale_disciplines(run)`` tells by content which clean files no longer reflect the run. Stage 1 finds candidates with
polars n-gram hashes (``ngrams``), stage 2 confirms them with rapidfuzz (``fuzzy``), and ``dedup``
removes exact and near-duplicate questions within each discipline.
"""

from glan_dataset.decontamination.benchmarks import (
    BENCHMARKS,
    OFFLINE_BENCHMARKS,
    PAPER_BENCHMARKS,
    TEST_BENCHMARKS,
    TRAIN_BENCHMARKS,
    BenchmarkFileError,
    BenchmarkSet,
    BenchmarkUnavailableError,
    LoadedBenchmark,
    load_benchmarks,
)
from glan_dataset.decontamination.identity import CleanMeta, clean_meta, records_identity, stale_disciplines
from glan_dataset.decontamination.normalize import normalize
from glan_dataset.decontamination.report import (
    BenchmarkReport,
    DecontaminationReport,
    DecontaminationSettings,
    DisciplineReport,
    DuplicatesRemoved,
    decontamination_identity,
    load_report,
)
from glan_dataset.decontamination.run import decontaminate_run

__all__ = [
    "BENCHMARKS",
    "OFFLINE_BENCHMARKS",
    "PAPER_BENCHMARKS",
    "TEST_BENCHMARKS",
    "TRAIN_BENCHMARKS",
    "BenchmarkFileError",
    "BenchmarkReport",
    "BenchmarkSet",
    "BenchmarkUnavailableError",
    "CleanMeta",
    "DecontaminationReport",
    "DecontaminationSettings",
    "DisciplineReport",
    "DuplicatesRemoved",
    "LoadedBenchmark",
    "clean_meta",
    "decontaminate_run",
    "decontamination_identity",
    "load_benchmarks",
    "load_report",
    "normalize",
    "records_identity",
    "stale_disciplines",
]
