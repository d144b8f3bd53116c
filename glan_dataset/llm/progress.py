"""Progress: plain counters bumped per call, drawn at a fixed rate.

Why counters + a timer: at thousands of calls per second, updating a rich task per call costs a lock
and a render check each time; incrementing ints costs nothing and the display reads them 4 times a
second. ``quiet`` replaces the bars with a log line per active stage every ``log_every`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from rich import box
from rich.console import Console, Group, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from glan_dataset.llm.cost import UsageLedger

log = logging.getLogger("glan_dataset.llm")


@dataclass(slots=True)
class StageStats:
    """Counters for one stage in this process (several stream calls may share a stage)."""

    stage: str
    total: int | None = None
    done: int = 0
    cached: int = 0
    calls: int = 0
    retries: int = 0
    failures: int = 0
    in_flight: int = 0
    wall: float = 0.0
    started: float = field(default_factory=time.monotonic)
    active_streams: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # failure kind -> count (truncated, refused, ...)


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f}/s" if speed else "-/s", style="progress.data.speed")


class _FieldsColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        f = task.fields
        cost = f.get("cost")
        cost_text = f"${cost:,.2f}" if isinstance(cost, float) else "$?"
        counts = f"in flight {f.get('in_flight', 0)} · retries {f.get('retries', 0)} · failed {f.get('failures', 0)}"
        return Text(f"{counts} · {cost_text}")


class ProgressDisplay:
    """One row per stage. Started by the first stream and stopped when the engine closes."""

    def __init__(
        self,
        ledger: UsageLedger,
        *,
        quiet: bool,
        console: Console | None = None,
        refresh: float = 0.25,
        log_every: float = 10.0,
    ) -> None:
        self.ledger = ledger
        self.quiet = quiet
        self.stages: dict[str, StageStats] = {}
        self._console = console
        self._refresh = refresh
        self._log_every = log_every
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._timer: asyncio.Task[None] | None = None
        self._last_log = time.monotonic()

    def stage(self, name: str, total: int | None) -> StageStats:
        stats = self.stages.get(name)
        if stats is None:
            stats = self.stages[name] = StageStats(stage=name, total=total)
        elif total is not None:
            stats.total = (stats.total or 0) + total if stats.active_streams else total + stats.done
        stats.active_streams += 1
        if self._timer is None:
            self._start()
        return stats

    def end_stage(self, stats: StageStats) -> None:
        stats.active_streams -= 1
        self._draw()

    def _start(self) -> None:
        if not self.quiet:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(bar_width=16),
                MofNCompleteColumn(),
                _RateColumn(),
                TimeRemainingColumn(),
                _FieldsColumn(),
                console=self._console,
                auto_refresh=False,
                transient=False,
            )
            self._progress.start()
        self._timer = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._refresh)
            self._draw()

    def _draw(self) -> None:
        now = time.monotonic()
        for stats in self.stages.values():
            if stats.active_streams:
                stats.wall += now - stats.started
            stats.started = now
        if self._progress is not None:
            for name, stats in self.stages.items():
                task_id = self._tasks.get(name)
                if task_id is None:
                    task_id = self._tasks[name] = self._progress.add_task(name, total=stats.total)
                self._progress.update(
                    task_id,
                    completed=stats.done,
                    total=stats.total,
                    in_flight=stats.in_flight,
                    retries=stats.retries,
                    failures=stats.failures,
                    cached=stats.cached,
                    cost=self.ledger.stage_cost(name),
                )
            self._progress.refresh()
        elif now - self._last_log >= self._log_every:
            self._last_log = now
            for stats in self.stages.values():
                if stats.active_streams:
                    log.info(
                        "%s: %d/%s done, %d cached, %d in flight, %d retries, %d failed",
                        stats.stage,
                        stats.done,
                        stats.total if stats.total is not None else "?",
                        stats.cached,
                        stats.in_flight,
                        stats.retries,
                        stats.failures,
                    )

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._draw()
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._tasks.clear()

    def summary(self) -> RenderableType:
        table = Table(title="LLM calls", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
        for column in ("stage", "done", "calls", "cached", "retries", "failed", "tok in", "tok out", "cost", "wall"):
            table.add_column(column, justify="left" if column == "stage" else "right", no_wrap=True)
        session = self.ledger.session
        for name, stats in self.stages.items():
            prompt = sum(e.prompt_tokens + e.batch_prompt_tokens for (s, _), e in session.items() if s == name)
            completion = sum(
                e.completion_tokens + e.batch_completion_tokens for (s, _), e in session.items() if s == name
            )
            cost = self.ledger.stage_cost(name)
            table.add_row(
                name,
                f"{stats.done:,}",
                f"{stats.calls:,}",
                f"{stats.cached:,}",
                f"{stats.retries:,}",
                f"{stats.failures:,}",
                f"{prompt:,}",
                f"{completion:,}",
                "?" if cost is None else f"${cost:,.2f}",
                f"{stats.wall:,.1f}s",
            )
        total = self.ledger.cost(cumulative=True)
        table.caption = "run total so far: " + (
            "unknown cost (no --price for some model)" if total is None else f"${total:,.2f}"
        )
        failing = [(name, stats.reasons) for name, stats in self.stages.items() if stats.reasons]
        if not failing:
            return table
        reasons = Table(title="failures by reason", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
        for column in ("stage", "reason", "units"):
            reasons.add_column(column, justify="right" if column == "units" else "left", no_wrap=True)
        for name, counts in failing:
            for kind, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
                reasons.add_row(name, kind, f"{count:,}")
        return Group(table, reasons)
