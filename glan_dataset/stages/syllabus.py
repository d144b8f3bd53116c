"""Step 2: a syllabus per subject, in two calls.

As in the paper, the step's own call asks for the syllabus as free text (one call per subject) and
its follow-up :class:`SyllabusConversion` converts that text into class sessions with key concepts
(JSON-schema response format). A subject whose converted syllabus has no session with a key
concept gives no row (there is nothing to ask questions about); that is not a failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from glan_dataset.llm import ChatRequest, ChatResult
from glan_dataset.records import ClassSession, SubjectRow, Syllabus, SyllabusRow
from glan_dataset.settings import GenerationSettings, SamplingParams
from glan_dataset.stages.base import Call, Step, StepContext, filler


class SyllabusConversion(Call[tuple[SubjectRow, str], SyllabusRow]):
    """A free-text syllabus converted to a ``Syllabus``; the row keeps both."""

    name = "syllabus_to_json"
    max_tokens = 8_192
    max_tokens_cap = 32_768
    prompt = "syllabus_to_json"
    typical_completion_tokens = 1_400

    def sampling(self, settings: GenerationSettings) -> SamplingParams:
        return settings.conversion_sampling

    def requests(
        self, context: StepContext, sources: Iterable[tuple[SubjectRow, str]]
    ) -> Iterator[tuple[tuple[SubjectRow, str], ChatRequest]]:
        for subject, text in sources:
            messages = context.render(self.prompt, subject=subject.subject, text=text)
            yield (subject, text), self.request(context, subject.subject_id, messages=messages, response_model=Syllabus)

    def parse(self, context: StepContext, source: tuple[SubjectRow, str], result: ChatResult) -> SyllabusRow | None:
        if not isinstance(result.parsed, Syllabus):
            return None
        subject, text = source
        return syllabus_row(subject, text, result.parsed)

    def plan_messages(self, context: StepContext) -> list[dict[str, str]]:
        return context.render(self.prompt, subject="Subject name", text=filler(SyllabusStep.typical_completion_tokens))


class SyllabusStep(Step[SubjectRow]):
    """One free-text syllabus per subject of ``subjects``, then its conversion."""

    name = "syllabus"
    max_tokens = 4_096
    prompt = "syllabus"
    typical_completion_tokens = 1_500
    reads = "subjects"
    writes = "syllabi"
    source_model = SubjectRow
    row_model = SyllabusRow

    def calls(self, settings: GenerationSettings) -> tuple[Call[Any, Any], ...]:
        return (self, SyllabusConversion())

    def fingerprint(self, context: StepContext) -> dict[str, Any]:
        s = context.settings
        return {
            "model": s.model,
            "generation": s.generation_sampling,
            "conversion": s.conversion_sampling,
            "prompts": [context.prompts[name].version for name in self.prompt_names(s)],
        }

    def row_id(self, row: SyllabusRow) -> str:
        return row.subject_id

    def requests(self, context: StepContext, sources: Iterable[SubjectRow]) -> Iterator[tuple[SubjectRow, ChatRequest]]:
        for subject in sources:
            messages = context.render(
                self.prompt, subject=subject.subject, level=subject.level, subtopics=subject.subtopics
            )
            yield subject, self.request(context, subject.subject_id, messages=messages)

    def parse(self, context: StepContext, source: SubjectRow, result: ChatResult) -> tuple[SubjectRow, str]:
        return source, result.text

    def plan_messages(self, context: StepContext) -> list[dict[str, str]]:
        return context.render(self.prompt, subject="Subject name", level="undergraduate", subtopics=["a", "b", "c"])


def syllabus_row(subject: SubjectRow, text: str, syllabus: Syllabus) -> SyllabusRow | None:
    """The subject with its cleaned sessions; None when no session has a key concept to ask about."""
    sessions = []
    for session in syllabus.sessions:
        concepts = [concept.strip() for concept in session.key_concepts if concept.strip()]
        if session.name.strip() and concepts:
            sessions.append(
                ClassSession(name=session.name.strip(), description=session.description.strip(), key_concepts=concepts)
            )
    if not sessions:
        return None
    return SyllabusRow(**subject.model_dump(), sessions=sessions, syllabus_text=text)
