"""glan-dataset: GLAN instruction-tuning datasets from a taxonomy of human knowledge.

The public API (everything else is internal and may change)::

    from glan_dataset import GenerationSettings, EngineConfig, build
    build("runs/physics", GenerationSettings(config="physics"), EngineConfig(base_url=...), "hf://ORG/NAME")

Flows (``glan_dataset.flows``): ``generate``, ``decontaminate``, ``publish``, ``prepare``, ``build``,
``merge_runs``, ``demo``. Settings: ``GenerationSettings``, ``SamplingParams``, ``EngineConfig``,
``PriceTable``, ``DecontaminationSettings``, ``RunManifest``. Steps: ``STEPS``, ``Step``, ``Call``,
``StepContext``, ``Reject``. The record: ``Record``, ``record_features``. Errors: ``GlanError``,
``UsageError``, ``ConfigurationError``, ``EndpointUnreachableError``.

Names are imported on first use, so ``import glan_dataset`` (and ``glan --help``) stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # flows
    "build",
    "decontaminate",
    "demo",
    "generate",
    "merge_runs",
    "prepare",
    "publish",
    # settings
    "DecontaminationSettings",
    "EngineConfig",
    "GenerationSettings",
    "PriceTable",
    "RunManifest",
    "SamplingParams",
    # steps
    "STEPS",
    "Call",
    "Reject",
    "Step",
    "StepContext",
    # the record
    "Record",
    "record_features",
    # errors
    "ConfigurationError",
    "EndpointUnreachableError",
    "GlanError",
    "UsageError",
]

# where each name of __all__ lives (imported on first use)
_HOMES: dict[str, tuple[str, ...]] = {
    "glan_dataset.flows": ("build", "decontaminate", "demo", "generate", "merge_runs", "prepare", "publish"),
    "glan_dataset.decontamination": ("DecontaminationSettings",),
    "glan_dataset.llm": ("EngineConfig", "PriceTable", "EndpointUnreachableError"),
    "glan_dataset.settings": ("GenerationSettings", "RunManifest", "SamplingParams"),
    "glan_dataset.stages": ("STEPS", "Call", "Reject", "Step", "StepContext"),
    "glan_dataset.records": ("Record", "record_features"),
    "glan_dataset.errors": ("ConfigurationError", "GlanError", "UsageError"),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _HOME_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'glan_dataset' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # imported once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # what type checkers and IDEs see; at run time the names come from __getattr__
    from glan_dataset.decontamination import DecontaminationSettings
    from glan_dataset.errors import ConfigurationError, GlanError, UsageError
    from glan_dataset.flows import build, decontaminate, demo, generate, merge_runs, prepare, publish
    from glan_dataset.llm import EndpointUnreachableError, EngineConfig, PriceTable
    from glan_dataset.records import Record, record_features
    from glan_dataset.settings import GenerationSettings, RunManifest, SamplingParams
    from glan_dataset.stages import STEPS, Call, Reject, Step, StepContext
