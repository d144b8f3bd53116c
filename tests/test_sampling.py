"""Question sampling: which sessions and key concepts a homework question is about (seeded, no LLM)."""

from __future__ import annotations

import random

import pytest

from glan_dataset.records import ClassSession, SyllabusRow
from glan_dataset.stages.questions import MAX_CONCEPTS, sample_question, sample_questions


def syllabus(*concept_lists: list[str]) -> SyllabusRow:
    return SyllabusRow(
        field="formal-science",
        subfield="mathematics-and-statistics",
        discipline="mathematics",
        subject_id="s1",
        subject="Calculus",
        level="undergraduate",
        subtopics=[],
        sessions=[
            ClassSession(name=f"Session {i + 1}", description="What it teaches.", key_concepts=concepts)
            for i, concepts in enumerate(concept_lists)
        ],
        syllabus_text="",
    )


def assert_two_session_sample_is_sound(row: SyllabusRow, index: int, seed: int) -> None:
    sample = sample_question(row, index, 1.0, seed)
    if sample.strategy != "multi_session":
        return
    first, second = (row.sessions[i].key_concepts for i in sample.session_indices)
    concepts = sample.key_concepts
    assert len(concepts) == len(set(concepts)) >= 2
    assert len(concepts) <= MAX_CONCEPTS
    assert set(concepts) <= set(first) | set(second)
    # one concept from each session's own list, under two different names
    assert any(a != b for a in concepts if a in first for b in concepts if b in second)


@pytest.mark.parametrize(
    "concept_lists",
    [
        (["limit"], ["limit"]),  # identical one-concept lists: the shared name alone was all 200 samples
        (["limit", "derivative", "integral"], ["limit"]),  # a review session repeating one concept
        (["limit", "derivative"], ["limit", "derivative"]),
        (["limit", "derivative", "integral"], ["limit", "derivative", "integral"]),
    ],
)
def test_two_session_samples_of_sessions_sharing_concepts_hold_two_concepts(
    concept_lists: tuple[list[str], ...],
) -> None:
    row = syllabus(*concept_lists)
    samples = sample_questions(row, 200, 1.0, seed=7)
    for sample in samples:
        assert_two_session_sample_is_sound(row, sample.sample_index, 7)
        if sample.strategy == "multi_session":
            assert len(sample.key_concepts) >= 2


def test_identical_single_concept_sessions_never_make_a_one_concept_two_session_question() -> None:
    only_pair = syllabus(["limit"], ["limit"])
    samples = sample_questions(only_pair, 200, 1.0, seed=3)
    assert {s.strategy for s in samples} == {"single_session"}  # no pair can hold two concepts
    assert all(s.key_concepts == ["limit"] for s in samples)

    with_third = syllabus(["limit"], ["limit"], ["series"])
    samples = sample_questions(with_third, 200, 1.0, seed=3)
    assert {s.strategy for s in samples} == {"multi_session"}  # another pair is drawn instead
    assert all(2 in s.session_indices and sorted(s.key_concepts) == ["limit", "series"] for s in samples)


def test_random_syllabi_with_shared_concept_names() -> None:
    rng = random.Random(0)
    names = [f"concept {i}" for i in range(8)]  # few names, so sessions share many of them
    for seed in range(40):
        lists = [rng.sample(names, rng.randint(1, 5)) for _ in range(rng.randint(2, 6))]
        row = syllabus(*lists)
        for index in range(25):
            assert_two_session_sample_is_sound(row, index, seed)


def test_samples_are_reproducible_and_single_session_ids_are_pinned() -> None:
    row = syllabus(["limit", "derivative", "integral"], ["series", "limit"], ["vector", "matrix", "basis"])
    first = sample_questions(row, 30, 0.5, seed=11)
    assert first == sample_questions(row, 30, 0.5, seed=11)
    assert {s.strategy for s in first} == {"single_session", "multi_session"}
    # Single-session samples draw exactly as before the two-session fix: their record ids are pinned.
    single = [(s.sample_index, s.record_id) for s in first if s.strategy == "single_session"][:3]
    assert single == PINNED_SINGLE_SESSION_IDS


PINNED_SINGLE_SESSION_IDS = [(1, "874a17afcb6b6bc7c0f3"), (2, "4a50573d43b978669fda"), (3, "5ebe38b12b6f4147ceaa")]
