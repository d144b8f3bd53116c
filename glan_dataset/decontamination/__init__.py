"""Benchmark decontamination and de-duplication of generated records (issue 5, DESIGN.md section 6).

``decontaminate_run(RUN, DecontaminationSettings())`` reads ``RUN/records/*.parquet`` and writes
``RUN/clean/<discipline>.parquet`` (same schema), ``RUN/decontamination/removed.parquet`` and
``RUN/decontamination/report.json`` (a ``DecontaminationReport``). Stage 1 finds candidates with
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
from glan_dataset.decontamination.normalize import normalize
from glan_dataset.decontamination.report import (
    BenchmarkReport,
    DecontaminationReport,
    DecontaminationSettings,
    DisciplineReport,
    DuplicatesRemoved,
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
    "DecontaminationReport",
    "DecontaminationSettings",
    "DisciplineReport",
    "DuplicatesRemoved",
    "LoadedBenchmark",
    "decontaminate_run",
    "load_benchmarks",
    "normalize",
]
