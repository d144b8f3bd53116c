"""The flows: what a user runs, each one call. The only module that strings generation,
decontamination and publishing together; the CLI and ``builder_script.py`` call these and nothing below.

* :func:`generate` runs (or resumes) the steps for a config into a run directory;
* :func:`decontaminate` writes ``RUN/clean`` from ``RUN/records``;
* :func:`publish` writes ``RUN/clean`` as a parquet + YAML dataset (folder or ``hf://ORG/NAME``);
* :func:`prepare` = generate + decontaminate the config's disciplines (what the builder needs);
* :func:`build` = prepare + publish the whole run directory;
* :func:`merge_runs` combines run directories made with ``--shard I/N``;
* :func:`demo` = build against the loopback server, then load the result back as a consumer would.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.tree import Tree

from glan_dataset.decontamination import DecontaminationReport, DecontaminationSettings, decontaminate_run
from glan_dataset.errors import IncompleteError, UsageError
from glan_dataset.executors import Executor, GenerationJob, LocalExecutor, ShardedExecutor
from glan_dataset.llm import EngineConfig
from glan_dataset.merge import MergeReport
from glan_dataset.pipeline import Outcome, resolve_taxonomy
from glan_dataset.pipeline import outcome as _outcome
from glan_dataset.publishing.publish import publish_run
from glan_dataset.publishing.targets import HUB_SCHEME, PublishResult, preflight
from glan_dataset.rundir import RunDir
from glan_dataset.settings import GenerationSettings, RunManifest
from glan_dataset.stages import STEPS, Step

log = logging.getLogger(__name__)

__all__ = [
    "DemoResult",
    "Outcome",
    "Prepared",
    "build",
    "decontaminate",
    "demo",
    "generate",
    "merge_runs",
    "outcome",
    "prepare",
    "publish",
]

DEMO_SETTINGS: dict[str, Any] = {"subject_samples": 2, "max_subjects": 3, "questions_per_subject": 4, "seed": 0}
DEMO_TEST_PER_DISCIPLINE = 2
DEMO_DECONTAMINATION: dict[str, Any] = {"benchmarks": ["paper"], "use_hub": False}
"""The paper's benchmarks from whatever is installed (`pip install -e ".[benchmarks]"`); the ones not
installed are listed as unavailable in the report and the card. The demo never touches the network and
works right after `pip install -e .`."""


def generate(
    run_dir: str | Path,
    settings: GenerationSettings,
    engine_config: EngineConfig,
    *,
    taxonomy_path: str | Path | None = None,
    prompts_dir: str | Path | None = None,
    quiet: bool = False,
    demo: bool = False,
    shard: tuple[int, int] | None = None,
    steps: Sequence[Step] = STEPS,
    executor: Executor | None = None,
    serve: str | None = None,
) -> RunManifest:
    """Run or resume generation for ``settings.config`` in ``run_dir``; returns the updated run.json.

    ``executor`` says where it runs (default: this process; see :mod:`glan_dataset.executors`);
    ``shard=(i, n)`` is short for ``ShardedExecutor(i, n)``: every n-th discipline of the config from
    the i-th (see :func:`merge_runs`). ``serve``: a server command template (``{model}``, ``{port}``)
    each worker starts for itself. ``steps`` replaces the list of steps (default ``glan_dataset.stages.STEPS``)."""
    if executor is None:
        executor = ShardedExecutor(*shard) if shard is not None else LocalExecutor()
    elif shard is not None:
        raise UsageError("pass either shard or executor, not both")
    job = GenerationJob(
        run_dir=Path(run_dir),
        settings=settings,
        engine_config=engine_config,
        taxonomy_path=None if taxonomy_path is None else Path(taxonomy_path),
        prompts_dir=None if prompts_dir is None else Path(prompts_dir),
        quiet=quiet,
        demo=demo,
        steps=steps,
        serve=serve,
    )
    return executor.run(job)


def outcome(run_dir: str | Path, manifest: RunManifest, config: str, shard: tuple[int, int] | None = None) -> Outcome:
    """What ``generate`` left for ``config``: records, units still failing, disciplines without records."""
    return _outcome(run_dir, manifest, config, shard)


def decontaminate(
    run_dir: str | Path,
    settings: DecontaminationSettings | dict[str, Any] | None = None,
    disciplines: list[str] | None = None,
    **options: Any,
) -> DecontaminationReport:
    """Remove benchmark contamination and duplicates from ``RUN/records`` into ``RUN/clean``.
    ``settings`` may be a dict of ``DecontaminationSettings`` fields; ``options`` go to
    :func:`glan_dataset.decontamination.decontaminate_run` (``progress``, ...)."""
    return decontaminate_run(run_dir, _decontamination_settings(settings), disciplines, **options)


def publish(run_dir: str | Path, target: str | Path | None = None, **options: Any) -> PublishResult:
    """Publish ``RUN/clean`` to a folder (default ``RUN/published``) or ``hf://ORG/NAME``; ``options``
    are those of :func:`glan_dataset.publishing.publish_run` (license, tag, test_per_discipline, ...)."""
    return publish_run(run_dir, target, **options)


def merge_runs(sources: Sequence[str | Path], target: str | Path) -> MergeReport:
    """Merge run directories (one per ``--shard``) into ``target``; see :mod:`glan_dataset.merge`."""
    return Executor.gather(sources, target)


@dataclass
class Prepared:
    """A generated and decontaminated config: the run manifest and the config's disciplines with records."""

    manifest: RunManifest
    disciplines: list[str]

    @property
    def failures(self) -> int:
        return sum(counts.failures for counts in self.manifest.counts.values())


def prepare(
    run_dir: str | Path,
    settings: GenerationSettings,
    engine_config: EngineConfig,
    *,
    taxonomy_path: str | Path | None = None,
    prompts_dir: str | Path | None = None,
    decontamination_settings: DecontaminationSettings | dict[str, Any] | None = None,
    demo: bool = False,
    quiet: bool = False,
) -> Prepared:
    """Generate (or resume) ``settings.config``, then decontaminate those of its disciplines that have
    records (a discipline whose every unit failed has none); no decontamination when none has."""
    manifest = generate(
        run_dir, settings, engine_config, taxonomy_path=taxonomy_path, prompts_dir=prompts_dir, quiet=quiet, demo=demo
    )
    return Prepared(manifest, _decontaminate_config(RunDir(run_dir), settings.config, decontamination_settings))


def _decontaminate_config(
    run: RunDir, config: str, settings: DecontaminationSettings | dict[str, Any] | None
) -> list[str]:
    """Decontaminate the config's disciplines that have records; returns them."""
    selected = [d.slug for d in resolve_taxonomy(run, None).select(config)]
    disciplines = [d for d in selected if run.records_file(d).exists()]
    if disciplines:
        report = decontaminate(run.root, settings, disciplines)
        if (warning := report.warning()) is not None:  # the builder has no CLI table: never silent
            log.warning("%s", warning)
    return disciplines


def build(
    run_dir: str | Path,
    settings: GenerationSettings,
    engine_config: EngineConfig,
    target: str | Path | None = None,
    *,
    taxonomy_path: str | Path | None = None,
    prompts_dir: str | Path | None = None,
    decontamination_settings: DecontaminationSettings | dict[str, Any] | None = None,
    demo: bool = False,
    quiet: bool = False,
    allow_partial: bool = False,
    console: Console | None = None,
    **publish_options: Any,
) -> PublishResult:
    """Generate (or resume), decontaminate and publish, as one call.

    The whole run directory is published, not only ``settings.config``: building ``physics`` and then
    ``chemistry`` into the same run directory and target gives a repository with both (publishing only
    the last config would delete the first one's shards from the target). ``publish_options`` are
    those of :func:`publish`.

    Nothing is paid before what could fail for free is checked: a Hub target's token, write access
    and tag, a folder's writability (``publishing.targets.preflight``). A generation with units still outstanding or disciplines
    without records is not published (:class:`~glan_dataset.errors.IncompleteError`, exit code 3)
    unless ``allow_partial``."""
    console = console or Console(stderr=True, quiet=quiet)
    if demo and str(target or "").startswith(HUB_SCHEME):
        raise UsageError("demo data is placeholder text; publish it to a local folder")  # before any work
    if target is not None and not publish_options.get("dry_run"):  # token, write access, tag: before paying
        hub_options = {k: publish_options[k] for k in ("private", "create_pr", "revision") if k in publish_options}
        preflight(target, tag=publish_options.get("tag"), **hub_options)
    manifest = generate(
        run_dir, settings, engine_config, taxonomy_path=taxonomy_path, prompts_dir=prompts_dir, quiet=quiet, demo=demo
    )
    run = RunDir(run_dir)
    result = outcome(run.root, manifest, settings.config)  # checked before decontaminating: a refusal is quick
    if not result.records:
        raise IncompleteError(
            f"no records were generated for --config {settings.config} ({result.summary() or 'nothing to generate'}); "
            f"see {run.failures} and run the same command again (nothing paid is repeated)"
        )
    if result.partial and not allow_partial:
        raise IncompleteError(
            f"not published: --config {settings.config} is partial ({result.summary()}); run the same command "
            "again to retry (nothing paid is repeated), or add --allow-partial to publish what there is"
        )
    if result.partial:
        console.print(f"[yellow]publishing a partial build (--allow-partial): {result.summary()}[/yellow]")
    _decontaminate_config(run, settings.config, decontamination_settings)
    # publish checks the whole run too, and with allow_partial its card says what is missing
    return publish(
        run.root,
        target,
        quiet=quiet,
        console=console if not quiet else None,
        allow_partial=allow_partial,
        **publish_options,
    )


# ---------------------------------------------------------------------------------------- demo


@dataclass
class DemoResult:
    run_dir: Path
    dataset_dir: Path
    config: str
    sample: dict[str, Any]
    rows: dict[str, int]


def demo(folder: str | Path, *, config: str = "physical-sciences", console: Console | None = None) -> DemoResult:
    """The whole flow offline, against the project's loopback OpenAI-compatible server.

    Tiny sizes (2 subject samples, 3 subjects, 4 questions each, per discipline) keep it well under a
    minute. Every generated text carries ``[demo placeholder]``, the run is marked ``demo`` (publishing
    it to the Hub is refused) and the card opens with a placeholder banner. Generates, decontaminates
    and publishes ``config`` into ``folder/run`` and ``folder/dataset``, then loads it back."""
    from pydantic import SecretStr

    from glan_dataset.testing.openai_server import FakeOpenAIServer

    console = console or Console()
    folder = Path(folder).expanduser().absolute()
    run_dir, dataset_dir = folder / "run", folder / "dataset"
    console.print(
        Panel(
            "[bold]glan demo[/bold]: the whole GLAN flow against a local fake model server.\n"
            "[bold red]Every text is placeholder text, not real data.[/bold red]\n"
            "It shows the run directory, the published layout and the card before you spend money on a real endpoint.",
            border_style="yellow",
        )
    )
    settings = GenerationSettings.model_validate({**DEMO_SETTINGS, "config": config})
    with FakeOpenAIServer(latency=0.0, demo=True) as server:
        engine = EngineConfig(base_url=server.base_url, api_key=SecretStr("demo-key"), concurrency=32, quiet=True)
        console.print(
            f"1. generating [cyan]{config}[/cyan] into {run_dir} (fake server at {server.base_url})", highlight=False
        )
        console.print(
            f"2. decontaminating (installed benchmark packages), 3. publishing to {dataset_dir}", highlight=False
        )
        build(
            run_dir,
            settings,
            engine,
            dataset_dir,
            demo=True,
            quiet=True,
            decontamination_settings=DEMO_DECONTAMINATION,
            test_per_discipline=DEMO_TEST_PER_DISCIPLINE,
            message="glan demo (placeholder data)",
        )
    sample, rows = _load_back(dataset_dir, config, folder / "hf-cache")
    console.print(
        f"4. datasets.load_dataset({str(dataset_dir)!r}, {config!r}): "
        + ", ".join(f"{k}: {v} rows" for k, v in rows.items())
    )
    console.print(Panel(_format_sample(sample), title="a sample row (placeholder text)", border_style="yellow"))
    console.print(_tree(run_dir, "run directory (resumable; every LLM response cached)"))
    console.print(_tree(dataset_dir, "published dataset (what the Hub would hold)"))
    console.print(f"dataset card: {dataset_dir / 'README.md'}", highlight=False)
    console.print(
        "\nA real build (needs an OpenAI-compatible endpoint and key):\n"
        f"  glan build --config {config} --out runs/{config} --to hf://ORG/NAME --tag v1.0"
    )
    return DemoResult(run_dir, dataset_dir, config, sample, rows)


def _decontamination_settings(settings: DecontaminationSettings | dict[str, Any] | None) -> DecontaminationSettings:
    if isinstance(settings, DecontaminationSettings):
        return settings
    return DecontaminationSettings(**(settings or {}))


def _load_back(dataset_dir: Path, config: str, cache: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """Read the published folder exactly as a consumer would (local path: no network involved)."""
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    import datasets

    datasets.disable_progress_bars()
    ds = datasets.load_dataset(str(dataset_dir), config, cache_dir=str(cache))
    return dict(ds["train"][0]), {name: split.num_rows for name, split in ds.items()}


def _format_sample(row: dict[str, Any]) -> str:
    """Rich markup for one row; every value escaped (``[demo placeholder]`` would read as a markup tag)."""
    from rich.markup import escape

    def cut(text: str, n: int = 300) -> str:
        return escape(text if len(text) <= n else text[:n] + "...")

    def join(values: list[str]) -> str:
        return escape(" | ".join(values))

    return (
        f"[bold]{escape(row['field'])} > {escape(row['subfield'])} > {escape(row['discipline'])}[/bold]"
        f"  subject: {escape(row['subject'])}\n"
        f"sessions: {join(row['sessions'])}\nkey concepts: {join(row['key_concepts'])}\n\n"
        f"[bold]question[/bold] ({escape(row['question_model'])}): {cut(row['question'])}\n\n"
        f"[bold]answer[/bold] ({escape(row['answer_model'])}): {cut(row['answer'])}"
    )


def _tree(root: Path, title: str) -> Tree:
    """A file tree with sizes (hidden files skipped)."""
    from rich.markup import escape

    tree = Tree(f"[bold]{escape(title)}[/bold] {escape(str(root))}")
    nodes: dict[Path, Tree] = {root: tree}
    for path in sorted(root.rglob("*")):
        if any(part.startswith(".") for part in path.relative_to(root).parts) or path.parent not in nodes:
            continue
        label = escape(path.name) + ("/" if path.is_dir() else f"  [dim]{path.stat().st_size:,} B[/dim]")
        nodes[path] = nodes[path.parent].add(label)
    return tree
