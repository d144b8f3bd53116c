"""Multi-turn conversations (``--turns N``): a student's follow-up question and the teacher's answer,
``N - 1`` times after the first pair.

Each turn is two calls over every record: the student question (question model, generation sampling,
``prompts/followup_question.j2``, grounded in the record's sessions and key concepts) and the teacher's
answer (answer model and sampling, the whole conversation as chat history, the last question rendered
with ``prompts/answer.j2`` like the first). Every call takes the conversation so far and returns it one
message longer, and each is cached on its own, so a run killed in the middle of turn 2 replays turn 1
and the finished part of turn 2 from the cache. The rows are records (same ids, ``question`` and
``answer`` of the first pair) whose ``messages`` hold the whole conversation (``RUN/conversations``);
with ``--turns 1`` the step is off and the records are those of the answer step.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from glan_dataset.llm import ChatRequest, ChatResult
from glan_dataset.records import Message, Record
from glan_dataset.settings import GenerationSettings, SamplingParams
from glan_dataset.stages.answers import AnswersStep
from glan_dataset.stages.base import Call, Reject, Step, StepContext, filler
from glan_dataset.stages.questions import QuestionsStep

STUDENT_QUESTION_TOKENS = 80


class FollowUpOptions(BaseModel):
    """``step_options['conversations']``: the number of (question, answer) turns of a conversation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    turns: int = Field(1, ge=1, le=20, description="Question-answer turns per conversation (1: single pairs).")


def _grow(record: Record, role: str, content: str, prompt_version: str) -> Record:
    messages = [*record.messages, Message.model_validate({"role": role, "content": content})]
    return record.model_copy(update={"messages": messages, "prompt_version": prompt_version})


def _history(record: Record) -> list[dict[str, str]]:
    return [message.model_dump() for message in record.messages]


def _plan_history(turn: int) -> list[dict[str, str]]:
    """A representative conversation before ``turn``'s student question (for ``glan plan``)."""
    pair = [
        {"role": "user", "content": filler(STUDENT_QUESTION_TOKENS)},
        {"role": "assistant", "content": filler(AnswersStep.typical_completion_tokens)},
    ]
    return pair * (turn - 1)


class StudentQuestion(Call[Record, Record]):
    """Turn ``turn``'s student question: the conversation so far, one user message longer."""

    prompt = "followup_question"
    max_tokens = QuestionsStep.max_tokens
    typical_completion_tokens = STUDENT_QUESTION_TOKENS

    def __init__(self, turn: int) -> None:
        self.turn = turn
        self.name = f"followup_question_{turn}"

    def requests(self, context: StepContext, sources: Iterable[Record]) -> Iterator[tuple[Record, ChatRequest]]:
        for record in sources:
            yield record, self.request(context, record.id, self.turn, messages=self._messages(context, record))

    def _messages(self, context: StepContext, record: Record) -> list[dict[str, str]]:
        return context.render(
            self.prompt,
            subject=record.subject,
            level=record.level,
            sessions=record.sessions,
            key_concepts=record.key_concepts,
            conversation=_history(record),
        )

    def parse(self, context: StepContext, source: Record, result: ChatResult) -> Record | Reject:
        question = result.text.strip()
        if not question:
            return Reject("the model returned an empty follow-up question")
        return _grow(source, "user", question, context.prompt_version)

    def plan_messages(self, context: StepContext) -> list[dict[str, str]]:
        return context.render(
            self.prompt,
            subject="Classical Mechanics",
            level="undergraduate",
            sessions=["Newton's laws"],
            key_concepts=["inertia", "net force"],
            conversation=_plan_history(self.turn),
        )


class TeacherAnswer(Call[Record, Record]):
    """Turn ``turn``'s answer to the last question, with the whole conversation as chat history."""

    prompt = AnswersStep.prompt
    max_tokens = AnswersStep.max_tokens
    typical_completion_tokens = AnswersStep.typical_completion_tokens

    def __init__(self, turn: int) -> None:
        self.turn = turn
        self.name = f"followup_answer_{turn}"

    def model(self, settings: GenerationSettings) -> str:
        return settings.answer_model

    def sampling(self, settings: GenerationSettings) -> SamplingParams:
        return settings.answer_sampling

    def requests(self, context: StepContext, sources: Iterable[Record]) -> Iterator[tuple[Record, ChatRequest]]:
        for record in sources:
            history = _history(record)
            messages = _chat(context, history[:-1], history[-1]["content"])
            yield record, self.request(context, record.id, self.turn, messages=messages)

    def parse(self, context: StepContext, source: Record, result: ChatResult) -> Record | Reject:
        answer = result.text.strip()
        if not answer:
            return Reject("the model returned an empty follow-up answer")
        return _grow(source, "assistant", answer, context.prompt_version)

    def plan_messages(self, context: StepContext) -> list[dict[str, str]]:
        return _chat(context, _plan_history(self.turn), filler(STUDENT_QUESTION_TOKENS))


def _chat(context: StepContext, history: list[dict[str, str]], question: str) -> list[dict[str, str]]:
    """The answer template's messages for ``question`` after ``history`` (its system message, if any, first)."""
    rendered = context.prompts.render(AnswersStep.prompt, question=question)
    system = [message for message in rendered if message["role"] == "system"]
    return [*system, *history, *(message for message in rendered if message["role"] != "system")]


class FollowUpStep(Step[Record]):
    """Conversations of ``turns`` question-answer pairs from the records (off with one turn)."""

    name = "followup"  # the step's calls are named per turn (followup_question_2, followup_answer_2, ...)
    prompt = StudentQuestion.prompt
    typical_completion_tokens = STUDENT_QUESTION_TOKENS
    reads = "records"
    writes = "conversations"
    source_model = Record
    row_model = Record
    options = FollowUpOptions

    def turns(self, settings: GenerationSettings) -> int:
        return int(self.options_of(settings).turns)

    def enabled(self, settings: GenerationSettings) -> bool:
        return self.turns(settings) > 1

    def calls(self, settings: GenerationSettings) -> tuple[Call[Any, Any], ...]:
        turns = range(2, self.turns(settings) + 1)
        return tuple(call for turn in turns for call in (StudentQuestion(turn), TeacherAnswer(turn)))

    def fingerprint(self, context: StepContext) -> dict[str, Any]:
        s = context.settings
        return {
            "turns": self.turns(s),
            "model": s.model,
            "answer_model": s.answer_model,
            "generation": s.generation_sampling,
            "answer": s.answer_sampling,
            "prompt_version": context.prompt_version,
        }

    def row_id(self, row: Record) -> str:
        return row.id

    # the step's own call is its first one (turn 2's student question)
    def requests(self, context: StepContext, sources: Iterable[Record]) -> Iterator[tuple[Record, ChatRequest]]:
        return StudentQuestion(2).requests(context, sources)

    def parse(self, context: StepContext, source: Record, result: ChatResult) -> Record | Reject:
        return StudentQuestion(2).parse(context, source, result)

    def plan_messages(self, context: StepContext) -> list[dict[str, str]]:
        return StudentQuestion(2).plan_messages(context)
