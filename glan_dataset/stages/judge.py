"""Quality gate, the LLM judge (``--judge-model``): a score from 1 to 10 per question-answer pair against
:data:`RUBRIC`, with a one-sentence rationale, as a JSON-schema reply (:class:`JudgeReply`).

It reads the records (the first pair of a conversation: its ``id`` is the conversation's), writes
``RUN/judgements/<discipline>.parquet`` (``id``, ``score``, ``rationale``, ``judge_model``) and never
changes the records: publishing joins the scores on ``id`` and filters by ``--min-score`` there, so a
maintainer changes a threshold without paying again. Off unless ``step_options['judgements']`` names a
model. The judge asks at temperature 0 (the conversion sampling): a score should not be a draw.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from glan_dataset.llm import ChatRequest, ChatResult
from glan_dataset.quality import RUBRIC
from glan_dataset.records import Record
from glan_dataset.settings import GenerationSettings, SamplingParams
from glan_dataset.stages.answers import AnswersStep
from glan_dataset.stages.base import Reject, Step, StepContext, filler
from glan_dataset.stages.questions import QuestionsStep


class JudgeOptions(BaseModel):
    """``step_options['judgements']``: the judge model (unset: no judge)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = Field(None, min_length=1, description="Model that scores every pair (off when unset).")


class JudgeReply(BaseModel):
    """The reply the judge must give (its JSON schema is the response format)."""

    model_config = ConfigDict(extra="forbid")

    score: int = Field(ge=1, le=10, description="Overall score from 1 (useless or wrong) to 10 (excellent).")
    rationale: str = Field(description="One sentence naming the main reason for the score.")


class Judgement(BaseModel):
    """A row of ``RUN/judgements``: one record's score."""

    id: str
    score: int
    rationale: str
    judge_model: str


class JudgeStep(Step[Record]):
    """One judge call per record; writes the scores beside the records (``judgements``)."""

    name = "judge"
    max_tokens = 512
    max_tokens_cap = 2_048
    prompt = "judge"
    typical_completion_tokens = 60
    reads = "records"
    writes = "judgements"
    source_model = Record
    row_model = Judgement
    options = JudgeOptions

    def enabled(self, settings: GenerationSettings) -> bool:
        return self.options_of(settings).model is not None

    def model(self, settings: GenerationSettings) -> str:
        return str(self.options_of(settings).model)

    def sampling(self, settings: GenerationSettings) -> SamplingParams:
        return settings.conversion_sampling

    def fingerprint(self, context: StepContext) -> dict[str, Any]:
        s = context.settings
        return {
            "judge_model": self.model(s),
            "sampling": self.sampling(s),
            "prompts": [context.prompts[self.prompt].version],
            "rubric": RUBRIC,
        }

    def row_id(self, row: Judgement) -> str:
        return row.id

    def requests(self, context: StepContext, sources: Iterable[Record]) -> Iterator[tuple[Record, ChatRequest]]:
        for record in sources:
            messages = self._messages(
                context, record.question, record.answer, record.level, record.subject, record.strategy
            )
            yield record, self.request(context, record.id, messages=messages, response_model=JudgeReply)

    def _messages(
        self, context: StepContext, question: str, answer: str, level: str, subject: str, strategy: str
    ) -> list[dict[str, str]]:
        return context.render(
            self.prompt,
            question=question,
            answer=answer,
            level=level,
            subject=subject,
            strategy=strategy,
            rubric=RUBRIC,
        )

    def parse(self, context: StepContext, source: Record, result: ChatResult) -> Judgement | Reject:
        reply = result.parsed
        if not isinstance(reply, JudgeReply):  # the engine validates against the schema; this is a guard
            return Reject("the judge's reply is not a score with a rationale")
        model = result.model or self.model(context.settings)
        return Judgement(id=source.id, score=reply.score, rationale=reply.rationale.strip(), judge_model=model)

    def plan_messages(self, context: StepContext) -> list[dict[str, str]]:
        question = filler(QuestionsStep.typical_completion_tokens)
        answer = filler(AnswersStep.typical_completion_tokens)
        return self._messages(context, question, answer, "undergraduate", "Classical Mechanics", "single_session")
