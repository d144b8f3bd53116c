"""A fleet of endpoints: one chat-completions transport over several OpenAI-compatible servers.

``--base-url`` given several times (or a file of URLs) puts every request on the endpoint with the
fewest requests outstanding among those that can take one. Each endpoint has its own adaptive
concurrency (halved by a 429/503, grown back by successes) and its own Retry-After pause; a request
refused by one endpoint goes to another before the engine sees a fault. An endpoint that refuses
connections leaves the rotation and is probed back in by a real request after 1 s, then 2, 4 ... 30 s.
Only when no endpoint can take a request does the engine see the fault (and back off as for one
endpoint). The summary lists calls, errors and tokens per endpoint.

It has the interface of :class:`glan_dataset.llm.transport.DirectTransport` (``post``, ``aclose``),
so the engine uses it where it would use one transport.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich import box
from rich.table import Table

from glan_dataset.errors import UsageError
from glan_dataset.llm.limits import AdaptiveConcurrency, retry_after_seconds
from glan_dataset.llm.transport import ConnectFault, ConnectionFault, DirectTransport, HTTPStatusFault, TimeoutFault
from glan_dataset.llm.types import endpoint_host

PROBE_FIRST = 1.0
PROBE_MAX = 30.0
OVERLOAD_PAUSE = 1.0  # an endpoint's pause after a 429/503 without Retry-After


def read_base_urls(values: Sequence[str]) -> list[str]:
    """``--base-url`` values: URLs, or files of URLs (one a line, ``#`` comments), in order, without repeats."""
    urls: list[str] = []
    for value in values:
        path = Path(value)
        if not value.startswith(("http://", "https://")) and path.is_file():
            lines = [line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
            found = [line for line in lines if line]
            if not found:
                raise UsageError(f"--base-url {value}: the file lists no URL (one a line)")
            candidates = found
        else:
            candidates = [value]
        for url in candidates:
            if not url.startswith(("http://", "https://")):
                raise UsageError(f"--base-url {url!r}: expected an http(s):// URL or a file of them")
            if url not in urls:
                urls.append(url)
    return urls


@dataclass(eq=False)
class Endpoint:
    url: str
    transport: DirectTransport
    concurrency: AdaptiveConcurrency
    outstanding: int = 0
    paused_until: float = 0.0  # Retry-After
    dead: bool = False
    probe_at: float = 0.0
    probe_interval: float = PROBE_FIRST
    probing: bool = False
    calls: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    last_error: str = field(default="")

    def available(self, now: float) -> bool:
        if self.dead:
            return not self.probing and now >= self.probe_at
        return now >= self.paused_until and self.outstanding < int(self.concurrency.limit)


class Fleet:
    """See the module docstring. Create and use it inside the event loop."""

    def __init__(self, urls: Sequence[str], api_key: str, timeout: float, concurrency: int) -> None:
        if not urls:
            raise UsageError("a fleet needs at least one --base-url")
        self.endpoints = [
            Endpoint(url, DirectTransport(url, api_key, timeout), AdaptiveConcurrency(concurrency)) for url in urls
        ]
        self._changed = asyncio.Condition()

    def __repr__(self) -> str:
        return f"Fleet({[endpoint_host(e.url) for e in self.endpoints]})"

    async def post(self, payload: bytes) -> tuple[bytes, Mapping[str, str]]:
        """Send on the least-loaded endpoint that can take it; move on to another when one refuses."""
        tried: set[int] = set()
        while True:
            endpoint = await self._pick(tried)
            sent_at = time.monotonic()
            endpoint.outstanding += 1
            endpoint.calls += 1
            try:
                body, headers = await endpoint.transport.post(payload)
            except HTTPStatusFault as fault:
                endpoint.errors += 1
                endpoint.last_error = f"HTTP {fault.status}"
                if fault.status not in (429, 503):
                    raise
                endpoint.concurrency.on_overload(sent_at)
                pause = retry_after_seconds(fault.headers) or OVERLOAD_PAUSE
                endpoint.paused_until = max(endpoint.paused_until, time.monotonic() + pause)
                if not self._others(tried, endpoint):
                    raise
            except ConnectFault as fault:
                endpoint.errors += 1
                endpoint.last_error = "refused connection"
                self._take_out(endpoint)
                if not self._others(tried, endpoint):
                    raise fault from None
            except (ConnectionFault, TimeoutFault):  # broke mid-call (a server killed, a hang): try another
                endpoint.errors += 1
                endpoint.last_error = "connection broke"
                if not self._others(tried, endpoint):
                    raise
            else:
                self._took(endpoint, body)
                return body, headers
            finally:
                endpoint.outstanding -= 1
                endpoint.probing = False
                async with self._changed:
                    self._changed.notify_all()
            tried.add(self.endpoints.index(endpoint))

    def _others(self, tried: set[int], endpoint: Endpoint) -> bool:
        """Is there an endpoint, other than those tried and this one, that is not out of rotation?"""
        return any(
            i not in tried and e is not endpoint and (not e.dead or time.monotonic() >= e.probe_at)
            for i, e in enumerate(self.endpoints)
        )

    async def _pick(self, tried: set[int]) -> Endpoint:
        """The least-outstanding available endpoint (a dead one whose probe is due comes first, so it
        is probed by this request); waits while every live one is at its limit or paused."""
        async with self._changed:
            while True:
                now = time.monotonic()
                candidates = [e for i, e in enumerate(self.endpoints) if i not in tried and e.available(now)]
                if candidates:
                    probe = next((e for e in candidates if e.dead), None)
                    if probe is not None:
                        probe.probing = True
                        return probe
                    return min(candidates, key=lambda e: e.outstanding / max(1.0, e.concurrency.limit))
                live = [e for i, e in enumerate(self.endpoints) if i not in tried and not e.dead]
                if not live:  # everything left is out of rotation until its probe is due
                    due = min((e.probe_at for i, e in enumerate(self.endpoints) if i not in tried), default=None)
                    if due is None or due - now > PROBE_FIRST:
                        raise ConnectFault("every endpoint of the fleet refuses connections")
                    timeout = max(0.01, due - now)
                else:
                    pauses = [e.paused_until - now for e in live if e.paused_until > now]
                    timeout = min(pauses) if pauses and len(pauses) == len(live) else 0.5
                try:
                    await asyncio.wait_for(self._changed.wait(), timeout)
                except TimeoutError:
                    pass

    def _take_out(self, endpoint: Endpoint) -> None:
        """Out of rotation until its probe; a failed probe doubles the wait (requests that were already
        in flight when it died do not)."""
        if endpoint.dead and not endpoint.probing:
            return
        if endpoint.probing:
            endpoint.probe_interval = min(PROBE_MAX, endpoint.probe_interval * 2)
        endpoint.dead = True
        endpoint.probe_at = time.monotonic() + endpoint.probe_interval

    def _took(self, endpoint: Endpoint, body: bytes) -> None:
        if endpoint.dead:  # the probe went through: back in rotation
            endpoint.dead = False
            endpoint.probe_interval = PROBE_FIRST
        endpoint.concurrency.on_success()
        try:
            usage = json.loads(body).get("usage") or {}
            endpoint.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            endpoint.completion_tokens += int(usage.get("completion_tokens") or 0)
        except (ValueError, AttributeError, TypeError):
            pass  # the engine reports the malformed body

    async def aclose(self) -> None:
        for endpoint in self.endpoints:
            await endpoint.transport.aclose()

    def summary(self) -> Table:
        table = Table(title="endpoints", box=box.SIMPLE_HEAD)
        for column in ("endpoint", "calls", "errors", "in tokens", "out tokens", "state"):
            table.add_column(column, justify="left" if column in ("endpoint", "state") else "right")
        for e in self.endpoints:
            state = f"out of rotation ({e.last_error})" if e.dead else "live"
            table.add_row(
                e.url, f"{e.calls:,}", f"{e.errors:,}", f"{e.prompt_tokens:,}", f"{e.completion_tokens:,}", state
            )
        return table
