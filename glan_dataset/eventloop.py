"""The event loop glan's calls run on: uvloop where it is installed (a dependency on Linux and
macOS), else asyncio's own.

Why: at a thousand calls a second the loop's own bookkeeping (callbacks, timers, socket reads) is
a large share of the client's CPU. With uvloop the engine costs ~0.08 ms less CPU per call on the
loopback benchmark (``bench/engine.py``: 0.39 -> 0.29-0.33 ms at 256 in flight, same run), and
generate's pipeline work between calls runs on the same loop. ``asyncio.Runner`` with a loop factory
keeps ``asyncio.run``'s behaviour: Ctrl-C cancels the main task, async generators and the default
executor are shut down. ``GLAN_EVENT_LOOP=asyncio`` picks asyncio's loop (to debug, or where uvloop
misbehaves).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's ``new_event_loop`` when installed and not turned off, else asyncio's."""
    if os.environ.get("GLAN_EVENT_LOOP", "").lower() != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the loop :func:`loop_factory` picks."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
