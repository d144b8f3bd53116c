"""Where generation runs: one interface, three places.

* :class:`LocalExecutor`: every discipline of the config in this process (the default);
* :class:`ShardedExecutor`: every N-th discipline (``--shard I/N``), one machine's share; the run
  directories are combined afterwards with :meth:`Executor.gather` (``glan merge-runs``);
* :class:`RayExecutor`: each discipline as a Ray task over a cluster (``--executor ray``), in its own
  part of a run directory every worker sees, gathered into the run as each one finishes.

All three run the same :class:`glan_dataset.pipeline.Pipeline`; they differ only in which
disciplines a process takes and where its run directory is.
"""

from glan_dataset.executors.base import Executor, GenerationJob, discipline_lock, make_executor
from glan_dataset.executors.local import LocalExecutor
from glan_dataset.executors.sharded import ShardedExecutor

__all__ = ["Executor", "GenerationJob", "LocalExecutor", "ShardedExecutor", "discipline_lock", "make_executor"]
