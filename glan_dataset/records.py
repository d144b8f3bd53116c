"""The data that flows between stages, and the published record.

Two kinds of models live here:

* what an LLM is asked to return (``SubjectList``, ``Syllabus``): their JSON schema is sent as the
  ``response_format`` of the conversion calls, so keep them small and well described;
* what a stage writes to the run directory (``SubjectRow`` ... ``Record``), one parquet file per
  discipline and stage.

A row model is the one declaration of its columns: ``features_of`` and ``polars_schema_of`` derive
the ``datasets.Features`` and the polars schema from it, so ``Record`` is written once and
``record_features()`` (what every writer casts to, so the Hub never sees ``large_string`` or
``LargeList``, DESIGN.md section 6) and ``record_polars_schema()`` cannot drift from it.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field

Strategy = Literal["single_session", "multi_session"]
STRATEGIES: tuple[Strategy, ...] = ("single_session", "multi_session")


# --------------------------------------------------------------------------------------------
# What the LLM returns in the conversion steps (sent as JSON-schema response formats).
# Every list and string is bounded: a grammar-constrained decoder (llama.cpp, vLLM, Ollama) then
# cannot loop inside a string or a list until the token budget runs out. OpenAI's strict mode
# rejects string length bounds, so the engine drops those for it (llm/core.py: schema dialect).
# --------------------------------------------------------------------------------------------

# the items of a list of titles: a schema bound for the decoder (the row columns stay list[str])
TITLE_ITEMS: dict[str, Any] = {"items": {"type": "string", "minLength": 1, "maxLength": 200}}


class SubjectSpec(BaseModel):
    """One subject a student of the discipline would take, as the paper asks for it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="The subject's name, e.g. 'Classical Mechanics'.", min_length=1, max_length=200)
    level: str = Field(description="Education level, e.g. 'undergraduate' or 'graduate'.", min_length=1, max_length=100)
    subtopics: list[str] = Field(
        description="The key subtopics the subject covers.", min_length=1, max_length=40, json_schema_extra=TITLE_ITEMS
    )


class SubjectList(BaseModel):
    """Conversion target of the free-text subject list."""

    model_config = ConfigDict(extra="forbid")

    subjects: list[SubjectSpec] = Field(
        description="Every subject named in the text, in order.", min_length=1, max_length=200
    )


class ClassSession(BaseModel):
    """One class session of a syllabus."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="The session's title.", min_length=1, max_length=200)
    description: str = Field(
        description="What the session teaches, in one or two sentences.", min_length=1, max_length=2000
    )
    key_concepts: list[str] = Field(
        description="The key concepts taught in this session (about 5).",
        min_length=1,
        max_length=30,
        json_schema_extra=TITLE_ITEMS,
    )


class Syllabus(BaseModel):
    """Conversion target of the free-text syllabus: the class sessions in teaching order."""

    model_config = ConfigDict(extra="forbid")

    sessions: list[ClassSession] = Field(
        description="The class sessions in teaching order.", min_length=1, max_length=100
    )


# --------------------------------------------------------------------------------------------
# What the stages write to the run directory (one parquet file per discipline and stage).
# --------------------------------------------------------------------------------------------


class DisciplineRef(BaseModel):
    """Where a row sits in the taxonomy (slugs), copied into every stage row for provenance."""

    field: str
    subfield: str
    discipline: str


class SubjectRow(DisciplineRef):
    """A de-duplicated subject of a discipline (stage ``subjects``)."""

    subject_id: str  # stable: hash of (discipline, normalized subject name)
    subject: str
    level: str
    subtopics: list[str]


class SyllabusRow(SubjectRow):
    """A subject's syllabus (stage ``syllabi``); ``sessions`` keeps the structured sessions."""

    sessions: list[ClassSession]
    syllabus_text: str  # the free-text syllabus the sessions were converted from


class QuestionSample(SubjectRow):
    """Which sessions and key concepts one homework question is about (seeded, no LLM)."""

    sample_index: int  # the question's index within its subject
    strategy: Strategy
    session_indices: list[int]
    sessions: list[str]
    key_concepts: list[str]

    @property
    def record_id(self) -> str:
        return record_id(self.discipline, self.subject_id, self.sample_index, self.session_indices, self.key_concepts)


class QuestionRow(QuestionSample):
    """A generated homework question (stage ``questions``)."""

    id: str
    question: str
    question_model: str


class Message(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class Record(BaseModel):
    """One published instruction pair (DESIGN.md section 4)."""

    id: str
    field: str
    subfield: str
    discipline: str
    subject: str
    level: str
    subtopics: list[str]
    sessions: list[str]
    key_concepts: list[str]
    strategy: Strategy
    sample_index: int  # the question's index within its subject: with the seed, it redraws the sample
    session_indices: list[int]  # positions of the sampled sessions in the subject's syllabus
    seed: int  # the run seed that drew the sample
    question: str
    answer: str
    messages: list[Message]
    question_model: str
    answer_model: str
    prompt_version: str


RECORD_COLUMNS: tuple[str, ...] = tuple(Record.model_fields)


def record_id(
    discipline: str, subject_id: str, sample_index: int, session_indices: list[int], key_concepts: list[str]
) -> str:
    """Stable id of a question sample: the same sample in any run (same seed) has the same id."""
    payload = json.dumps(
        [discipline, subject_id, sample_index, session_indices, key_concepts], ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:20]


def subject_id(discipline: str, normalized_name: str) -> str:
    """Stable id of a subject within a discipline."""
    return hashlib.sha256(f"{discipline}\x1f{normalized_name}".encode()).hexdigest()[:16]


def record_features() -> Any:
    """The canonical ``datasets.Features`` of a published record (imported lazily: datasets is slow to import)."""
    return features_of(Record)


def record_polars_schema() -> Any:
    """The polars schema of a record file in the run directory (column order = ``RECORD_COLUMNS``)."""
    return polars_schema_of(Record)


# --------------------------------------------------------------------------------------------
# Schemas derived from a row model: the pydantic class is the one declaration of a row's columns.
# --------------------------------------------------------------------------------------------
# A row model may use str (or a Literal of strings), int, float, bool, ``X | None``, list[X] and nested
# BaseModels (structs). That is all a stage row needs, and each maps to exactly one Arrow type.


def features_of(model: type[BaseModel]) -> Any:
    """``datasets.Features`` of a row model: ``string`` (never ``large_string``) and ``List`` (never
    ``LargeList``), so a cast to it gives what the Hub and ``load_dataset`` expect (DESIGN.md 6)."""
    from datasets import Features, List, Value

    scalars = {str: Value("string"), int: Value("int64"), float: Value("float64"), bool: Value("bool")}
    return Features(_columns(model, scalars, List, dict))


def polars_schema_of(model: type[BaseModel]) -> Any:
    """The polars schema of a row model (column order = the model's field order)."""
    import polars as pl

    scalars = {str: pl.String, int: pl.Int64, float: pl.Float64, bool: pl.Boolean}
    return pl.Schema(_columns(model, scalars, pl.List, pl.Struct))


@functools.cache
def arrow_schema_of(model: type[BaseModel]) -> Any:
    """The Arrow schema of a row model, typed as polars exports it (``large_string``, ``large_list``):
    stage files are built with ``pyarrow.Table.from_pylist`` and handed to polars without a cast.
    Cached per model (a schema is immutable; building one costs about a millisecond)."""
    import pyarrow as pa

    scalars = {str: pa.large_string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_()}
    return pa.schema(_columns(model, scalars, pa.large_list, pa.struct))


def _columns(
    model: type[BaseModel], scalars: dict[type, Any], list_of: Callable[[Any], Any], struct_of: Callable[[Any], Any]
) -> dict[str, Any]:
    """Column name -> type of a row model in one library's vocabulary: its scalar types, how it makes a
    list of a type and a struct of named types (the one walk behind the three schemas above)."""

    def column_type(annotation: Any) -> Any:
        kind, inner = _column_kind(annotation)
        if kind == "scalar":
            return scalars[inner]
        if kind == "list":
            return list_of(column_type(inner))
        return struct_of({name: column_type(field.annotation) for name, field in inner.model_fields.items()})

    return {name: column_type(field.annotation) for name, field in model.model_fields.items()}


def _column_kind(annotation: Any) -> tuple[str, Any]:
    """("scalar", python type) | ("list", item annotation) | ("struct", model) for one field annotation."""
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(members) == 1:  # X | None: nullable X (every Arrow column is nullable)
            return _column_kind(members[0])
    elif origin is Literal:
        kinds = {type(value) for value in get_args(annotation)}
        if len(kinds) == 1:
            return "scalar", kinds.pop()
    elif origin is list:
        return "list", get_args(annotation)[0]
    elif annotation in (str, int, float, bool):
        return "scalar", annotation
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "struct", annotation
    raise TypeError(f"no column type for {annotation!r}: use str, int, float, bool, list, a Literal or a BaseModel")
