"""Runs the generation's steps for a config over a run directory, resumably.

One generic loop runs every step of ``glan_dataset.stages.STEPS`` (or any list of steps). It is
stage-major: each call of a step streams the units of every selected discipline through one engine
stream (so small disciplines never leave the endpoint idle), and a discipline's stage file is written
as soon as all of its units are in. What is already done is found by fingerprint and reused; what was
paid for before is replayed from the cache. Nothing is ever lost: a unit that still fails is in
``failures.jsonl``, its stage file is marked incomplete, and the next run retries it.

One writer per discipline: a run holds the lock of each discipline it generates for its whole life
(``glan_dataset.locking``), so a second process that wants one of them stops at once, naming the
holder, before it asks anything. Processes on disjoint disciplines run side by side; what they share
(run.json, failures.jsonl, the taxonomy snapshot) changes only under the short run-level lock, and
run.json is merged (read, update this run's disciplines, write), never overwritten with one view.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import shutil
import threading
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import import_module
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

import glan_dataset
from glan_dataset import eventloop
from glan_dataset.errors import UsageError
from glan_dataset.llm import ChatFailure, ChatRequest, ChatResult, EngineConfig, LLMEngine, PriceTable, public_url
from glan_dataset.llm.cache import ResponseCache
from glan_dataset.llm.cost import UsageEntry, UsageLedger
from glan_dataset.locking import WRITERS_LOCK, FileLock, RunLocks
from glan_dataset.prompts import PromptLibrary
from glan_dataset.rundir import RunDir, read_prices, write_json_atomic, write_prices, write_text_atomic
from glan_dataset.settings import GenerationSettings, RunManifest, StageCounts
from glan_dataset.stages import STEPS, check_step_options, prompt_names, records_stage
from glan_dataset.stages.base import Call, DisciplineContext, Reject, Step, StepContext
from glan_dataset.stages.store import StageMeta, StageStore, fingerprint
from glan_dataset.taxonomy import Taxonomy, load_taxonomy

log = logging.getLogger(__name__)

_WRITES_IN_FLIGHT = 4  # stage files being written in worker threads at once (rows held in memory meanwhile)


@dataclass(eq=False)
class _Discipline:
    """One discipline's progress through one call: its units as they are asked and as they come back."""

    context: StepContext
    asked: int = 0
    exhausted: bool = False
    results: dict[int, Any] = field(default_factory=dict)  # source position -> what parse made of it
    answered: int = 0
    failed: int = 0

    @property
    def complete(self) -> bool:
        return self.exhausted and self.answered == self.asked

    def ordered(self) -> list[Any]:
        return [self.results[position] for position in sorted(self.results)]


@dataclass(frozen=True, eq=False)
class _Unit:
    """What the pipeline pairs with each request: where the outcome goes and what it was asked about."""

    discipline: _Discipline
    position: int
    source: Any


def resolve_taxonomy(run: RunDir, taxonomy_path: str | Path | None) -> Taxonomy:
    """``--taxonomy`` wins (and becomes the run's snapshot); else the run's snapshot; else the default."""
    if taxonomy_path is not None:
        return load_taxonomy(taxonomy_path)
    if run.taxonomy.exists():
        return load_taxonomy(run.taxonomy)
    return load_taxonomy(None)


def discipline_contexts(taxonomy: Taxonomy, config: str) -> list[DisciplineContext]:
    wanted = {discipline.slug for discipline in taxonomy.select(config)}
    return [
        DisciplineContext(discipline=discipline, subfield=subfield, field=field_)
        for field_ in taxonomy.fields
        for subfield in field_.subfields
        for discipline in subfield.disciplines
        if discipline.slug in wanted
    ]


def check_steps(steps: Sequence[Step], settings: GenerationSettings) -> None:
    """Each step writes its own stage folder and each call has its own name (progress, costs and
    failures are kept by call name); a step reads what an earlier step writes, or an existing folder."""
    seen: dict[str, str] = {}
    for step in steps:
        names = [f"stage folder {step.writes!r}"] + [f"call name {call.name!r}" for call in step.calls(settings)]
        for name in names:
            if name in seen:
                raise ValueError(f"{type(step).__name__} and {seen[name]} share the {name}; give each its own")
            seen[name] = type(step).__name__


class Pipeline:
    """One invocation of ``glan generate`` on a run directory."""

    def __init__(
        self,
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
    ) -> None:
        self.rundir = RunDir(run_dir)
        self.settings = settings
        self.engine_config = engine_config.model_copy(update={"quiet": quiet or engine_config.quiet})
        self.taxonomy_path = taxonomy_path
        self.taxonomy = resolve_taxonomy(self.rundir, taxonomy_path)
        self.contexts = discipline_contexts(self.taxonomy, settings.config)
        if shard is not None:  # every N-th discipline of the config, in taxonomy order (stable across machines)
            index, count = shard
            self.contexts = self.contexts[index::count]
        check_steps(steps, settings)
        check_step_options(settings, steps)
        self.records_stage = records_stage(settings, steps)
        self.stages = [step.writes for step in steps]  # every stage folder, made by this run or not
        self.steps = [step for step in steps if step.enabled(settings)]
        calls = {call.name for step in steps for call in step.calls(settings)}
        unknown = set(settings.max_tokens) - {"*"} - calls - {name.rstrip("_0123456789") for name in calls}
        if unknown:
            raise UsageError(
                f"--max-tokens names no call of this run: {', '.join(sorted(unknown))}; "
                f"the calls are {', '.join(sorted(calls))}"
            )
        self.prompts = PromptLibrary(prompts_dir, prompt_names(settings, steps))
        self.store = StageStore(self.rundir)
        self.console = Console(stderr=True, quiet=quiet)
        self.quiet = quiet
        self.demo = demo
        self.failures: dict[str, int] = {}  # failed units per discipline in this invocation
        self.removed: list[str] = []  # disciplines this run retired
        # a step's context carries the version of its own and every earlier step's templates
        self.chain_versions: dict[str, str] = {}
        names: list[str] = []
        for step in self.steps:
            names += step.prompt_names(settings)
            self.chain_versions[step.writes] = self.prompts.combined_version(names)
        self.prompt_version = self.prompts.combined_version(names)

    # ------------------------------------------------------------------ entry point
    def run_sync(self) -> RunManifest:
        """Run in a new event loop, with the cyclic garbage collector tuned for the run.

        Why: the collector ran ~1,000 times in a 19,000-call run (1.8 s of 26 s of CPU), each time
        walking the taxonomy, the templates, the modules and the rows in flight, which are never
        garbage. They are frozen out of its view, and it runs after 10,000 allocations instead of 700
        (a unit's garbage is freed by reference counting; cycles are rare): 0.2 s, and ~10% less
        CPU per call. Both settings are restored when the run ends."""
        threshold = gc.get_threshold()
        gc.freeze()
        gc.set_threshold(max(threshold[0], 10_000), *threshold[1:])
        try:
            return eventloop.run(self.run())
        finally:
            gc.set_threshold(*threshold)
            gc.unfreeze()

    async def run(self) -> RunManifest:
        self._load_manifest()  # a run.json that is not ours, or corrupt, stops us before anything
        self._check_cache_not_emptied()
        threading.Thread(target=_import_ahead, name="glan-import-ahead", daemon=True).start()
        # prices given before (RUN/prices.json) still price this run's usage; those given now win
        prices = PriceTable(prices={**read_prices(self.rundir), **self.engine_config.prices.prices})
        self.engine_config = self.engine_config.model_copy(update={"prices": prices})
        locks = RunLocks(self.rundir.root)
        # the engine checks the endpoint settings before it creates anything on disk
        async with LLMEngine(self.engine_config, self.rundir.root, console=self.console) as engine:
            self.engine = engine
            engine.expect_models(
                sorted({call.model(self.settings) for step in self.steps for call in step.calls(self.settings)})
            )
            writers = locks.lock(WRITERS_LOCK)
            with locks.disciplines([c.slug for c in self.contexts]):
                writers.acquire(wait=True, shared=True)
                try:
                    with locks.run():
                        self._start(locks, writers, prices)
                    for step in self.steps:
                        await self._run_step(step)
                finally:
                    writers.release()
                engine.flush()  # every usage row is committed before run.json is merged
                with locks.run():
                    manifest = self._merge_manifest()
        if not self.engine_config.quiet:  # after the engine closed, so below the final progress bars
            self.console.print(engine.summary())
        return manifest

    def _start(self, locks: RunLocks, writers: FileLock, prices: PriceTable) -> None:
        """Under the run lock: check the snapshot, rotate failures, retire, snapshot the taxonomy."""
        manifest = self._load_manifest()
        if self.taxonomy_path is None and manifest is not None and manifest.taxonomy_hash:
            if self.taxonomy.content_hash() != manifest.taxonomy_hash:
                raise UsageError(
                    f"{self.rundir.taxonomy} does not match the taxonomy recorded in {self.rundir.run_json} "
                    "(edited, truncated or replaced): restore it, or pass --taxonomy FILE to change the run's "
                    "taxonomy on purpose (disciplines it lacks are then moved to retired/)"
                )
        alone = writers.try_exclusive()  # no other live generation: failures.jsonl may be rewritten
        self._rotate_failures(alone)
        if alone:
            writers.share()
        self.removed = self._retire_removed_disciplines(locks) if self.taxonomy_path is not None else []
        write_text_atomic(self.rundir.taxonomy, self.taxonomy.to_yaml())
        if prices.prices != read_prices(self.rundir):
            write_prices(self.rundir, prices.prices)
        base = manifest or self._new_manifest()
        # the snapshot and its hash change together: a later run can tell a damaged snapshot from a choice
        write_json_atomic(
            self.rundir.run_json,
            base.model_copy(update={"taxonomy_hash": self.taxonomy.content_hash()}).model_dump(mode="json"),
        )

    # ------------------------------------------------------------------ the loop
    def _context(self, step: Step, node: DisciplineContext) -> StepContext:
        return StepContext(node, self.settings, self.prompts, self.chain_versions[step.writes])

    def _say(self, message: str, *, warning: bool = False) -> None:
        """Rich output on a terminal; with --quiet a plain log line instead (progress bars are off too)."""
        if self.quiet:
            log.log(logging.WARNING if warning else logging.INFO, Text.from_markup(message).plain)
        else:
            self.console.print(f"[yellow]{message}[/yellow]" if warning else message)

    async def _run_step(self, step: Step) -> None:
        """Reuse the fresh stage files, make the others: each call over every discipline to make, in turn."""
        ready = [n for n in self.contexts if step.reads is None or self._meta(step.reads, n.slug) is not None]
        contexts = [self._context(step, node) for node in ready]
        expected = {c.slug: self._fingerprint(step, c) for c in contexts}
        todo = [c for c in contexts if not self._is_fresh(step.writes, c.slug, expected[c.slug])]
        self._say(f"[bold]{step.writes}[/bold]: {len(todo)} discipline(s) to generate, {len(ready) - len(todo)} reused")
        if not todo:
            return
        calls = step.calls(self.settings)
        failed = dict.fromkeys((c.slug for c in todo), 0)
        sources: dict[str, Iterable[Any]] = {c.slug: self._sources(step, c) for c in todo}
        units = {c.slug: step.units(self.settings, self._rows(step.reads, c.slug)) for c in todo}
        # A discipline's stage file is written in a worker thread while the calls go on: encoding,
        # compressing and fsync-ing it on the event loop would stall every call in flight. The step
        # ends when every file is on disk (the next step reads them); a few writes wait at most.
        writes: list[asyncio.Future[None]] = []
        try:
            for index, call in enumerate(calls):
                async for done in self._map(call, todo, sources, units):
                    slug = done.context.slug
                    failed[slug] += done.failed
                    results = done.ordered()
                    if index + 1 < len(calls):  # the next call works on these, in source order
                        sources[slug] = results
                        units[slug] = len(results)
                        continue
                    rows = step.finish(done.context, results)
                    writes.append(
                        asyncio.ensure_future(
                            asyncio.to_thread(self._write, step, slug, rows, expected[slug], failed[slug])
                        )
                    )
                    while len(writes) > _WRITES_IN_FLIGHT:
                        await writes.pop(0)
        finally:
            # every write started is finished (or failed) before the step is left, also on an error
            results_of_writes = await asyncio.gather(*writes, return_exceptions=True)
        for outcome in results_of_writes:
            if isinstance(outcome, BaseException):
                raise outcome

    def _meta(self, stage: str, discipline: str) -> StageMeta | None:
        """The stage file's metadata; a file that cannot be read is one line naming it (never replaced)."""
        try:
            return self.store.meta(stage, discipline)
        except Exception as error:  # polars raises several kinds for a damaged or foreign file
            raise self._corrupt(stage, discipline, error) from None

    def _corrupt(self, stage: str, discipline: str, error: Exception) -> UsageError:
        return UsageError(
            f"{self.store.path(stage, discipline)} cannot be read ({type(error).__name__}): it is damaged; "
            f"delete it and run the same command again to regenerate that stage (paid calls come from the cache)"
        )

    def _is_fresh(self, stage: str, discipline: str, expected: str) -> bool:
        meta = self._meta(stage, discipline)
        return meta is not None and meta.complete and meta.fingerprint == expected

    def _sources(self, step: Step, context: StepContext) -> Iterator[Any]:
        """The step's sources; reading a damaged upstream file is one line naming it."""
        try:
            yield from step.sources(context, self.store)
        except (UsageError, GeneratorExit):
            raise
        except Exception as error:
            if step.reads is None:
                raise
            raise self._corrupt(step.reads, context.slug, error) from None

    def _fingerprint(self, step: Step, context: StepContext) -> str:
        upstream = None
        if step.reads is not None:
            meta = self._meta(step.reads, context.slug)
            upstream = None if meta is None else meta.identity
        budgets = {call.name: call.budget(self.settings) for call in step.calls(self.settings)}
        payload = {"stage": step.writes, "node": context.node.identity(), "upstream": upstream, "budgets": budgets}
        return fingerprint({**payload, **step.fingerprint(context)})

    async def _map(
        self, call: Call[Any, Any], todo: list[StepContext], sources: dict[str, Iterable[Any]], units: dict[str, int]
    ) -> AsyncIterator[_Discipline]:
        """Stream ``call`` over every discipline's sources through one engine stream; yield each
        discipline (its parsed results by source position) as soon as its last unit is in."""
        disciplines = [_Discipline(context) for context in todo]
        exhausted: list[_Discipline] = []  # reached their end since the last outcome: may be complete now

        def pairs() -> Iterator[tuple[_Unit, ChatRequest]]:
            for discipline in disciplines:
                for source, request in call.requests(discipline.context, sources[discipline.context.slug]):
                    discipline.asked += 1
                    yield _Unit(discipline, discipline.asked - 1, source), request
                discipline.exhausted = True
                exhausted.append(discipline)

        stream = pairs()
        first = next(stream, None)  # reads the first discipline's input; no engine stream for no unit
        flushed: set[_Discipline] = set()
        if first is not None:
            total = sum(units[d.context.slug] for d in disciplines)
            async for unit, outcome in self.engine.map(_chain(first, stream), stage=call.name, total=total):
                discipline = unit.discipline
                discipline.answered += 1
                self._parse(call, unit, outcome)
                candidates = [discipline, *exhausted]
                exhausted.clear()
                for done in candidates:
                    if done.complete and done not in flushed:
                        flushed.add(done)
                        yield done
                        done.results = {}  # written or handed on by now: memory holds a few disciplines
        for done in disciplines:  # every unit is in: those left had none, or their end was seen last
            if done not in flushed:
                yield done
                done.results = {}

    def _parse(self, call: Call[Any, Any], unit: _Unit, outcome: ChatResult | ChatFailure) -> None:
        discipline = unit.discipline
        if isinstance(outcome, ChatFailure):
            discipline.failed += 1
            self.failures[discipline.context.slug] = self.failures.get(discipline.context.slug, 0) + 1
            return
        parsed = call.parse(discipline.context, unit.source, outcome)
        if isinstance(parsed, Reject):
            self.engine.record_failure(call.name, outcome.key, parsed.reason, 1)
            discipline.failed += 1
            self.failures[discipline.context.slug] = self.failures.get(discipline.context.slug, 0) + 1
        elif parsed is not None:
            discipline.results[unit.position] = parsed

    # ------------------------------------------------------------------ plumbing
    def _rows(self, stage: str | None, discipline: str) -> int:
        meta = None if stage is None else self._meta(stage, discipline)
        return 0 if meta is None else meta.rows

    def _write(self, step: Step, discipline: str, rows: list[Any], expected: str, failures: int) -> None:
        stage = step.writes
        if not rows:
            self._say(
                f"{stage} {discipline}: nothing usable ({failures} failed unit(s)); "
                "see failures.jsonl and run the same command again",
                warning=True,
            )
            return
        ids = [step.row_id(row) for row in rows]
        self.store.write(
            stage, discipline, rows, ids, fingerprint=expected, complete=failures == 0, row_model=step.row_model
        )
        if failures:
            self._say(
                f"{stage} {discipline}: {failures} unit(s) failed and are listed in failures.jsonl; "
                "run the same command again to retry them",
                warning=True,
            )

    def _rotate_failures(self, alone: bool) -> None:
        """failures.jsonl lists what is still outstanding: this run retries the failures of its own
        disciplines, and those that fail again are written anew; their earlier lines move to
        failures.previous.jsonl, other disciplines' lines stay. Only a run that is alone rewrites the
        file: another live process appends to it, and a rewrite would lose its lines. A run that is not
        alone leaves the earlier lines (they over-report until a run alone rotates them, never under-)."""
        path = self.rundir.failures
        if not path.exists():
            return
        if not alone:
            self._say(
                "another generation is running in this run directory: failures.jsonl keeps its earlier lines "
                "until a run alone rotates them",
                warning=False,
            )
            return
        mine = {c.slug for c in self.contexts}
        ours: list[str] = []
        others: list[str] = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True):
            if not line.strip():
                continue
            (ours if _failure_discipline(line) in mine else others).append(line)
        write_text_atomic(path.with_name("failures.previous.jsonl"), "".join(ours))
        if others:
            write_text_atomic(path, "".join(others))
        else:
            path.unlink()

    def _retire_removed_disciplines(self, locks: RunLocks) -> list[str]:
        """Move stage files of disciplines the taxonomy no longer has to RUN/retired/ (kept, not deleted).
        Only an explicit ``--taxonomy`` retires: a damaged snapshot never does (it is refused first). A
        discipline another process is generating is not moved: this run stops instead, naming it."""
        known = {d.slug for d in self.taxonomy.disciplines()}
        stages = (*self.stages, "clean")  # decontaminated records too, or publishing would keep them
        gone = sorted({p.stem for st in stages for p in self.rundir.stage_dir(st).glob("*.parquet")} - known)
        removed: set[str] = set()
        with locks.disciplines(gone, action="generated (and cannot be retired)"):
            for stage in stages:
                for path in sorted(self.rundir.stage_dir(stage).glob("*.parquet")):
                    if path.stem not in known:
                        target = self.rundir.root / "retired" / stage / path.name
                        target.parent.mkdir(parents=True, exist_ok=True)
                        shutil.move(path, target)
                        removed.add(path.stem)
        if removed:
            self._say(
                f"left out {len(removed)} discipline(s) the taxonomy no longer has: {', '.join(sorted(removed))} "
                "(their files are kept in retired/)",
                warning=True,
            )
        return sorted(removed)

    def _load_manifest(self) -> RunManifest | None:
        data = self.rundir.read_run_json()
        if not data:
            return None
        try:
            manifest = RunManifest.model_validate(data)
        except ValueError as error:
            raise UsageError(
                f"{self.rundir.run_json} is not a glan run manifest ({error.__class__.__name__}): restore it "
                "from a copy, or use a new --out"
            ) from None
        if manifest.demo != self.demo:
            kind = "a demo run" if manifest.demo else "a real run"
            raise UsageError(f"{self.rundir.root} holds {kind}; use another --out directory")
        return manifest

    def _new_manifest(self) -> RunManifest:
        return RunManifest(glan_dataset_version=glan_dataset.__version__, settings=self.settings, demo=self.demo)

    def _check_cache_not_emptied(self) -> None:
        """SQLite takes an empty file for a new database: a run with stage files whose cache was emptied
        would silently forget its answers and its recorded spend, and pay again."""
        cache = self.rundir.llm_cache
        if (
            cache.is_file()
            and cache.stat().st_size == 0
            and any(self.rundir.stage_dir(self.stages[0]).glob("*.parquet"))
        ):
            raise UsageError(
                f"{cache} is empty (0 bytes) although the run has stage files: restore it from a copy, or delete "
                "it to start a new cache (calls answered before will be paid again)"
            )

    def _base_urls(self) -> list[str]:
        """The endpoint(s) this run called: --base-url (all of a fleet), else OPENAI_BASE_URL."""
        if self.engine_config.base_urls:
            return list(self.engine_config.base_urls)
        return [self.engine.base_url] if self.engine.base_url else []

    def _merge_manifest(self) -> RunManifest:
        """Under the run lock: run.json as it is now (other processes may have written it since this run
        started), with this run's disciplines, settings and the run's usage as the shared cache holds it."""
        manifest = self._load_manifest() or self._new_manifest()
        generated = set(self.rundir.record_disciplines(self.records_stage))
        counts = dict(manifest.counts)
        for discipline in {c.slug for c in self.contexts}:
            counts[discipline] = StageCounts(
                **{step.writes: self._rows(step.writes, discipline) for step in self.steps},
                failures=self.failures.get(discipline, 0),
            )
        for discipline in self.removed:
            counts.pop(discipline, None)
        removed = (set(manifest.removed_disciplines) | set(self.removed)) - generated
        manifest = manifest.model_copy(
            update={
                "glan_dataset_version": glan_dataset.__version__,
                "updated_at": _now(),
                "settings": self.settings,
                "configs": {**manifest.configs, self.settings.config: self.settings},
                "taxonomy_hash": self.taxonomy.content_hash(),
                "disciplines": sorted(generated),
                "removed_disciplines": sorted(removed),
                "prompt_versions": {**manifest.prompt_versions, **self.prompts.versions},
                "prompt_version": self.prompt_version,
                "counts": counts,
                "usage": self._usage(),
                "engine": {
                    "mode": self.engine_config.mode,
                    "concurrency": self.engine_config.concurrency,
                    "base_urls": [public_url(url) for url in self._base_urls()],
                },
                "records_stage": self.records_stage,
            }
        )
        write_json_atomic(self.rundir.run_json, manifest.model_dump(mode="json"))
        return manifest

    def _usage(self) -> dict[str, Any]:
        """This process's usage, and the run's cumulative usage read from the cache now: every process
        commits its tokens there with each response, so no process's spend is lost or counted twice."""
        cache = ResponseCache(self.rundir.llm_cache)
        try:
            now = cache.usage_totals()
        finally:
            cache.close()
        session = self.engine.usage.session
        previous: dict[tuple[str, str], UsageEntry] = {}
        for key, entry in now.items():
            rest = UsageEntry()
            rest.add(entry)
            mine = session.get(key)
            if mine is not None:
                for name in ("calls", "prompt_tokens", "completion_tokens"):
                    setattr(rest, name, max(0, getattr(rest, name) - getattr(mine, name)))
                for name in ("batch_calls", "batch_prompt_tokens", "batch_completion_tokens"):
                    setattr(rest, name, max(0, getattr(rest, name) - getattr(mine, name)))
            rest.cache_hits = 0
            previous[key] = rest
        ledger = UsageLedger(self.engine_config.prices, previous)
        ledger.session = session
        return ledger.to_dict()


def _failure_discipline(line: str) -> str | None:
    """The discipline of a failures.jsonl line: unit keys start with it (``stages.base.unit_key``)."""
    try:
        key = json.loads(line).get("key")
    except (ValueError, AttributeError):
        return None
    return key.split("/", 1)[0] if isinstance(key, str) else None


@dataclass(frozen=True)
class Outcome:
    """What a generation of a config left: its disciplines' records, units still failing, and the
    disciplines with no records at all. ``partial`` is what exit code 3 and build's refusal mean."""

    disciplines: list[str]
    records: int
    failures: int
    missing: list[str]

    @property
    def partial(self) -> bool:
        return bool(self.failures or self.missing)

    def summary(self) -> str:
        parts = []
        if self.failures:
            parts.append(f"{self.failures} failed unit(s) outstanding")
        if self.missing:
            listed = ", ".join(self.missing[:5]) + (
                f" and {len(self.missing) - 5} more" if len(self.missing) > 5 else ""
            )
            parts.append(f"{len(self.missing)} discipline(s) without records ({listed})")
        return "; ".join(parts)


def outcome(run_dir: str | Path, manifest: RunManifest, config: str, shard: tuple[int, int] | None = None) -> Outcome:
    """The outcome of ``config`` (the shard's part of it) in the run directory, from run.json's counts."""
    run = RunDir(run_dir)
    slugs = [c.slug for c in discipline_contexts(resolve_taxonomy(run, None), config)]
    if shard is not None:
        slugs = slugs[shard[0] :: shard[1]]
    counts = {d: manifest.counts.get(d) for d in slugs}
    return Outcome(
        disciplines=slugs,
        records=sum(c.records for c in counts.values() if c is not None),
        failures=sum(c.failures for c in counts.values() if c is not None),
        missing=[d for d in slugs if not run.records_file(d).exists()],
    )


def _import_ahead() -> None:
    """Import, in a thread, what the first structured call and the first stage file need: openai's
    schema helper (~0.9 s) and pyarrow's first conversion, which loads pandas when installed (~0.45 s).
    On the event loop these stalled every call in flight; here they overlap the first calls' wait on
    the network (the import lock makes a caller that gets there first wait, never import twice). A
    failure here is left to the code that needs the module: a thread must not print a traceback."""
    try:
        import pyarrow as pa

        import_module("openai.lib._parsing._completions")
        pa.Table.from_pylist([{"text": ""}])
    except Exception:  # noqa: S110 - only a head start; the caller imports (and reports) for itself
        pass


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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
) -> RunManifest:
    """Run or resume generation for ``settings.config`` in ``run_dir``; returns the updated run manifest.

    ``shard=(i, n)`` generates only every n-th discipline of the config starting at i, so n machines
    can share a config; ``merge_runs`` combines their run directories. ``steps``: the steps to run, in
    order (default ``glan_dataset.stages.STEPS``)."""
    pipeline = Pipeline(
        run_dir,
        settings,
        engine_config,
        taxonomy_path=taxonomy_path,
        prompts_dir=prompts_dir,
        quiet=quiet,
        demo=demo,
        shard=shard,
        steps=steps,
    )
    return pipeline.run_sync()
