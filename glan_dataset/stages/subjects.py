"""Step 1: the subjects of a discipline, in two calls.

The paper samples the subject list several times at T=1 as free text (format instructions hurt
quality), converts each sample to structure in a second call, and de-duplicates the union. So the
step's own call asks for ``subject_samples`` free-text lists of the taxonomy node (sources: the
sample indices), its follow-up :class:`SubjectConversion` converts each text that came back, and
:meth:`SubjectsStep.finish` de-duplicates the converted lists in sample order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from rapidfuzz import fuzz, process

from glan_dataset.llm import ChatRequest, ChatResult
from glan_dataset.records import SubjectList, SubjectRow, subject_id
from glan_dataset.settings import GenerationSettings, SamplingParams
from glan_dataset.stages.base import Call, DisciplineContext, Step, StepContext, filler
from glan_dataset.stages.store import StageStore
from glan_dataset.text import normalize

# Two subject names this similar (token-sorted, 0-100) are the same subject.
DUPLICATE_SUBJECT_SCORE = 90.0
# Distinct subjects one free-text sample contributes, before the --max-subjects cap (glan plan).
SUBJECTS_PER_SAMPLE = 15


class SubjectConversion(Call[tuple[int, str], SubjectList]):
    """A free-text subject list converted to a ``SubjectList`` (JSON-schema response format)."""

    name = "subjects_to_json"
    max_tokens = 4_096
    max_tokens_cap = 16_384
    prompt = "subjects_to_json"
    typical_completion_tokens = 1_000

    def sampling(self, settings: GenerationSettings) -> SamplingParams:
        return settings.conversion_sampling

    def requests(
        self, context: StepContext, sources: Iterable[tuple[int, str]]
    ) -> Iterator[tuple[tuple[int, str], ChatRequest]]:
        for sample, text in sources:
            messages = context.render(self.prompt, text=text)
            yield (sample, text), self.request(context, sample, messages=messages, response_model=SubjectList)

    def parse(self, context: StepContext, source: tuple[int, str], result: ChatResult) -> SubjectList | None:
        return result.parsed if isinstance(result.parsed, SubjectList) else None

    def plan_messages(self, context: StepContext) -> list[dict[str, str]]:
        return context.render(self.prompt, text=filler(SubjectsStep.typical_completion_tokens))


class SubjectsStep(Step[int]):
    """``subject_samples`` free-text lists (same prompt, distinct sample indices), converted, de-duplicated."""

    name = "subjects"
    max_tokens = 2_048
    prompt = "subjects"
    typical_completion_tokens = 1_200
    reads = None
    writes = "subjects"
    row_model = SubjectRow

    def calls(self, settings: GenerationSettings) -> tuple[Call[Any, Any], ...]:
        return (self, SubjectConversion())

    def fingerprint(self, context: StepContext) -> dict[str, Any]:
        s = context.settings
        return {
            "model": s.model,
            "generation": s.generation_sampling,
            "conversion": s.conversion_sampling,
            "samples": s.subject_samples,
            "max_subjects": s.max_subjects,
            "prompts": [context.prompts[name].version for name in self.prompt_names(s)],
        }

    def row_id(self, row: SubjectRow) -> str:
        return row.subject_id

    def sources(self, context: StepContext, store: StageStore) -> Iterator[int]:
        yield from range(context.settings.subject_samples)

    def units(self, settings: GenerationSettings, upstream_rows: int) -> int:
        return settings.subject_samples

    def planned_rows(self, settings: GenerationSettings, units: int) -> int:
        return min(settings.max_subjects, SUBJECTS_PER_SAMPLE * units)

    def requests(self, context: StepContext, sources: Iterable[int]) -> Iterator[tuple[int, ChatRequest]]:
        messages = context.render(self.prompt)
        for sample in sources:
            yield sample, self.request(context, sample, messages=messages, sample_index=sample)

    def parse(self, context: StepContext, source: int, result: ChatResult) -> tuple[int, str]:
        return source, result.text

    def plan_messages(self, context: StepContext) -> list[dict[str, str]]:
        return context.render(self.prompt)

    def finish(self, context: StepContext, results: list[Any]) -> list[SubjectRow]:
        return dedupe_subjects(context.node, results, context.settings.max_subjects)


def dedupe_subjects(context: DisciplineContext, samples: list[SubjectList], max_subjects: int) -> list[SubjectRow]:
    """Union of the sampled lists in sample order, near-duplicate names dropped, at most ``max_subjects``."""
    kept: list[SubjectRow] = []
    kept_names: list[str] = []
    for sample in samples:
        for spec in sample.subjects:
            name = normalize(spec.name)
            subtopics = [topic.strip() for topic in spec.subtopics if topic.strip()]
            if not name or not subtopics:
                continue
            if kept_names and process.extractOne(
                name, kept_names, scorer=fuzz.token_sort_ratio, score_cutoff=DUPLICATE_SUBJECT_SCORE
            ):
                continue
            kept_names.append(name)
            kept.append(
                SubjectRow(
                    **context.ref.model_dump(),
                    subject_id=subject_id(context.slug, name),
                    subject=spec.name.strip(),
                    level=spec.level.strip(),
                    subtopics=subtopics,
                )
            )
            if len(kept) >= max_subjects:
                return kept
    return kept
