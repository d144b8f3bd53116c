"""Step 3: homework questions, one call per question (a question that comes back empty is a failed unit).

Each question is about a *sample* of the syllabus, drawn without any LLM call:

* ``single_session``: one class session and 1-5 of its key concepts;
* ``multi_session``: two sessions and 2-5 key concepts with at least one from each (harder questions).

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

MAX_CONCEPTS = 5
# Class sessions of a typical syllabus (glan plan's representative question prompt).
TYPICAL_SESSIONS = 18


def sample_rng(seed: int, discipline: str, subject_id: str, index: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}\x1f{discipline}\x1f{subject_id}\x1f{index}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def sample_question(syllabus: SyllabusRow, index: int, multi_session_ratio: float, seed: int) -> QuestionSample:
    """The ``index``-th question sample of a subject."""
    rng = sample_rng(seed, syllabus.discipline, syllabus.subject_id, index)
    sessions = syllabus.sessions
    multi = len(sessions) >= 2 and rng.random() < multi_session_ratio
    if multi:
        first, second = sorted(rng.sample(range(len(sessions)), 2))
        chosen = [first, second]
        pools = [sessions[first].key_concepts, sessions[second].key_concepts]
        union = list(dict.fromkeys(pools[0] + pools[1]))
        count = rng.randint(2, max(2, min(MAX_CONCEPTS, len(union))))
        # at least one concept from each session, then fill from both
        picked = [rng.choice(pools[0])]
        picked += [rng.choice([c for c in pools[1] if c not in picked] or pools[1])]
        rest = [c for c in union if c not in picked]
        picked += rng.sample(rest, min(len(rest), count - len(picked)))
        concepts = list(dict.fromkeys(picked))
        strategy: Strategy = "multi_session"
    else:
        position = rng.randrange(len(sessions))
        chosen = [position]
        pool = sessions[position].key_concepts
        count = rng.randint(1, min(MAX_CONCEPTS, len(pool)))
        concepts = rng.sample(pool, count)
        strategy = "single_session"
    return QuestionSample(
        **syllabus.model_dump(include=set(SubjectRow.model_fields)),
        sample_index=index,
        strategy=strategy,
        session_indices=chosen,
        sessions=[sessions[i].name for i in chosen],
        key_concepts=concepts,
    )


def sample_questions(syllabus: SyllabusRow, count: int, multi_session_ratio: float, seed: int) -> list[QuestionSample]:
    return [sample_question(syllabus, index, multi_session_ratio, seed) for index in range(count)]


class QuestionsStep(Step[QuestionSample]):
    """``questions_per_subject`` seeded samples per syllabus of ``syllabi``, one question call each."""

    name = "question"
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
