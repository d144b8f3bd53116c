"""The record schema is declared once (the pydantic model); the datasets and polars schemas derive from it."""

from __future__ import annotations

from typing import Literal

import polars as pl
import pyarrow as pa
import pytest
from datasets import List, Value
from pydantic import BaseModel

from glan_dataset.records import (
    RECORD_COLUMNS,
    Record,
    arrow_schema_of,
    features_of,
    polars_schema_of,
    record_features,
    record_polars_schema,
)


def test_record_schemas_follow_the_model_in_order_and_never_use_large_types() -> None:
    assert (
        tuple(record_features())
        == tuple(record_polars_schema().names())
        == RECORD_COLUMNS
        == tuple(Record.model_fields)
    )
    string = Value("string")
    features = record_features()
    assert features["question"] == string and features["strategy"] == string
    assert features["key_concepts"] == List(string)
    assert features["messages"] == List({"role": string, "content": string})
    assert "large" not in str(features.arrow_schema)
    schema = record_polars_schema()
    assert schema["messages"] == pl.List(pl.Struct({"role": pl.String, "content": pl.String}))
    assert schema["subtopics"] == pl.List(pl.String)


class _Turn(BaseModel):
    speaker: Literal["student", "teacher"]
    text: str


class _Judged(Record):
    """What a later step (a judge, follow-up turns) declares: a subclass with its own columns."""

    score: int | None
    confidence: float
    passed: bool
    turns: list[_Turn]


def test_a_derived_row_model_gets_its_columns_without_another_declaration() -> None:
    features = features_of(_Judged)
    assert list(features)[: len(RECORD_COLUMNS)] == list(RECORD_COLUMNS)
    assert features["score"] == Value("int64") and features["confidence"] == Value("float64")
    assert features["passed"] == Value("bool")
    assert features["turns"] == List({"speaker": Value("string"), "text": Value("string")})
    schema = polars_schema_of(_Judged)
    assert schema["score"] == pl.Int64 and schema["turns"] == pl.List(
        pl.Struct({"speaker": pl.String, "text": pl.String})
    )
    # a row written with the derived schema reads back into the model
    row = _Judged(
        **{name: "x" for name in ("id", "field", "subfield", "discipline", "subject", "level", "question", "answer")},
        subtopics=["a"], sessions=["s"], key_concepts=["k"], strategy="single_session", messages=[],
        sample_index=0, session_indices=[0], seed=0,
        question_model="m", answer_model="m", prompt_version="v", score=None, confidence=0.5, passed=True,
        turns=[_Turn(speaker="student", text="why?")],
    )  # fmt: skip
    frame = pl.DataFrame([row.model_dump(mode="json")], schema=schema)
    assert _Judged.model_validate(frame.row(0, named=True)) == row
    # stage files are built through Arrow: the same types polars exports, so no cast and equal frames
    assert arrow_schema_of(_Judged).equals(pl.DataFrame(schema=schema).to_arrow().schema)
    arrow_frame = pl.DataFrame(pa.Table.from_pylist([row.model_dump(mode="json")], schema=arrow_schema_of(_Judged)))
    assert arrow_frame.equals(frame)


def test_an_unsupported_column_type_is_refused_by_name() -> None:
    class Bad(BaseModel):
        when: dict[str, int]

    with pytest.raises(TypeError, match="dict"):
        polars_schema_of(Bad)
