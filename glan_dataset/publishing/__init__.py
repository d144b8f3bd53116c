"""Publishing: from a decontaminated run directory to a script-free parquet + YAML dataset repository.

Public API::

    from glan_dataset.publishing import publish_run, parse_target
    publish_run("runs/physics", "hf://ORG/NAME", license="apache-2.0", tag="v1.0")

Modules, in the order a publish uses them: ``split`` (GLAN-Test), ``layout`` (shards, configs,
dataset_info), ``releases`` (changelog), ``chart``, ``card`` (README from ``dataset_card/``),
``targets`` (plan + local folder; the protocol the Hub target implements), ``hub``, ``publish``
(orchestration of a publish). Generate + decontaminate + publish (``build``) and the demo are flows
(``glan_dataset.flows``): this package never imports generation.
"""

from __future__ import annotations

from typing import Any

from glan_dataset.publishing.targets import (
    LocalFolderTarget,
    PublishPlan,
    PublishResult,
    PublishTarget,
    RemoteFile,
    parse_target,
    plan_publish,
    preflight,
)

__all__ = [
    "LocalFolderTarget",
    "PublishPlan",
    "PublishResult",
    "PublishTarget",
    "RemoteFile",
    "parse_target",
    "plan_publish",
    "preflight",
    "publish_run",
]


def __getattr__(name: str) -> Any:
    # publish_run pulls in polars, rich and jinja2: imported on first use, not with the package.
    if name == "publish_run":
        from glan_dataset.publishing.publish import publish_run

        return publish_run
    raise AttributeError(name)
