"""The LLM steps of a generation, in order: ``STEPS`` is the one list the pipeline runs.

Everything that names stages comes from this list: the run directory's stage folders (``STAGES``),
``glan plan``'s rows, the progress and cost rows (one per call), the per-stage counts in run.json
and the prompt version recorded in every record.

A step (:class:`~glan_dataset.stages.base.Step`) is one module: a class that says what it reads and
writes, its row model, its fingerprint inputs, ``requests(context, sources)`` pairing each source
with a ``ChatRequest``, and ``parse(context, source, result)`` giving a row, ``None`` (nothing to
keep) or ``Reject(reason)`` (a failed unit, retried next run). Two-call steps (free text, then a
conversion to JSON) list a follow-up :class:`~glan_dataset.stages.base.Call` in ``calls()``.

How the next steps plug in (one new module plus one line in ``STEPS`` each):

* **A judge** (``stages/judge.py``): ``JudgeStep(Step[Record])`` with ``reads = "records"``,
  ``source_model = Record``, ``writes = "judgements"``, ``row_model`` a model of
  ``id, score, rationale`` (its datasets/polars schemas derive from it, ``records.features_of``),
  ``response_model`` a JSON schema for the verdict; ``enabled(settings)`` is false without a judge
  model, ``model(settings)`` returns it. Publishing joins the verdicts on ``id`` and filters by
  threshold without a new call. Append ``JudgeStep()`` after ``AnswersStep()``.
* **Student follow-ups** (``stages/followups.py``): ``FollowUpStep(Step[Record])`` with
  ``reads = "records"``, ``writes = "conversations"``, ``row_model`` a ``Record`` subclass (or the
  record itself with a longer ``messages``); ``calls(settings)`` returns (student question, teacher
  answer) calls repeated ``turns - 1`` times, each taking the conversation so far as its source and
  returning it one message longer, and ``enabled`` is ``turns > 1``. Every call is cached per unit,
  so a kill in the middle of turn 2 repays nothing.

What such a step needs besides its module: its prompt template in ``prompts/`` (one file), and, if it
has knobs (the judge's model, ``--turns``), a field in ``GenerationSettings`` with its CLI flag; the
loop, resume, cache, failures, costs, progress, ``glan plan`` and the run.json counts need nothing.
``generate(..., steps=[*STEPS, JudgeStep()])`` runs a step without editing the list at all.

Steps are stateless: one instance serves every run (settings arrive in the ``StepContext``).
"""

from __future__ import annotations

from collections.abc import Sequence

from glan_dataset.settings import GenerationSettings
from glan_dataset.stages.answers import AnswersStep
from glan_dataset.stages.base import Call, DisciplineContext, Reject, Step, StepContext
from glan_dataset.stages.questions import QuestionsStep
from glan_dataset.stages.subjects import SubjectsStep
from glan_dataset.stages.syllabus import SyllabusStep

STEPS: tuple[Step, ...] = (SubjectsStep(), SyllabusStep(), QuestionsStep(), AnswersStep())
"""The generation, in order: each step reads what an earlier one writes."""

STAGES: tuple[str, ...] = tuple(step.writes for step in STEPS)
"""The run directory's stage folders, in order (``RUN/<stage>/<discipline>.parquet``)."""


def prompt_names(settings: GenerationSettings, steps: Sequence[Step] = STEPS) -> list[str]:
    """The templates the enabled steps use, in call order, each once (what a generation loads)."""
    names = [name for step in steps if step.enabled(settings) for name in step.prompt_names(settings)]
    return list(dict.fromkeys(names))


__all__ = ["STAGES", "STEPS", "Call", "DisciplineContext", "Reject", "Step", "StepContext", "prompt_names"]
