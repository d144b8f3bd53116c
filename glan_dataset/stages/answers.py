"""Stage 5: an answer per question from the answer model, and the published record."""

from __future__ import annotations

from glan_dataset.llm import ChatRequest
from glan_dataset.prompts import PromptLibrary
from glan_dataset.records import Message, QuestionRow, Record
from glan_dataset.settings import GenerationSettings
from glan_dataset.stages.base import unit_key


def answer_request(question: QuestionRow, settings: GenerationSettings, prompts: PromptLibrary) -> ChatRequest:
    sampling = settings.answer_sampling
    return ChatRequest(
        key=unit_key(question.discipline, "answer", question.id),
        stage="answer",
        model=settings.answer_model,
        messages=prompts.render("answer", question=question.question),
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        max_tokens=sampling.max_tokens,
    )


def make_record(question: QuestionRow, answer: str, answer_model: str, prompt_version: str) -> Record:
    """The question row's provenance columns carried over as they are, plus what the answer step adds."""
    return Record(
        **question.model_dump(include=set(Record.model_fields)),
        answer=answer,
        messages=[Message(role="user", content=question.question), Message(role="assistant", content=answer)],
        answer_model=answer_model,
        prompt_version=prompt_version,
    )
