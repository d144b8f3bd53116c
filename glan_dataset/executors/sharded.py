"""``--shard I/N``: one machine's share of a config (every N-th discipline from the I-th, in taxonomy
order, so every machine computes the same split). Each machine writes its own run directory;
:meth:`Executor.gather` (``glan merge-runs``) combines them."""

from __future__ import annotations

from glan_dataset.errors import UsageError
from glan_dataset.executors.local import LocalExecutor


class ShardedExecutor(LocalExecutor):
    name = "sharded"

    def __init__(self, index: int, count: int) -> None:
        if not 0 <= index < count:
            raise UsageError(f"shard {index}/{count}: expected 0 <= I < N")
        super().__init__(shard=(index, count))
