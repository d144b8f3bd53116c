"""Step 4: an answer per question from the answer model, and the published record."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from glan_dataset.llm import ChatRequest, ChatResult
from glan_dataset.records import RECORD_COLUMNS, Message, QuestionRow, Record
from glan_dataset.settings import GenerationSettings, SamplingParams
from glan_dataset.stages.base import Reject, Step, StepContext, filler
from glan_dataset.stages.questions import QuestionsStep


class AnswersStep(Step[QuestionRow]):
    """One answer per question of ``questions`` (answer model and sampling); writes the records."""

    name = "answer"
    max_tokens = 2_048
    prompt = "answer"
    typical_completion_tokens = 500
    reads = "questions"
    writes = "records"
    source_model = QuestionRow
    row_model = Record

    def model(self, settings: GenerationSettings) -> str:
        return settings.answer_model

    def sampling(self, settings: GenerationSettings) -> SamplingParams:
        return settings.answer_sampling

    def fingerprint(self, context: StepContext) -> dict[str, Any]:
        s = context.settings
        # every record carries the prompt version of the whole chain, so the chain's version is an input
        return {
            "answer_model": s.answer_model,
            "answer": s.answer_sampling,
            "prompt_version": context.prompt_version,
            "columns": RECORD_COLUMNS,  # a record file of an older schema is made again (from the cache)
        }

    def row_id(self, row: Record) -> str:
        return row.id

    def requests(
        self, context: StepContext, sources: Iterable[QuestionRow]
    ) -> Iterator[tuple[QuestionRow, ChatRequest]]:
        for question in sources:
            yield (
                question,
                self.request(
                    context, question.id, messages=context.prompts.render(self.prompt, question=question.question)
                ),
            )

    def parse(self, context: StepContext, source: QuestionRow, result: ChatResult) -> Record | Reject:
        answer = result.text.strip()
        if not answer:
            return Reject("the model returned an empty answer")
        model = result.model or self.model(context.settings)
        return make_record(source, answer, model, context.prompt_version, seed=context.settings.seed)

    def plan_messages(self, context: StepContext) -> list[dict[str, str]]:
        return context.prompts.render(self.prompt, question=filler(QuestionsStep.typical_completion_tokens))


def make_record(question: QuestionRow, answer: str, answer_model: str, prompt_version: str, *, seed: int) -> Record:
    """The question row's provenance columns carried over as they are, plus what the answer step adds."""
    return Record(
        **question.model_dump(include=set(Record.model_fields)),
        answer=answer,
        messages=[Message(role="user", content=question.question), Message(role="assistant", content=answer)],
        answer_model=answer_model,
        prompt_version=prompt_version,
        seed=seed,
    )
