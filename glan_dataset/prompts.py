"""Prompt templates: one Jinja2 file per LLM call in ``prompts/``; a template's content hash is its version.

Which templates a run needs is for its caller to say (the generation: its steps' prompt names).

A template holds a ``<<<system>>>`` section (optional) and a ``<<<user>>>`` section. Users customise
prompts by copying ``prompts/`` and passing ``--prompts DIR``: a changed template gets a new version,
so the cache and every record tell which prompt produced them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from glan_dataset.errors import UsageError

# The templates ``glan eval`` uses (loaded with ``PromptLibrary(names=EVAL_PROMPT_NAMES)``).
EVAL_PROMPT_NAMES: tuple[str, ...] = ("eval_answer", "judge_pairwise")

_SECTION = re.compile(r"^<<<(system|user)>>>[ \t]*$", re.MULTILINE)


def _packaged_dir() -> Path:
    return Path(str(resources.files("glan_dataset._prompts")))


def packaged_names() -> list[str]:
    """The templates the package ships (one per LLM call, plus ``taxonomy`` for ``glan taxonomy propose``)."""
    return sorted(path.stem for path in _packaged_dir().glob("*.j2"))


class PromptTemplate:
    """One LLM step's template."""

    def __init__(self, name: str, source: str, environment: jinja2.Environment) -> None:
        self.name = name
        self.source = source
        self.version = hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]
        self._template = environment.from_string(source)
        # Template.render merges the globals (a ChainMap over the environment's) into every context: a
        # third of a small template's render time, per call. Flattened once, passed as a shared context.
        self._globals = dict(self._template.globals)

    def render(self, **context: Any) -> list[dict[str, str]]:
        """Render to chat messages (system first when the template has one)."""
        template = self._template
        text = "".join(template.root_render_func(template.new_context({**self._globals, **context}, shared=True)))
        parts = _SECTION.split(text)
        messages: list[dict[str, str]] = []
        # parts = [preamble, role, body, role, body, ...]
        for role, body in zip(parts[1::2], parts[2::2], strict=True):
            content = body.strip()
            if content:
                messages.append({"role": role, "content": content})
        if not messages or messages[-1]["role"] != "user":
            raise UsageError(f"prompt template '{self.name}' renders no <<<user>>> section; add one")
        return messages


class PromptLibrary:
    """The set of templates a run uses."""

    def __init__(self, directory: str | Path | None = None, names: Iterable[str] | None = None) -> None:
        """Load ``names`` (default: every template the package ships) from ``directory`` (default: the
        packaged ``prompts/``); a missing or broken template is refused here, before any call."""
        self.directory = Path(directory) if directory is not None else _packaged_dir()
        if not self.directory.is_dir():
            raise UsageError(
                f"prompt directory '{self.directory}' does not exist; pass --prompts DIR with the templates"
            )
        environment = jinja2.Environment(
            undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False, trim_blocks=False
        )
        self._templates: dict[str, PromptTemplate] = {}
        for name in packaged_names() if names is None else names:
            path = self.directory / f"{name}.j2"
            if not path.is_file():
                raise UsageError(f"prompt template '{path}' is missing; copy it from the project's prompts/ folder")
            try:
                self._templates[name] = PromptTemplate(name, path.read_text(encoding="utf-8"), environment)
            except jinja2.TemplateSyntaxError as error:
                raise UsageError(f"prompt template '{path}' line {error.lineno}: {error.message}") from None

    def __getitem__(self, name: str) -> PromptTemplate:
        return self._templates[name]

    def render(self, name: str, **context: Any) -> list[dict[str, str]]:
        try:
            return self._templates[name].render(**context)
        except jinja2.UndefinedError as error:
            raise UsageError(f"prompt template '{name}': {error.message}; check the variables it uses") from None

    @property
    def versions(self) -> dict[str, str]:
        return {name: template.version for name, template in self._templates.items()}

    def combined_version(self, names: Iterable[str] | None = None) -> str:
        """One version for a chain of templates (default: every loaded one, in order); the generation
        records the version of its steps' templates in every record."""
        names = list(self._templates) if names is None else names
        joined = "+".join(f"{name}:{self._templates[name].version}" for name in names)
        return hashlib.sha256(joined.encode()).hexdigest()[:12]
