"""The step contract: what one LLM stage declares, so the pipeline can run it with one generic loop.

A :class:`Call` is one LLM call per source item: ``requests(context, sources)`` pairs each source
with its request, ``parse(context, source, result)`` turns the reply into the next item (or
``None``: nothing to keep, or :class:`Reject`: a failed unit, retried by the next run). A
:class:`Step` is a call that also owns a stage file: what it reads and writes, its row model, its
fingerprint inputs, and optional follow-up calls made on its results (free text first, then a
conversion to JSON). The engine hands every outcome back paired with its source (``LLMEngine.map``),
so a step never parses keys and never keeps a side table.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel

from glan_dataset.llm import ChatRequest, ChatResult
from glan_dataset.prompts import PromptLibrary
from glan_dataset.records import DisciplineRef
from glan_dataset.settings import GenerationSettings, SamplingParams

if TYPE_CHECKING:
    from glan_dataset.stages.store import StageStore

SourceT = TypeVar("SourceT")
OutT = TypeVar("OutT")

# Rough size of English text in tokens: for ``glan plan`` estimates only.
TOKENS_PER_WORD = 1.35


@dataclass(frozen=True)
class DisciplineContext:
    """A discipline with its field and sub-field, as the prompts need them."""

    discipline: Any  # glan_dataset.taxonomy.Discipline
    subfield: Any  # glan_dataset.taxonomy.SubField
    field: Any  # glan_dataset.taxonomy.Field

    @property
    def slug(self) -> str:
        return str(self.discipline.slug)

    @property
    def ref(self) -> DisciplineRef:
        return DisciplineRef(field=self.field.slug, subfield=self.subfield.slug, discipline=self.discipline.slug)

    def prompt_context(self) -> dict[str, Any]:
        return {"discipline": self.discipline, "subfield": self.subfield, "field": self.field}

    def identity(self) -> dict[str, str]:
        """What of the taxonomy node a stage's output depends on (part of stage fingerprints)."""
        return {
            "discipline": f"{self.discipline.name}|{self.discipline.description}",
            "subfield": f"{self.subfield.name}|{self.subfield.description}",
            "field": f"{self.field.name}|{self.field.description}",
        }


@dataclass(frozen=True)
class StepContext:
    """What a step sees while it works on one discipline."""

    node: DisciplineContext
    settings: GenerationSettings
    prompts: PromptLibrary
    prompt_version: str  # combined version of this step's templates and every earlier step's

    @property
    def slug(self) -> str:
        return self.node.slug

    def render(self, prompt: str, **values: Any) -> list[dict[str, str]]:
        """Render a template with the taxonomy node (discipline, subfield, field) and ``values``."""
        return self.prompts.render(prompt, **values, **self.node.prompt_context())


@dataclass(frozen=True)
class Reject:
    """A reply that gives no row and counts as a failed unit: listed in failures.jsonl with ``reason``,
    its stage file is marked incomplete, and the next run asks again."""

    reason: str


def unit_key(discipline: str, step: str, *parts: object) -> str:
    """Name of one LLM unit in failures.jsonl and batch state (never parsed back: outcomes come paired)."""
    return "/".join([discipline, step, *(str(part) for part in parts)])


def filler(tokens: int) -> str:
    """Placeholder text of about ``tokens`` tokens, for rendering representative prompts in ``glan plan``."""
    return " ".join(["word"] * int(tokens / TOKENS_PER_WORD))


class Call(ABC, Generic[SourceT, OutT]):
    """One LLM call per source item.

    Class attributes: ``name`` names the call everywhere (engine stage, progress row, usage and cost
    key, failures.jsonl, ``glan plan`` row); ``prompt`` is its template; ``max_tokens`` its default
    budget (see :meth:`budget`); ``max_tokens_cap`` how far a reply cut at the budget is asked again with
    a doubled budget (structured conversions, which are useless cut); ``typical_completion_tokens`` what
    ``glan plan`` assumes.
    """

    name: ClassVar[str]
    prompt: ClassVar[str]
    max_tokens: ClassVar[int | None] = None
    max_tokens_cap: ClassVar[int | None] = None
    typical_completion_tokens: ClassVar[int]

    def budget(self, settings: GenerationSettings) -> int | None:
        """Completion tokens asked for: ``--max-tokens CALL=N`` (a per-turn call also answers to its name
        without the turn number), else ``--max-tokens N``, else the sampling's, else the call's default."""
        overrides = settings.max_tokens
        for key in (self.name, self.name.rstrip("_0123456789"), "*"):
            if key in overrides:
                return overrides[key]
        sampling = self.sampling(settings)
        return sampling.max_tokens if sampling.max_tokens is not None else self.max_tokens

    def model(self, settings: GenerationSettings) -> str:
        return settings.model

    def sampling(self, settings: GenerationSettings) -> SamplingParams:
        return settings.generation_sampling

    @abstractmethod
    def requests(self, context: StepContext, sources: Iterable[SourceT]) -> Iterator[tuple[SourceT, ChatRequest]]:
        """Each source with the request asked for it (lazily: sources may be millions of rows)."""

    @abstractmethod
    def parse(self, context: StepContext, source: SourceT, result: ChatResult) -> OutT | Reject | None:
        """What a successful reply makes of its source; ``None`` keeps nothing, ``Reject`` is a failure."""

    @abstractmethod
    def plan_messages(self, context: StepContext) -> list[dict[str, str]]:
        """The prompt rendered with representative content, for ``glan plan``'s token estimate."""

    def request(
        self,
        context: StepContext,
        *key_parts: object,
        messages: list[dict[str, str]],
        sample_index: int = 0,
        response_model: type[BaseModel] | None = None,
    ) -> ChatRequest:
        """A request with this call's model and sampling (the cache key is derived from its content)."""
        sampling = self.sampling(context.settings)
        budget = self.budget(context.settings)
        return ChatRequest(
            key=unit_key(context.slug, self.name, *key_parts),
            stage=self.name,
            model=self.model(context.settings),
            messages=messages,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=budget,
            max_tokens_cap=None if self.max_tokens_cap is None or budget is None else max(budget, self.max_tokens_cap),
            sample_index=sample_index,
            response_model=response_model,
        )


class Step(Call[SourceT, Any]):
    """A call that owns a stage file per discipline (``RUN/<writes>/<discipline>.parquet``).

    The step's own call runs on the rows of ``reads`` (or, with ``reads = None``, on what
    :meth:`sources` makes from the taxonomy node); each call of :meth:`calls` after the first runs on
    the previous call's results, in source order; :meth:`finish` turns the last call's results into
    the rows written. Freshness: the file is reused while :meth:`fingerprint` (plus the taxonomy
    node and the upstream file's identity, added by the pipeline) is unchanged and it is complete.
    """

    reads: ClassVar[str | None]
    writes: ClassVar[str]
    source_model: ClassVar[type[BaseModel] | None] = None  # the row model of ``reads``
    row_model: ClassVar[type[BaseModel]]
    options: ClassVar[type[BaseModel] | None] = None
    """The step's own knobs (e.g. ``--turns``), read from ``settings.step_options[writes]``: a step with
    settings stays one module (no field in ``GenerationSettings``). Give every field a default."""

    def options_of(self, settings: GenerationSettings) -> Any:
        """This step's options in ``settings`` (an instance of :attr:`options`, defaults where unset)."""
        if self.options is None:
            raise TypeError(f"step {self.writes} declares no options")
        return self.options.model_validate(settings.step_options.get(self.writes, {}))

    def enabled(self, settings: GenerationSettings) -> bool:
        """Whether this run makes the step at all (an optional step, e.g. a judge, says no when unset)."""
        return True

    def calls(self, settings: GenerationSettings) -> tuple[Call[Any, Any], ...]:
        """This step's calls in order; by default the step's own call alone."""
        return (self,)

    def prompt_names(self, settings: GenerationSettings) -> tuple[str, ...]:
        return tuple(call.prompt for call in self.calls(settings))

    @abstractmethod
    def fingerprint(self, context: StepContext) -> dict[str, Any]:
        """Every input besides the taxonomy node and the upstream file that changes this step's rows."""

    @abstractmethod
    def row_id(self, row: Any) -> str:
        """A written row's stable id (the stage file's digest, and so downstream freshness, uses it)."""

    def sources(self, context: StepContext, store: StageStore) -> Iterator[Any]:
        """The items of the first call: the rows of ``reads``, read only when the engine reaches this
        discipline (a few disciplines are in memory at a time, whatever the run's size)."""
        if self.reads is None or self.source_model is None:
            raise NotImplementedError(f"step {self.writes} reads no stage file: override sources()")
        yield from store.read(self.reads, context.slug, self.source_model)

    def units(self, settings: GenerationSettings, upstream_rows: int) -> int:
        """Calls of each kind for a discipline with ``upstream_rows`` input rows (progress and plan)."""
        return upstream_rows

    def planned_rows(self, settings: GenerationSettings, units: int) -> int:
        """Rows a discipline typically gets from ``units`` calls (``glan plan``)."""
        return units

    def finish(self, context: StepContext, results: list[Any]) -> list[BaseModel]:
        """The rows to write from the last call's results in source order (e.g. de-duplication)."""
        return results
