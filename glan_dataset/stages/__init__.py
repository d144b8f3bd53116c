"""The LLM steps of a generation, in order: ``STEPS`` is the one list the pipeline runs.

Everything that names stages comes from this list: the run directory's stage folders (``STAGES``),
``glan plan``'s rows, the progress and cost rows (one per call), the per-stage counts in run.json
and the prompt version recorded in every record.

A step (:class:`~glan_dataset.stages.base.Step`) is one module: a class that says what it reads and
writes, its row model, its fingerprint inputs, ``requests(context, sources)`` pairing each source
with a ``ChatRequest``, and ``parse(context, source, result)`` giving a row, ``None`` (nothing to
keep) or ``Reject(reason)`` (a failed unit, retried next run). Two-call steps (free text, then a
conversion to JSON) list a follow-up :class:`~glan_dataset.stages.base.Call` in ``calls()``.

How the optional steps plug in (each is one module plus its entry in ``STEPS``):

* **The judge** (``stages/judge.py``): ``JudgeStep(Step[Record])`` with ``reads = "records"``,
  ``writes = "judgements"``, ``row_model`` ``Judgement`` (``id, score, rationale, judge_model``), a
  ``response_model`` JSON schema for the verdict and ``options`` ``JudgeOptions(model)``; ``enabled`` is
  false without a judge model. Publishing (``glan_dataset.quality``) joins the verdicts on ``id`` and
  filters by threshold without a new call.
* **Student follow-ups** (``stages/followups.py``): ``FollowUpStep(Step[Record])`` with
  ``reads = "records"``, ``writes = "conversations"``, ``row_model`` the record itself with a longer
  ``messages``, ``options`` ``FollowUpOptions(turns)``; ``calls(settings)`` returns (student question, teacher
  answer) calls repeated ``turns - 1`` times, each taking the conversation so far as its source and
  returning it one message longer, and ``enabled`` is ``turns > 1``. Every call is cached per unit,
  so a kill in the middle of turn 2 repays nothing.

What such a step needs besides its module: its prompt template in ``prompts/`` (one file). Its knobs
(the judge's model, ``--turns``) are a pydantic model in ``Step.options``, read from
``GenerationSettings.step_options[<stage it writes>]`` (``check_step_options`` validates them), so
``GenerationSettings`` needs no new field; a CLI flag is a convenience that fills that entry. The loop,
resume, cache, failures, costs, progress, ``glan plan`` and the run.json counts need nothing. The last
enabled step whose rows are records (a ``Record`` subclass) holds the run's finished records
(``records_stage``, kept in run.json): decontamination and publishing read that folder.
``generate(..., steps=[*STEPS, JudgeStep()])`` runs a step without editing the list at all.

Steps are stateless: one instance serves every run (settings arrive in the ``StepContext``).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

from glan_dataset.errors import UsageError
from glan_dataset.records import Record
from glan_dataset.settings import GenerationSettings
from glan_dataset.stages.answers import AnswersStep
from glan_dataset.stages.base import Call, DisciplineContext, Reject, Step, StepContext
from glan_dataset.stages.followups import FollowUpStep
from glan_dataset.stages.judge import JudgeStep
from glan_dataset.stages.questions import QuestionsStep
from glan_dataset.stages.subjects import SubjectsStep
from glan_dataset.stages.syllabus import SyllabusStep

STEPS: tuple[Step, ...] = (SubjectsStep(), SyllabusStep(), QuestionsStep(), AnswersStep(), FollowUpStep(), JudgeStep())
"""The generation, in order: each step reads what an earlier one writes."""

STAGES: tuple[str, ...] = tuple(step.writes for step in STEPS)
"""The run directory's stage folders, in order (``RUN/<stage>/<discipline>.parquet``)."""


def prompt_names(settings: GenerationSettings, steps: Sequence[Step] = STEPS) -> list[str]:
    """The templates the enabled steps use, in call order, each once (what a generation loads)."""
    names = [name for step in steps if step.enabled(settings) for name in step.prompt_names(settings)]
    return list(dict.fromkeys(names))


def check_step_options(settings: GenerationSettings, steps: Sequence[Step] = STEPS) -> None:
    """Each entry of ``settings.step_options`` names a step of ``steps`` that has options and is valid for
    it: a typo or a bad value is one line (exit 2) before anything runs, not a silently ignored knob."""
    by_stage = {step.writes: step for step in steps if step.options is not None}
    for stage in settings.step_options:
        step = by_stage.get(stage)
        if step is None:
            choices = ", ".join(sorted(by_stage)) or "none"
            raise UsageError(
                f"step options for {stage!r}: no step with options writes it (steps with options: {choices})"
            )
        try:
            step.options_of(settings)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in (stage, *first["loc"]))
            raise UsageError(f"invalid step option {where}: {first['msg']}") from None


def records_stage(settings: GenerationSettings, steps: Sequence[Step] = STEPS) -> str:
    """The stage folder holding the finished records: the last enabled step whose rows are records."""
    stages = [step.writes for step in steps if step.enabled(settings) and issubclass(step.row_model, Record)]
    return stages[-1] if stages else "records"


__all__ = [
    "STAGES",
    "STEPS",
    "Call",
    "DisciplineContext",
    "Reject",
    "Step",
    "StepContext",
    "check_step_options",
    "prompt_names",
    "records_stage",
]
