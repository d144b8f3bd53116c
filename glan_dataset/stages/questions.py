"""Step 3: homework questions, one call per question (a question that comes back empty is a failed unit).

Each question is about a *sample* of the syllabus, drawn without any LLM call:

* ``single_session``: one class session and 1-5 of its key concepts;
* ``multi_session``: two sessions and 2-5 distinct key concepts with at least one from each session's own
  list (harder questions).

A sample is seeded from (run seed, discipline, subject, question index) alone, so a re-run, or a run
asking for more questions per subject, reproduces the same samples for the same indices.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable, Iterator
from typing import Any

from glan_dataset.llm import ChatRequest, ChatResult
from glan_dataset.records import ClassSession, QuestionRow, QuestionSample, Strategy, SubjectRow, SyllabusRow
from glan_dataset.settings import GenerationSettings
from glan_dataset.stages.base import Reject, Step, StepContext, filler
from glan_dataset.stages.syllabus import SyllabusStep

MAX_CONCEPTS = 5
# Class sessions of a typical syllabus (glan plan's representative question prompt).
TYPICAL_SESSIONS = 18


def sample_rng(seed: int, discipline: str, subject_id: str, index: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}\x1f{discipline}\x1f{subject_id}\x1f{index}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def sample_question(
    syllabus: SyllabusRow, index: int, multi_session_ratio: float, seed: int, *, subject: dict[str, Any] | None = None
) -> QuestionSample:
    """The ``index``-th question sample of a subject.

    A two-session sample holds at least two distinct concepts, at least one drawn from each session's
    own list (by position): two sessions that share concept names (a review session repeating an
    earlier one) could otherwise yield the shared name alone. A pair of sessions that together
    teach a single concept name cannot do that, so another pair is drawn, or, if no pair of the
    syllabus can, a single-session sample. ``subject``: the syllabus's subject columns, when the
    caller already has them (one dump per syllabus, not one per question).
    """
    rng = sample_rng(seed, syllabus.discipline, syllabus.subject_id, index)
    sessions = syllabus.sessions

    def distinct(a: int, b: int) -> bool:
        return len(set(sessions[a].key_concepts) | set(sessions[b].key_concepts)) >= 2

    chosen: list[int] = []
    if len(sessions) >= 2 and rng.random() < multi_session_ratio:
        chosen = sorted(rng.sample(range(len(sessions)), 2))
        if not distinct(*chosen):
            pairs = [[a, b] for a in range(len(sessions)) for b in range(a + 1, len(sessions)) if distinct(a, b)]
            chosen = rng.choice(pairs) if pairs else chosen[:1]
    if len(chosen) == 2:
        pools = [sessions[chosen[0]].key_concepts, sessions[chosen[1]].key_concepts]
        union = list(dict.fromkeys(pools[0] + pools[1]))
        count = rng.randint(2, max(2, min(MAX_CONCEPTS, len(union))))
        # one concept from each session's own list, under two different names
        first = rng.choice(pools[0])
        others = [c for c in pools[1] if c != first]
        if others:  # the draws (and so the record ids) of every sample this case covers are unchanged
            second = rng.choice(others)
        else:  # the second session only repeats the name just drawn: draw the first one's among the rest
            second = first
            first = rng.choice([c for c in pools[0] if c != second])
        picked = [first, second]
        rest = [c for c in union if c not in picked]
        picked += rng.sample(rest, min(len(rest), count - len(picked)))
        concepts = picked
        strategy: Strategy = "multi_session"
    else:
        position = chosen[0] if chosen else rng.randrange(len(sessions))
        chosen = [position]
        pool = sessions[position].key_concepts
        count = rng.randint(1, min(MAX_CONCEPTS, len(pool)))
        concepts = rng.sample(pool, count)
        strategy = "single_session"
    return QuestionSample(
        **(subject if subject is not None else subject_columns(syllabus)),
        sample_index=index,
        strategy=strategy,
        session_indices=chosen,
        sessions=[sessions[i].name for i in chosen],
        key_concepts=concepts,
    )


def sample_questions(syllabus: SyllabusRow, count: int, multi_session_ratio: float, seed: int) -> list[QuestionSample]:
    subject = subject_columns(syllabus)
    return [sample_question(syllabus, index, multi_session_ratio, seed, subject=subject) for index in range(count)]


def subject_columns(syllabus: SyllabusRow) -> dict[str, Any]:
    """The subject's own columns of a syllabus row (what every question sample of it carries)."""
    return syllabus.model_dump(include=_SUBJECT_FIELDS)


_SUBJECT_FIELDS = frozenset(SubjectRow.model_fields)


class QuestionsStep(Step[QuestionSample]):
    """``questions_per_subject`` seeded samples per syllabus of ``syllabi``, one question call each."""

    name = "question"
    max_tokens = 512
    prompt = "question"
    typical_completion_tokens = 120
    reads = "syllabi"
    writes = "questions"
    source_model = SyllabusRow
    row_model = QuestionRow

    def fingerprint(self, context: StepContext) -> dict[str, Any]:
        s = context.settings
        return {
            "model": s.model,
            "generation": s.generation_sampling,
            "per_subject": s.questions_per_subject,
            "ratio": s.multi_session_ratio,
            "seed": s.seed,
            "prompts": [context.prompts[name].version for name in self.prompt_names(s)],
        }

    def row_id(self, row: QuestionRow) -> str:
        return row.id

    def units(self, settings: GenerationSettings, upstream_rows: int) -> int:
        return upstream_rows * settings.questions_per_subject

    def requests(
        self, context: StepContext, sources: Iterable[SyllabusRow]
    ) -> Iterator[tuple[QuestionSample, ChatRequest]]:
        s = context.settings
        for syllabus in sources:
            for sample in sample_questions(syllabus, s.questions_per_subject, s.multi_session_ratio, s.seed):
                messages = context.render(
                    self.prompt,
                    subject=syllabus.subject,
                    level=syllabus.level,
                    syllabus=syllabus.sessions,
                    syllabus_text=syllabus.syllabus_text,
                    sessions=sample.sessions,
                    session_numbers=[i + 1 for i in sample.session_indices],
                    key_concepts=sample.key_concepts,
                )
                request = self.request(
                    context, sample.subject_id, sample.sample_index, messages=messages, sample_index=sample.sample_index
                )
                yield sample, request

    def parse(self, context: StepContext, source: QuestionSample, result: ChatResult) -> QuestionRow | Reject:
        question = clean_question(result.text)
        if not question:
            return Reject("the model returned an empty question")
        return question_row(source, question, result.model or self.model(context.settings))

    def plan_messages(self, context: StepContext) -> list[dict[str, str]]:
        syllabus = [
            ClassSession(name="Session title", description=filler(30), key_concepts=["concept one"] * 5)
            for _ in range(TYPICAL_SESSIONS)
        ]
        return context.render(
            self.prompt,
            subject="Subject name",
            level="undergraduate",
            syllabus=syllabus,
            syllabus_text=filler(SyllabusStep.typical_completion_tokens),
            sessions=["Session title"],
            session_numbers=[3],
            key_concepts=["concept one", "concept two", "concept three"],
        )


_PREAMBLE = re.compile(r"^\s*(\*\*)?\s*(homework\s+)?question\s*(\d+)?\s*[:.]\s*(\*\*)?\s*", re.IGNORECASE)


def clean_question(text: str) -> str:
    """The question alone: a leading "Question:" label and surrounding quotes removed."""
    text = _PREAMBLE.sub("", text.strip(), count=1).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


def question_row(sample: QuestionSample, question: str, model: str) -> QuestionRow:
    return QuestionRow(**sample.model_dump(), id=sample.record_id, question=question, question_model=model)
