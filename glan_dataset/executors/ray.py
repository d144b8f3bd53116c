"""``--executor ray``: the config's disciplines fan out over a Ray cluster.

Where state lives (the decision): the run directory is on storage every worker sees (a shared
filesystem path, e.g. NFS or a cluster file system, the same path on every node). Each discipline
is generated in its own *part*, ``RUN/parts/<discipline>/``: a complete run directory of one
discipline (its stage files, its own response cache, its failures), so a discipline's state is
self-contained and moving it between workers is safe. Only one process works on a part at a time
(``RUN/parts/<discipline>/.lock``, an ``flock`` the kernel drops when its holder dies), and only
one writer ever opens a part's SQLite cache, which is what SQLite needs on a network file system.
As each discipline finishes, the driver gathers its part into ``RUN`` exactly as ``glan merge-runs``
combines ``--shard`` runs (:meth:`Executor.gather`): stage files, cached responses, usage.

Faults: a worker is a Ray actor restarted when its process dies, and its call is retried
(``max_restarts``, ``max_task_retries``): the discipline starts again from its part, where every
answered call is in the cache, so it repays at most the calls that were in flight. A driver
restarted with the same command resubmits every discipline: finished parts are reused by
fingerprint and gathered again (nothing is copied twice), unfinished ones resume from their cache.

The driver draws one progress line for the whole cluster (calls, rate, ETA, cost), read from the
parts' caches (read-only), and prints one summary at the end.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import time
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from glan_dataset.errors import ConfigurationError, GlanError, UsageError
from glan_dataset.executors.base import Executor, GenerationJob, discipline_lock
from glan_dataset.llm import PriceTable
from glan_dataset.pipeline import Pipeline, discipline_contexts, resolve_taxonomy
from glan_dataset.plan import plan_generation
from glan_dataset.prompts import PromptLibrary
from glan_dataset.rundir import RunDir, write_json_atomic, write_text_atomic
from glan_dataset.servers import serve
from glan_dataset.settings import RunManifest
from glan_dataset.stages import prompt_names

log = logging.getLogger(__name__)

INSTALL_HINT = "--executor ray needs Ray: pip install 'glan-dataset[ray]' (or pip install 'ray>=2.40')"
PARTS = "parts"
WORKER_FILE = "worker.json"  # in a part: which process works on it now (host, pid), for operators and tests
LOCK_WAIT = 120.0  # a part still locked by a worker of a killed driver: Ray stops that worker within seconds
RESTARTS = 3  # a worker process may die this many times (each death repays at most its calls in flight)


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    return ray


def part_dir(run_dir: Path, discipline: str) -> Path:
    return run_dir / PARTS / discipline


class DisciplineWorker:
    """One Ray actor: generates whole disciplines, one at a time, each in its part of the run directory.
    With ``--serve`` it starts its own server when it starts (and again if Ray restarts it)."""

    def __init__(self, job: GenerationJob) -> None:
        self.job = job
        self.engine_config = job.engine_config.model_copy(update={"quiet": True})
        self._resources = ExitStack()  # the server this worker started, stopped by close()
        if job.serve is not None:
            server = self._resources.enter_context(serve(job.serve, job.settings.model, job.run_dir / "servers"))
            self.engine_config = self.engine_config.model_copy(update={"base_url": server.base_url, "base_urls": []})

    def generate(self, discipline: str) -> dict[str, Any]:
        job = self.job
        run = RunDir(job.run_dir)
        if not run.taxonomy.exists():
            raise ConfigurationError(
                f"{run.root} is not visible on {socket.gethostname()}: --executor ray needs the run directory "
                "on storage every worker sees (the same path on every node)"
            )
        part = part_dir(job.run_dir, discipline)
        with discipline_lock(part, f"discipline {discipline}", wait=LOCK_WAIT):
            worker = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
            write_json_atomic(part / WORKER_FILE, worker)
            settings = job.settings.model_copy(update={"config": discipline})
            pipeline = Pipeline(
                part,
                settings,
                self.engine_config,
                taxonomy_path=run.taxonomy,
                prompts_dir=job.prompts_dir,
                quiet=True,
                demo=job.demo,
                steps=job.steps,
            )
            pipeline.run_sync()
        return {"discipline": discipline, **worker}

    def close(self) -> None:
        self._resources.close()


@dataclass
class _Usage:
    """Calls, tokens and cost over the parts' caches, less what they held when this run started."""

    prices: PriceTable
    baseline: dict[tuple[str, str, str, int], tuple[int, int, int]] = field(default_factory=dict)
    now: dict[tuple[str, str, str, int], tuple[int, int, int]] = field(default_factory=dict)

    def read(self, parts: Path) -> None:
        """Read every part's usage table (read-only: the worker is the only writer)."""
        for cache in parts.glob(f"*/{RunDir('.').llm_cache.name}"):
            try:
                db = sqlite3.connect(f"file:{cache}?mode=ro", uri=True, timeout=1.0)
                try:
                    rows = db.execute(
                        "SELECT stage, model, batch, calls, prompt_tokens, completion_tokens FROM usage"
                    ).fetchall()
                finally:
                    db.close()
            except sqlite3.Error:
                continue  # being created: read it next time
            for stage, model, batch, calls, prompt, completion in rows:
                self.now[(cache.parent.name, stage, model, batch)] = (calls, prompt, completion)

    def start(self, parts: Path) -> None:
        self.read(parts)
        self.baseline = dict(self.now)

    def by_stage(self) -> dict[tuple[str, str], tuple[int, int, int, float | None]]:
        out: dict[tuple[str, str], tuple[int, int, int, float | None]] = {}
        for (part, stage, model, batch), (calls, prompt, completion) in self.now.items():
            base = self.baseline.get((part, stage, model, batch), (0, 0, 0))
            c, p, o = calls - base[0], prompt - base[1], completion - base[2]
            if not (c or p or o):
                continue
            cost = self.prices.cost(model, p, o, batch=bool(batch))
            old = out.get((stage, model), (0, 0, 0, 0.0))
            total = None if old[3] is None or cost is None else old[3] + cost
            out[(stage, model)] = (old[0] + c, old[1] + p, old[2] + o, total)
        return out

    def calls(self) -> int:
        return sum(v[0] for v in self.by_stage().values())

    def cost(self) -> float | None:
        costs = [v[3] for v in self.by_stage().values()]
        return None if any(c is None for c in costs) else sum(c for c in costs if c is not None)

    def cached_calls(self) -> int:
        return sum(v[0] for v in self.baseline.values())


class RayExecutor(Executor):
    """Each discipline of the config as a call on a pool of Ray actors (see the module docstring).

    ``address``: ``None`` joins the cluster Ray already runs in this process, else starts a local
    instance; ``"auto"`` or ``"ray://HOST:10001"`` join an existing cluster. ``workers``: actors in
    the pool (default: the cluster's CPUs, at most one per discipline). ``num_gpus``: GPUs each worker
    reserves (for ``--serve`` with a GPU server)."""

    name = "ray"

    def __init__(
        self, address: str | None = None, workers: int | None = None, *, num_cpus: float = 1, num_gpus: float = 0
    ) -> None:
        self.ray = import_ray()
        self.address = address
        self.workers = workers
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus

    def run(self, job: GenerationJob) -> RunManifest:
        ray = self.ray
        job = replace(job, run_dir=job.run_dir.expanduser().absolute())
        run = RunDir(job.run_dir)
        run.root.mkdir(parents=True, exist_ok=True)
        console = Console(stderr=True, quiet=job.quiet)
        with discipline_lock(run.root / PARTS, f"the run directory {run.root}"):
            taxonomy = resolve_taxonomy(run, job.taxonomy_path)
            write_text_atomic(run.taxonomy, taxonomy.to_yaml())
            contexts = discipline_contexts(taxonomy, job.settings.config)
            disciplines = [context.slug for context in contexts]
            if not ray.is_initialized():
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
            cpus = int(ray.cluster_resources().get("CPU", 1))
            count = max(1, min(len(disciplines), self.workers or cpus))
            plan = plan_generation(
                job.settings,
                contexts,
                PromptLibrary(job.prompts_dir, prompt_names(job.settings, job.steps)),
                job.engine_config.prices,
                steps=job.steps,
            )
            usage = _Usage(job.engine_config.prices)
            usage.start(run.root / PARTS)
            if run.failures.exists():  # what is still outstanding is gathered anew from the parts
                os.replace(run.failures, run.failures.with_name("failures.previous.jsonl"))
            started = time.monotonic()
            actor = ray.remote(num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_restarts=RESTARTS)(DisciplineWorker)
            actor = actor.options(max_task_retries=RESTARTS)
            pool = [actor.remote(job) for _ in range(count)]
            try:
                workers = self._drive(job, pool, disciplines, usage, plan.calls, console)
            finally:
                for worker in pool:  # stop their servers, then the actors
                    try:
                        ray.get(worker.close.remote(), timeout=60)
                    except Exception as error:  # noqa: BLE001 (a dead actor has nothing left to stop)
                        log.debug("closing a Ray worker: %s", error)
                    ray.kill(worker)
            elapsed = time.monotonic() - started
        if not job.quiet:
            console.print(_summary(usage, [s.stage for s in plan.stages], len(disciplines), workers, count, elapsed))
        data = run.read_run_json()
        return RunManifest.model_validate(data) if data else RunManifest(settings=job.settings, demo=job.demo)

    def _drive(
        self,
        job: GenerationJob,
        pool: list[Any],
        disciplines: list[str],
        usage: _Usage,
        planned: int,
        console: Console,
    ) -> set[tuple[str, int]]:
        """Submit every discipline, gather each part as it finishes, draw the progress; the (host, pid)
        of every worker process that finished a discipline."""
        from ray.util import ActorPool

        ray = self.ray
        actors = ActorPool(pool)
        for discipline in disciplines:
            actors.submit(lambda worker, slug: worker.generate.remote(slug), discipline)
        total = max(1, planned - usage.cached_calls())
        progress = Progress(
            TextColumn("[bold]ray[/bold] {task.fields[done]}/{task.fields[disciplines]} disciplines"),
            BarColumn(),
            TextColumn("{task.completed:,.0f}/~{task.total:,.0f} calls"),
            TextColumn("{task.fields[rate]:,.1f}/s"),
            TextColumn("ETA {task.fields[eta]}"),
            TextColumn("{task.fields[cost]}"),
            TimeElapsedColumn(),
            console=console,
            disable=job.quiet,
        )
        task = progress.add_task("ray", total=total, done=0, disciplines=len(disciplines), rate=0.0, eta="?", cost="")
        finished: set[tuple[str, int]] = set()
        returned = 0
        started = last_log = time.monotonic()
        with progress:
            while actors.has_next():
                try:
                    result = actors.get_next_unordered(timeout=0.5)
                except TimeoutError:
                    result = None
                except ray.exceptions.RayTaskError as error:
                    cause = getattr(error, "cause", None)
                    if isinstance(cause, GlanError):
                        raise cause from None
                    raise
                if result is not None:
                    returned += 1
                    finished.add((result["host"], result["pid"]))
                    part = part_dir(job.run_dir, result["discipline"])
                    if RunDir(part).run_json.exists():
                        self.gather([part], job.run_dir)
                usage.read(job.run_dir / PARTS)
                calls, elapsed = usage.calls(), time.monotonic() - started
                rate = calls / elapsed if elapsed > 0 else 0.0
                eta = _duration(max(0, total - calls) / rate) if rate > 0 else "?"
                cost = usage.cost()
                done = returned
                progress.update(
                    task,
                    completed=min(calls, total),
                    done=done,
                    rate=rate,
                    eta=eta,
                    cost="" if cost is None else f"${cost:,.2f}",
                )
                if job.quiet and time.monotonic() - last_log >= 10:
                    last_log = time.monotonic()
                    log.info("ray: %d/%d disciplines, %d calls, %.1f calls/s", done, len(disciplines), calls, rate)
        return finished


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _summary(
    usage: _Usage, order: list[str], disciplines: int, workers: set[tuple[str, int]], pool: int, elapsed: float
) -> Table:
    table = Table(
        title=f"ray: {disciplines} discipline(s) on {pool} worker(s), {len(workers)} worker process(es) "
        f"finished them, {_duration(elapsed)}",
        box=box.SIMPLE_HEAD,
    )
    for column in ("call", "model", "calls", "in tokens", "out tokens", "USD"):
        table.add_column(column, justify="left" if column in ("call", "model") else "right")
    rows = sorted(
        usage.by_stage().items(),
        key=lambda item: (order.index(item[0][0]) if item[0][0] in order else len(order), item[0]),
    )
    for (stage, model), (calls, prompt, completion, cost) in rows:
        table.add_row(
            stage, model, f"{calls:,}", f"{prompt:,}", f"{completion:,}", "n/a" if cost is None else f"{cost:,.2f}"
        )
    calls = usage.calls()
    table.caption = f"{calls:,} paid call(s) in this run, {calls / elapsed if elapsed else 0:,.1f} calls/s"
    return table


def describe_worker(part: Path) -> dict[str, Any] | None:
    """The worker that works (or last worked) on a part: host and pid, as it wrote them."""
    path = part / WORKER_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
