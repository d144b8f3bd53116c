"""Generation settings and the run manifest (``RUN/run.json``).

The defaults follow the GLAN paper (DESIGN.md section 7). Nothing secret ever lives here: the API key
and the endpoint URL belong to the engine configuration, which is never written to the run directory.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from glan_dataset.defaults import DEFAULT_ANSWER_MODEL, DEFAULT_MODEL


class SamplingParams(BaseModel):
    """Sampling parameters of one kind of LLM call."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, gt=0)


class GenerationSettings(BaseModel):
    """What to generate and how; everything that changes which LLM calls are made."""

    model_config = ConfigDict(extra="forbid")

    config: str = "all"
    model: str = DEFAULT_MODEL
    answer_model: str = DEFAULT_ANSWER_MODEL
    generation_sampling: SamplingParams = SamplingParams(temperature=1.0, top_p=0.95)
    answer_sampling: SamplingParams = SamplingParams(temperature=0.7, top_p=0.95)
    conversion_sampling: SamplingParams = SamplingParams(temperature=0.0, top_p=1.0)
    subject_samples: int = Field(10, ge=1, description="Free-text subject lists sampled per discipline.")
    max_subjects: int = Field(200, ge=1, description="Subjects kept per discipline after de-duplication.")
    questions_per_subject: int = Field(10, ge=1)
    multi_session_ratio: float = Field(0.5, ge=0.0, le=1.0, description="Share of two-session questions.")
    seed: int = 0
    max_tokens: dict[str, int] = Field(
        default_factory=dict,
        description="Completion-token budgets by call name (``answer``, ``syllabus_to_json``, ...), ``*`` for "
        "every call; a call not named keeps its own default (``Call.max_tokens``).",
    )
    step_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Options of the steps that declare some (``Step.options``), by the stage folder each step "
        "writes, e.g. ``{'conversations': {'turns': 3}}``; validated by the step's options model.",
    )

    @field_validator("max_tokens")
    @classmethod
    def _positive_budgets(cls, value: dict[str, int]) -> dict[str, int]:
        for name, tokens in value.items():
            if tokens < 1:
                raise ValueError(f"the token budget of {name!r} must be at least 1")
        return value

    @field_validator("model", "answer_model")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("model names must not be empty")
        return value


class StageCounts(BaseModel):
    """One discipline's rows per stage file (one entry per step, in step order) and its failed units.

    The stages are whatever the steps write (``glan_dataset.stages.STAGES``), so they are not fields:
    ``StageCounts(subjects=3, records=12, failures=0)``, read as ``counts["subjects"]`` or, for the two
    every caller needs, ``counts.records`` and ``counts.failures``. run.json stores it as a plain object.
    """

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, int] = Field(init=False)

    def __getitem__(self, stage: str) -> int:
        return int((self.model_extra or {}).get(stage, 0))

    @property
    def records(self) -> int:
        return self["records"]

    @property
    def failures(self) -> int:
        return self["failures"]


class RunManifest(BaseModel):
    """``RUN/run.json``: the resolved settings of the last generation, counts, prompt versions and usage.

    Merged, never overwritten with one process's view: each generation updates its own disciplines'
    counts and its config's settings under the run lock, and usage is the shared cache's."""

    glan_dataset_version: str
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    updated_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    settings: GenerationSettings
    taxonomy_hash: str = ""
    disciplines: list[str] = Field(default_factory=list, description="Disciplines generated in this run directory.")
    removed_disciplines: list[str] = Field(
        default_factory=list, description="Disciplines with records in the run that the current taxonomy no longer has."
    )
    prompt_versions: dict[str, str] = Field(default_factory=dict)
    prompt_version: str = ""
    counts: dict[str, StageCounts] = Field(default_factory=dict)
    usage: dict[str, Any] = Field(
        default_factory=dict, description="LLMEngine usage: tokens and cost per stage and model."
    )
    engine: dict[str, Any] = Field(default_factory=dict, description="Non-secret engine settings (mode, concurrency).")
    records_stage: str = Field(
        "records",
        description="The stage folder holding the run's finished records (the last enabled step that writes "
        "records: ``records``, or ``conversations`` with follow-up turns); decontamination reads it.",
    )
    demo: bool = False
    configs: dict[str, GenerationSettings] = Field(
        default_factory=dict,
        description="The settings of the last generation of each config (``settings`` is the latest of them): "
        "processes generating different configs into one run directory each keep theirs.",
    )
