"""Request counters of the fake server, readable from other threads and over HTTP.

Tests assert on these counts (e.g. "a resumed run made no new calls"), and benchmarks
read them from a server subprocess through ``GET /v1/_stats``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ServerStats:
    """Counts since start or the last reset.

    - ``chat_calls``: requests received on ``/chat/completions`` (any outcome)
    - ``chat_ok``: of those, answered 200 with a full body (invalid-JSON faults count)
    - ``faults``: injected faults by kind (``"429"``, ``"500"``, ``"503"``, ``"hang"``,
      ``"invalid_json"``, ``"truncated"``, ``"batch_item_error"``)
    - ``batch_requests``: Batch API items processed (ok or failed)
    - ``by_model``: chat requests per ``model``
    - ``requests_log``: ``(model, sha256 of canonical messages JSON)`` per chat request,
      only when the server was created with ``record=True`` (else ``None``)
    - ``busy_seconds``: from the first chat request received to the last answered (benchmarks divide
      calls by it: a client's rate while it works, without its start-up and shut-down)

    Mutated only by the server's event loop; ints and Counters are read safely from
    other threads, and :meth:`snapshot` gives a consistent copy.
    """

    chat_calls: int = 0
    chat_ok: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    batch_requests: int = 0
    by_model: Counter[str] = field(default_factory=Counter)
    requests_log: list[tuple[str, str]] | None = None
    first_call_at: float | None = None  # time.monotonic() of the first chat request
    last_ok_at: float | None = None  # and of the last full answer
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count_call(self, model: str, messages_sha: str | None = None) -> None:
        with self._lock:
            self.chat_calls += 1
            if self.first_call_at is None:
                self.first_call_at = time.monotonic()
            self.by_model[model] += 1
            if self.requests_log is not None and messages_sha is not None:
                self.requests_log.append((model, messages_sha))

    def count_ok(self) -> None:
        with self._lock:
            self.chat_ok += 1
            self.last_ok_at = time.monotonic()

    def count_fault(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self.faults[kind] += n

    def count_batch_items(self, n: int) -> None:
        with self._lock:
            self.batch_requests += n

    def reset(self) -> None:
        """Zero every counter in place (holders of this object see the reset)."""
        with self._lock:
            self.chat_calls = self.chat_ok = self.batch_requests = 0
            self.first_call_at = self.last_ok_at = None
            self.faults.clear()
            self.by_model.clear()
            if self.requests_log is not None:
                self.requests_log.clear()

    def snapshot(self) -> ServerStats:
        """A consistent, independent copy."""
        with self._lock:
            return ServerStats(
                chat_calls=self.chat_calls,
                chat_ok=self.chat_ok,
                faults=Counter(self.faults),
                batch_requests=self.batch_requests,
                by_model=Counter(self.by_model),
                requests_log=None if self.requests_log is None else list(self.requests_log),
                first_call_at=self.first_call_at,
                last_ok_at=self.last_ok_at,
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form served on ``GET /v1/_stats``."""
        snap = self.snapshot()
        return {
            "chat_calls": snap.chat_calls,
            "chat_ok": snap.chat_ok,
            "faults": dict(snap.faults),
            "batch_requests": snap.batch_requests,
            "by_model": dict(snap.by_model),
            "requests_log": None if snap.requests_log is None else [list(r) for r in snap.requests_log],
            "busy_seconds": snap.busy_seconds,
        }

    @property
    def busy_seconds(self) -> float | None:
        if self.first_call_at is None or self.last_ok_at is None:
            return None
        return self.last_ok_at - self.first_call_at

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServerStats:
        """Inverse of :meth:`to_dict` (for a client reading a subprocess server's stats)."""
        log = data.get("requests_log")
        return cls(
            chat_calls=int(data.get("chat_calls", 0)),
            chat_ok=int(data.get("chat_ok", 0)),
            faults=Counter(data.get("faults") or {}),
            batch_requests=int(data.get("batch_requests", 0)),
            by_model=Counter(data.get("by_model") or {}),
            requests_log=None if log is None else [(str(m), str(s)) for m, s in log],
        )
