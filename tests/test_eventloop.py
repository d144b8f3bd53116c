"""The event loop runs are made on: uvloop when installed, asyncio's when asked for."""

from __future__ import annotations

import asyncio
import signal
import sys

import pytest

from glan_dataset import eventloop


async def loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


@pytest.mark.skipif(sys.platform == "win32", reason="uvloop is a dependency on Linux and macOS only")
def test_runs_on_uvloop_where_it_is_a_dependency(monkeypatch):
    monkeypatch.delenv("GLAN_EVENT_LOOP", raising=False)
    assert eventloop.run(loop_module()).startswith("uvloop")


def test_glan_event_loop_asyncio_picks_asyncios_loop(monkeypatch):
    monkeypatch.setenv("GLAN_EVENT_LOOP", "asyncio")
    assert eventloop.run(loop_module()).startswith("asyncio")


def test_ctrl_c_cancels_the_main_task_and_its_cleanup_runs(monkeypatch):
    """As asyncio.run: KeyboardInterrupt reaches the caller after the task's finally blocks ran."""
    monkeypatch.delenv("GLAN_EVENT_LOOP", raising=False)
    cleaned: list[str] = []

    async def main() -> None:
        try:
            asyncio.get_running_loop().call_later(0.05, signal.raise_signal, signal.SIGINT)
            await asyncio.sleep(30)
        finally:
            cleaned.append("done")

    with pytest.raises(KeyboardInterrupt):
        eventloop.run(main())
    assert cleaned == ["done"]
