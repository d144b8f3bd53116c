"""Taxonomy models, loading, validation with line numbers, config selection and slugs.

A taxonomy is fields > sub-fields > disciplines. Every node has a slug, and slugs are the
dataset's config names, so they are unique across all levels and never the reserved ``all``.
Files are validated before they are turned into models so that every problem is reported with
the line it is on, not as a pydantic traceback.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, model_validator
from pydantic import Field as PydanticField
from rapidfuzz import fuzz, process
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from glan_dataset.errors import GlanError
from glan_dataset.rundir import write_text_atomic

Status = Literal["proposed", "verified"]
Group = Literal["academic", "industry"]
Level = Literal["field", "subfield", "discipline"]
ConfigKind = Literal["all", "field", "subfield", "discipline"]

ALL_CONFIG = "all"
SUPPORTED_VERSIONS = (1,)
SLUG_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
DEFAULT_TAXONOMY_PATH = Path(str(resources.files("glan_dataset").joinpath("data", "taxonomy.yaml")))

_STATUSES: tuple[str, ...] = ("proposed", "verified")
_GROUPS: tuple[str, ...] = ("academic", "industry")
_ROOT_KEYS = ("version", "name", "status", "fields")
_NODE_KEYS: dict[str, tuple[str, ...]] = {
    "field": ("name", "slug", "group", "description", "status", "subfields"),
    "subfield": ("name", "slug", "description", "status", "disciplines"),
    "discipline": ("name", "slug", "description", "status", "added"),
}
# level -> (key holding the children, level of the children)
_CHILDREN: dict[str, tuple[str, str] | None] = {
    "field": ("subfields", "subfield"),
    "subfield": ("disciplines", "discipline"),
    "discipline": None,
}


# --------------------------------------------------------------------------- errors


class TaxonomyError(GlanError, ValueError):
    """Base of every taxonomy problem; ``str()`` is one line: what is wrong and how to fix it."""


@dataclass(frozen=True)
class ValidationIssue:
    """One problem in a taxonomy file. ``line`` is 1-based (None when not from a file)."""

    line: int | None
    path: str
    message: str

    def format(self, file: str | os.PathLike[str] | None = None) -> str:
        """Render as ``FILE:LINE: message`` (the shape editors and CI logs can jump to)."""
        where = str(file) if file is not None else ""
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        return f"{where}: {self.message}" if where else self.message


class TaxonomyValidationError(TaxonomyError):
    """The taxonomy has content problems; ``issues`` holds all of them."""

    def __init__(self, issues: list[ValidationIssue], file: str | os.PathLike[str] | None = None):
        self.issues = list(issues)
        self.file = str(file) if file is not None else None
        first = self.issues[0].format(self.file) if self.issues else "invalid taxonomy"
        more = len(self.issues) - 1
        if more > 0:
            hint = f"glan taxonomy validate {self.file}" if self.file else "validate_taxonomy_file()"
            first += f" (and {more} more issue{'s' if more > 1 else ''}; run `{hint}` to list all)"
        super().__init__(first)


class UnknownConfigError(TaxonomyError):
    """A config or discipline name that is not in the taxonomy; the message suggests close ones."""

    def __init__(self, config: str, candidates: list[str], kind: str = "config"):
        self.config = config
        self.suggestions = closest_names(config, candidates)
        message = f"unknown {kind} {config!r}"
        if self.suggestions:
            message += f"; closest: {', '.join(self.suggestions)}"
        else:
            message += "; run `glan taxonomy show` to list the names"
        super().__init__(message)


def closest_names(query: str, candidates: list[str], limit: int = 3) -> list[str]:
    """The ``limit`` candidates most similar to ``query`` (for "did you mean" messages)."""
    if not candidates:
        return []
    matches = process.extract(query.lower(), candidates, scorer=fuzz.WRatio, limit=limit)
    return [name for name, score, _ in matches if score >= 50]


# --------------------------------------------------------------------------- slugs


def slugify(name: str) -> str:
    """Lowercase ASCII slug: "Materials Science & Engineering" -> materials-science-and-engineering."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    text = text.replace("&", " and ").replace("'", "").lower()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def normalize_name(name: str) -> str:
    """Names that differ only in case, punctuation or spacing are the same name."""
    return slugify(name)


# --------------------------------------------------------------------------- models


class _Node(BaseModel):
    """Fields shared by every level. A missing slug is derived from the name."""

    model_config = ConfigDict(extra="forbid", validate_assignment=False)

    name: str = PydanticField(min_length=1)
    slug: str
    description: str = ""
    status: Status | None = None

    @model_validator(mode="before")
    @classmethod
    def _derive_slug(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("slug") and isinstance(data.get("name"), str):
            return {**data, "slug": slugify(data["name"])}
        return data


class Discipline(_Node):
    """A leaf of the taxonomy: the unit a pipeline stage runs on."""

    added: bool = False
    # Filled when the taxonomy is built; not part of the file.
    field_slug: str = PydanticField(default="", exclude=True, repr=False)
    field_name: str = PydanticField(default="", exclude=True, repr=False)
    subfield_slug: str = PydanticField(default="", exclude=True, repr=False)
    subfield_name: str = PydanticField(default="", exclude=True, repr=False)

    @property
    def path(self) -> str:
        """``field/subfield/discipline`` slugs, as in review sheets and diffs."""
        return f"{self.field_slug}/{self.subfield_slug}/{self.slug}"


class SubField(_Node):
    """A group of related disciplines inside a field."""

    disciplines: list[Discipline]
    field_slug: str = PydanticField(default="", exclude=True, repr=False)
    field_name: str = PydanticField(default="", exclude=True, repr=False)


class Field(_Node):
    """A top-level area of knowledge (the paper's 8: 5 academic, 3 industry)."""

    group: Group | None = None
    subfields: list[SubField]


class Taxonomy(BaseModel):
    """A whole taxonomy. Instances are always valid: slugs are unique and no branch is empty.

    A node without a ``status`` inherits its parent's (the root's for fields) when built, so
    ``discipline.status`` can be read directly.
    """

    model_config = ConfigDict(extra="forbid")

    version: int = 1
    name: str = ""
    status: Status | None = None
    fields: list[Field]

    @model_validator(mode="after")
    def _check_and_link(self) -> Taxonomy:
        issues = check_tree(self.model_dump(mode="python"))
        if issues:
            raise ValueError(TaxonomyValidationError(issues).args[0])
        for field in self.fields:
            field.status = field.status or self.status
            for sub in field.subfields:
                sub.field_slug, sub.field_name = field.slug, field.name
                sub.status = sub.status or field.status
                for disc in sub.disciplines:
                    disc.field_slug, disc.field_name = field.slug, field.name
                    disc.subfield_slug, disc.subfield_name = sub.slug, sub.name
                    disc.status = disc.status or sub.status
        return self

    # ------------------------------------------------------------------ navigation

    def subfields(self) -> list[SubField]:
        """All sub-fields, in file order."""
        return [sub for field in self.fields for sub in field.subfields]

    def disciplines(self) -> list[Discipline]:
        """All disciplines, in file order."""
        return [disc for sub in self.subfields() for disc in sub.disciplines]

    def nodes(self) -> Iterator[tuple[Level, str, Field | SubField | Discipline]]:
        """Every node in tree order as ``(level, path, node)``; path is slugs joined by ``/``."""
        for field in self.fields:
            yield "field", field.slug, field
            for sub in field.subfields:
                yield "subfield", f"{field.slug}/{sub.slug}", sub
                for disc in sub.disciplines:
                    yield "discipline", f"{field.slug}/{sub.slug}/{disc.slug}", disc

    def discipline(self, slug: str) -> Discipline:
        """The discipline with this slug; UnknownConfigError (with suggestions) if there is none."""
        for disc in self.disciplines():
            if disc.slug == slug:
                return disc
        raise UnknownConfigError(slug, [d.slug for d in self.disciplines()], kind="discipline")

    def config_names(self) -> list[str]:
        """``all``, then field, sub-field and discipline slugs, each in file order."""
        return (
            [ALL_CONFIG]
            + [f.slug for f in self.fields]
            + [s.slug for s in self.subfields()]
            + [d.slug for d in self.disciplines()]
        )

    def _resolve(self, config: str) -> tuple[ConfigKind, str]:
        """Map a config (a slug, or a name that slugifies to one) to its kind and slug."""
        kinds: dict[str, ConfigKind] = {ALL_CONFIG: "all"}
        kinds.update({f.slug: "field" for f in self.fields})
        kinds.update({s.slug: "subfield" for s in self.subfields()})
        kinds.update({d.slug: "discipline" for d in self.disciplines()})
        for candidate in (config, config.strip().lower(), slugify(config)):
            if candidate in kinds:
                return kinds[candidate], candidate
        raise UnknownConfigError(config, self.config_names())

    def config_kind(self, config: str) -> ConfigKind:
        """Whether ``config`` names everything, a field, a sub-field or a discipline."""
        return self._resolve(config)[0]

    def select(self, config: str) -> list[Discipline]:
        """The disciplines a config covers, in file order.

        ``config`` is ``all`` or any node slug; a display name such as "Computer science" is
        accepted too, since it slugifies to the config name.
        """
        kind, slug = self._resolve(config)
        if kind == "all":
            return self.disciplines()
        if kind == "field":
            return [d for d in self.disciplines() if d.field_slug == slug]
        if kind == "subfield":
            return [d for d in self.disciplines() if d.subfield_slug == slug]
        return [self.discipline(slug)]

    # ------------------------------------------------------------------ output

    def canonical_dict(self) -> dict[str, Any]:
        """Plain data without defaults or inherited statuses: the basis of dumps and hashes."""
        data = self.model_dump(mode="json", exclude_none=True)
        _strip_inherited_status(data, data.get("status"))
        return _strip_defaults(data)

    def content_hash(self) -> str:
        """sha256 of the canonical JSON dump: equal for equal content, whatever the formatting."""
        text = json.dumps(self.canonical_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def to_yaml(self) -> str:
        """The taxonomy as a YAML document that :func:`load_taxonomy` reads back unchanged."""
        yaml = YAML()
        yaml.default_flow_style = False
        yaml.width = 4096
        yaml.indent(mapping=2, sequence=4, offset=2)
        buffer = io.StringIO()
        yaml.dump(self.canonical_dict(), buffer)
        return buffer.getvalue()

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_yaml` atomically, so readers never see a half-written file."""
        write_text_atomic(path, self.to_yaml())


def _strip_inherited_status(node: dict[str, Any], parent_status: str | None) -> None:
    """A node's status is inherited from its parent unless set, so only write it where it differs."""
    for key in ("fields", "subfields", "disciplines"):
        for child in node.get(key, []):
            status = child.get("status")
            if status is not None and status == parent_status:
                del child["status"]
            _strip_inherited_status(child, status or parent_status)


def _strip_defaults(data: Any) -> Any:
    """Drop ``added: false`` and empty descriptions, recursively (they are the defaults)."""
    if isinstance(data, dict):
        return {
            key: _strip_defaults(value)
            for key, value in data.items()
            if not (key == "added" and value is False) and not (key == "description" and value == "")
        }
    if isinstance(data, list):
        return [_strip_defaults(item) for item in data]
    return data


def build_taxonomy(data: Any, file: str | os.PathLike[str] | None = None) -> Taxonomy:
    """Validate plain data and build a Taxonomy; problems raise TaxonomyValidationError."""
    issues = check_tree(data)
    if issues:
        raise TaxonomyValidationError(issues, file)
    try:
        return Taxonomy.model_validate(data)
    except pydantic.ValidationError as exc:  # a type problem check_tree does not look for
        error = exc.errors()[0]
        location = ".".join(str(part) for part in error["loc"])
        raise TaxonomyValidationError([ValidationIssue(None, location, f"{location}: {error['msg']}")], file) from None


# --------------------------------------------------------------------------- loading


def _read_text(path: str | os.PathLike[str] | None) -> tuple[str, str]:
    """The file's text and a display name; None reads the packaged default."""
    if path is None:
        return resources.files("glan_dataset").joinpath("data", "taxonomy.yaml").read_text("utf-8"), str(
            DEFAULT_TAXONOMY_PATH
        )
    try:
        return Path(path).read_text(encoding="utf-8"), str(path)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        raise TaxonomyError(
            f"cannot read the taxonomy file {path}: {exc.strerror or exc}; check the path"
        ) from None


def _parse(text: str) -> tuple[Any, list[ValidationIssue]]:
    """Round-trip parse (keeps line numbers); syntax errors become one issue with a line."""
    try:
        return YAML(typ="rt").load(text), []
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        detail = " ".join(part for part in (exc.context, exc.problem) if part)
        detail = re.sub(r"\s+", " ", detail)
        return None, [ValidationIssue(line, "", f"YAML syntax error: {detail}; fix the YAML at this line")]
    except YAMLError as exc:
        return None, [ValidationIssue(None, "", f"YAML error: {' '.join(str(exc).split())}")]


def validate_taxonomy_file(path: str | os.PathLike[str]) -> list[ValidationIssue]:
    """Every problem in a taxonomy file, with its line. Only I/O errors raise (OSError)."""
    try:
        text, _ = _read_text(path)
    except UnicodeDecodeError as exc:
        return [ValidationIssue(None, "", f"file is not UTF-8 text ({exc.reason}); save it as UTF-8")]
    data, issues = _parse(text)
    return issues or check_tree(data)


def load_taxonomy(path: str | os.PathLike[str] | None = None) -> Taxonomy:
    """Load and validate a taxonomy file (None: the packaged default).

    Raises TaxonomyValidationError (one line: the first issue with file:line, and the count of
    the others) for content problems, TaxonomyError if the file cannot be read.
    """
    try:
        text, display = _read_text(path)
    except UnicodeDecodeError as exc:
        raise TaxonomyValidationError(
            [ValidationIssue(None, "", f"file is not UTF-8 text ({exc.reason}); save it as UTF-8")], path
        ) from None
    data, issues = _parse(text)
    if issues:
        raise TaxonomyValidationError(issues, display)
    return build_taxonomy(data, display)


# --------------------------------------------------------------------------- validation


def _key_line(container: Any, key: Any) -> int | None:
    """1-based line of a mapping key or sequence item, when the data came from ruamel."""
    lc = getattr(container, "lc", None)
    if lc is None:
        return None
    try:
        position = lc.key(key) if isinstance(container, dict) else lc.item(key)
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    return position[0] + 1 if position else None


def _node_line(node: Any) -> int | None:
    lc = getattr(node, "lc", None)
    return lc.line + 1 if lc is not None and lc.line is not None else None


def _at(line: int | None) -> str:
    return f"line {line}" if line is not None else "an earlier node"


class _TreeChecker:
    """Walks raw taxonomy data (ruamel or plain) and collects every issue it finds."""

    def __init__(self) -> None:
        self.issues: list[ValidationIssue] = []
        self.slugs: dict[str, tuple[int | None, str]] = {}
        self.names: dict[tuple[str, str], tuple[int | None, str]] = {}

    def add(self, line: int | None, path: str, message: str) -> None:
        self.issues.append(ValidationIssue(line, path, message))

    def root(self, data: Any) -> None:
        if data is None:
            self.add(1, "", "file is empty; a taxonomy needs 'version', 'name' and a 'fields' list")
            return
        if not isinstance(data, dict):
            self.add(_node_line(data) or 1, "", "top level must be a mapping with 'version', 'name' and 'fields'")
            return
        self.unknown_keys(data, "", "taxonomy", _ROOT_KEYS)
        version = data.get("version", 1)
        if isinstance(version, bool) or version not in SUPPORTED_VERSIONS:
            self.add(_key_line(data, "version"), "version", f"unsupported version {version!r}; use version: 1")
        if not isinstance(data.get("name", ""), str):
            self.add(_key_line(data, "name"), "name", "taxonomy name must be a string")
        self.status(data, "", "taxonomy")
        fields = data.get("fields")
        if fields is None:
            self.add(_node_line(data) or 1, "fields", "no 'fields' list; add at least one field")
        elif not isinstance(fields, list) or not fields:
            self.add(_key_line(data, "fields"), "fields", "'fields' must be a non-empty list of fields")
        else:
            for index, field in enumerate(fields):
                self.node(field, "field", f"fields[{index}]", _key_line(fields, index))

    def unknown_keys(self, node: dict[Any, Any], path: str, label: str, allowed: tuple[str, ...]) -> None:
        for key in node:
            if key not in allowed:
                self.add(
                    _key_line(node, key),
                    f"{path}.{key}".lstrip("."),
                    f"{label}: unknown key {key!r}; allowed keys: {', '.join(allowed)}",
                )

    def status(self, node: dict[Any, Any], path: str, label: str) -> None:
        status = node.get("status")
        if status is not None and status not in _STATUSES:
            self.add(
                _key_line(node, "status"),
                f"{path}.status".lstrip("."),
                f"{label}: bad status {status!r}; use proposed or verified (or leave it out)",
            )

    def node(self, node: Any, level: str, path: str, line: int | None) -> None:
        if not isinstance(node, dict):
            self.add(line, path, f"{level} at {path} must be a mapping with name, slug and description")
            return
        line = _node_line(node) or line
        name = node.get("name")
        label = f"{level} {name!r}" if isinstance(name, str) and name.strip() else f"{level} at {path}"
        self.unknown_keys(node, path, label, _NODE_KEYS[level])
        if not isinstance(name, str) or not name.strip():
            self.add(line, f"{path}.name", f"{label}: missing name; every node needs a non-empty 'name'")
        if not isinstance(node.get("description", ""), str):
            self.add(_key_line(node, "description"), f"{path}.description", f"{label}: description must be text")
        self.status(node, path, label)
        if level == "field" and node.get("group") is not None and node.get("group") not in _GROUPS:
            self.add(
                _key_line(node, "group"),
                f"{path}.group",
                f"{label}: bad group {node['group']!r}; use academic or industry",
            )
        if level == "discipline" and not isinstance(node.get("added", False), bool):
            self.add(_key_line(node, "added"), f"{path}.added", f"{label}: 'added' must be true or false")
        self.slug(node, level, path, label, line)
        if isinstance(name, str) and name.strip():
            self.duplicate_name(name, level, path, label, line)
        self.children(node, level, path, label, line)

    def slug(self, node: dict[Any, Any], level: str, path: str, label: str, line: int | None) -> None:
        if node.get("slug") in (None, ""):
            name = node.get("name")
            slug = slugify(name) if isinstance(name, str) else ""
            if not slug:
                if isinstance(name, str) and name.strip():
                    self.add(line, f"{path}.slug", f"{label}: cannot derive a slug from the name; add a 'slug'")
                return
            slug_line = line
        else:
            slug, slug_line = node["slug"], _key_line(node, "slug") or line
            if not isinstance(slug, str) or not SLUG_RE.match(slug):
                suggestion = slugify(str(slug)) or "physics"
                self.add(
                    slug_line,
                    f"{path}.slug",
                    f"{label}: bad slug {slug!r}; use lowercase letters, digits and single hyphens, "
                    f"e.g. {suggestion!r}",
                )
                return
        if slug == ALL_CONFIG:
            self.add(slug_line, f"{path}.slug", f"{label}: slug 'all' is reserved for the whole taxonomy; pick another")
            return
        if slug in self.slugs:
            first_line, first_label = self.slugs[slug]
            self.add(
                slug_line,
                f"{path}.slug",
                f"duplicate slug {slug!r}: {label} here and {first_label} at {_at(first_line)}; "
                "slugs are config names and must be unique across all levels",
            )
        else:
            self.slugs[slug] = (slug_line, label)

    def duplicate_name(self, name: str, level: str, path: str, label: str, line: int | None) -> None:
        key = (level, normalize_name(name))
        if key in self.names:
            first_line, _ = self.names[key]
            self.add(
                line,
                f"{path}.name",
                f"duplicate {level} name {name!r} (also at {_at(first_line)}); rename or merge them",
            )
        else:
            self.names[key] = (line, label)

    def children(self, node: dict[Any, Any], level: str, path: str, label: str, line: int | None) -> None:
        spec = _CHILDREN[level]
        if spec is None:
            return
        key, child_level = spec
        kids = node.get(key)
        if kids is None or (isinstance(kids, list) and not kids):
            self.add(
                _key_line(node, key) or line,
                f"{path}.{key}",
                f"empty branch: {label} has no {key}; add at least one or remove the {level}",
            )
        elif not isinstance(kids, list):
            self.add(_key_line(node, key), f"{path}.{key}", f"{label}: '{key}' must be a list")
        else:
            for index, kid in enumerate(kids):
                self.node(kid, child_level, f"{path}.{key}[{index}]", _key_line(kids, index))


def check_tree(data: Any) -> list[ValidationIssue]:
    """All content issues of raw taxonomy data; lines are known when it came from ruamel."""
    checker = _TreeChecker()
    checker.root(data)
    return checker.issues
