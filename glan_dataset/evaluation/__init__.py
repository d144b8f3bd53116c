"""GLAN-Test evaluation (``glan eval``): answer a GLAN dataset's test split with a candidate model and a
baseline (or the dataset's own answers), judge every pair in both orders, and report per discipline,
sub-field, field and overall.

Public API::

    from glan_dataset.evaluation import EvalSettings, RoleEndpoints, evaluate, load_test_set
    test = load_test_set("runs/physics", "physics")
    outcome = evaluate(test, EvalSettings(model="my-model", baseline="gpt-4o", judge_model="gpt-4.1"),
                       RoleEndpoints(candidate=EngineConfig(...), judge=EngineConfig(...)), "runs/physics")

Modules, in the order an evaluation uses them: ``dataset`` (the test split), ``answer``, ``judge``
(pairwise, both orders), ``aggregate``, ``report`` (table, chart), ``run`` (orchestration), ``plan``
(``--plan``) and ``leaderboard`` (the card section ``glan publish`` adds).
"""

from __future__ import annotations

from typing import Any

from glan_dataset.evaluation.leaderboard import leaderboard_rows

__all__ = [
    "EvalOutcome",
    "EvalSettings",
    "RoleEndpoints",
    "TestSet",
    "evaluate",
    "leaderboard_rows",
    "load_test_set",
    "plan_evaluation",
]

_LAZY = {
    "EvalOutcome": "glan_dataset.evaluation.run",
    "EvalSettings": "glan_dataset.evaluation.run",
    "RoleEndpoints": "glan_dataset.evaluation.run",
    "evaluate": "glan_dataset.evaluation.run",
    "TestSet": "glan_dataset.evaluation.dataset",
    "load_test_set": "glan_dataset.evaluation.dataset",
    "plan_evaluation": "glan_dataset.evaluation.plan",
}


def __getattr__(name: str) -> Any:
    # the flow pulls in polars, the engine and datasets: imported on first use, not by `glan publish`
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(module), name)
