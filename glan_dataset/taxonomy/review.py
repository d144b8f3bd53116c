"""Human verification of a taxonomy (the paper's step after GPT-4 builds it).

Each annotator gets the same CSV sheet with one row per node and writes ``keep`` or ``remove``
in the ``vote`` column (blank = abstain). :func:`apply_votes` takes the majority per node and
returns a pruned taxonomy in which every remaining node is verified. Sheets are checked in full
before anything is decided, so a typo in one sheet never yields a half-applied result.
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from glan_dataset.defaults import TieRule
from glan_dataset.rundir import write_text_atomic
from glan_dataset.taxonomy.model import (
    Level,
    Taxonomy,
    TaxonomyError,
    build_taxonomy,
)

SHEET_COLUMNS = ("id", "path", "level", "name", "description", "vote")
REQUIRED_COLUMNS = ("id", "vote")
VOTES = ("keep", "remove")
Reason = Literal["majority", "tie", "no votes", "parent removed", "emptied"]
_LEVELS: tuple[Level, ...] = ("field", "subfield", "discipline")


class SheetProblem(BaseModel):
    """One problem in a review sheet; ``row`` is 1-based with the header as row 1."""

    file: str
    row: int
    column: str
    message: str
    column_letter: str = ""

    def format(self) -> str:
        column = f"column {self.column!r}" + (f" ({self.column_letter})" if self.column_letter else "")
        return f"{self.file}: row {self.row}, {column}: {self.message}"


class ReviewSheetError(TaxonomyError):
    """Review sheets that cannot be applied; ``problems`` lists every one found."""

    def __init__(self, problems: list[SheetProblem]):
        self.problems = list(problems)
        message = self.problems[0].format() if self.problems else "invalid review sheet"
        if len(self.problems) > 1:
            more = len(self.problems) - 1
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        super().__init__(message)


# --------------------------------------------------------------------------- writing


def write_review_sheet(taxonomy: Taxonomy, path: str | os.PathLike[str]) -> int:
    """Write the sheet annotators fill in (one row per node, tree order); returns the row count."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SHEET_COLUMNS)
    rows = 0
    for level, node_path, node in taxonomy.nodes():
        writer.writerow([node.slug, node_path, level, node.name, node.description, ""])
        rows += 1
    write_text_atomic(path, buffer.getvalue())
    return rows


# --------------------------------------------------------------------------- reading


def _column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA: how a spreadsheet names a column."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def _read_rows(path: Path) -> list[list[str]]:
    """Rows of a CSV sheet; a BOM and ``;`` or tab delimiters (spreadsheet exports) are accepted."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        text = "\0"
    if "\0" in text:  # a spreadsheet's native file (xlsx, ods) or another binary file
        raise ReviewSheetError(
            [SheetProblem(file=str(path), row=1, column="id", message="not a CSV text file; export the sheet as CSV (UTF-8)")]
        )
    header = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=header.count)
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def _read_sheet(path: Path, known: set[str]) -> tuple[dict[str, str], list[SheetProblem]]:
    """The votes of one sheet (``id -> keep|remove``; blanks left out) and its problems."""
    file = str(path)
    rows = _read_rows(path)
    if not rows:
        return {}, [
            SheetProblem(
                file=file, row=1, column="id", message="the sheet is empty; write it with `glan taxonomy review-sheet`"
            )
        ]
    header = [cell.strip().lower() for cell in rows[0]]
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        return {}, [
            SheetProblem(
                file=file,
                row=1,
                column=column,
                message=f"missing required column {column!r}; the header must include {', '.join(REQUIRED_COLUMNS)}",
            )
            for column in missing
        ]
    id_at, vote_at = header.index("id"), header.index("vote")
    votes: dict[str, str] = {}
    first_row: dict[str, int] = {}
    problems: list[SheetProblem] = []

    def problem(row: int, at: int, message: str) -> None:
        problems.append(
            SheetProblem(file=file, row=row, column=header[at], column_letter=_column_letter(at), message=message)
        )

    for row_number, cells in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue
        node_id = cells[id_at].strip() if id_at < len(cells) else ""
        vote = cells[vote_at].strip().lower() if vote_at < len(cells) else ""
        if not node_id:
            problem(row_number, id_at, "missing id; keep the id column as the sheet was written")
            continue
        if node_id not in known:
            problem(row_number, id_at, f"unknown id {node_id!r}; this sheet was not written for this taxonomy")
            continue
        if node_id in first_row:
            problem(
                row_number, id_at, f"duplicate id {node_id!r} (first on row {first_row[node_id]}); vote once per node"
            )
            continue
        first_row[node_id] = row_number
        if vote and vote not in VOTES:
            problem(
                row_number,
                vote_at,
                f"vote {cells[vote_at].strip()!r} is not allowed; write keep or remove, or leave it blank to abstain",
            )
        elif vote:
            votes[node_id] = vote
    return votes, problems


# --------------------------------------------------------------------------- deciding


class NodeDecision(BaseModel):
    """How the votes went for one node and what happened to it."""

    slug: str
    level: Level
    path: str
    name: str
    keep: int
    remove: int
    abstain: int
    outcome: Literal["kept", "removed"]
    reason: Reason

    @property
    def split(self) -> bool:
        """Annotators disagreed (at least one keep and one remove)."""
        return self.keep > 0 and self.remove > 0


class VoteResult(BaseModel):
    """The verified taxonomy plus the per-node decisions behind it."""

    taxonomy: Taxonomy
    decisions: list[NodeDecision]
    sheets: int
    tie: TieRule

    def counts(self) -> dict[str, dict[str, int]]:
        """``{level: {"kept": n, "removed": m}}`` for field, subfield and discipline."""
        table = {level: {"kept": 0, "removed": 0} for level in _LEVELS}
        for decision in self.decisions:
            table[decision.level][decision.outcome] += 1
        return table

    @property
    def split(self) -> list[NodeDecision]:
        """Nodes on which annotators disagreed."""
        return [decision for decision in self.decisions if decision.split]

    @property
    def emptied(self) -> list[NodeDecision]:
        """Branches removed only because every child was removed."""
        return [decision for decision in self.decisions if decision.reason == "emptied"]

    @property
    def unvoted(self) -> list[NodeDecision]:
        """Nodes nobody voted on (decided by the tie rule)."""
        return [decision for decision in self.decisions if decision.reason == "no votes"]

    def render_report(self) -> str:
        """Plain-text report: counts per level, then :meth:`notes`."""
        lines = [f"votes from {self.sheets} sheet{'s' if self.sheets != 1 else ''}; ties: {self.tie}"]
        lines.append(f"{'level':<12}{'kept':>6}{'removed':>9}")
        for level, count in self.counts().items():
            lines.append(f"{level:<12}{count['kept']:>6}{count['removed']:>9}")
        return "\n".join(lines + self.notes())

    def notes(self) -> list[str]:
        """Lines listing split votes, branches emptied by removals, and nodes nobody voted on."""
        lines: list[str] = []
        sections = (
            ("split votes", self.split),
            ("removed because every child was removed", self.emptied),
            (f"no votes ({self.tie} by the tie rule)", self.unvoted),
        )
        for title, decisions in sections:
            if decisions:
                lines.append(f"{title} ({len(decisions)}):")
                lines.extend(
                    f"  {d.level} {d.path}: keep {d.keep}, remove {d.remove}, abstain {d.abstain} -> {d.outcome}"
                    for d in decisions
                )
        return lines


def _decide(keep: int, remove: int, tie: TieRule) -> tuple[Literal["kept", "removed"], Reason]:
    if keep != remove:
        return ("kept" if keep > remove else "removed"), "majority"
    return ("kept" if tie == "keep" else "removed"), ("no votes" if keep == 0 else "tie")


class _Pruner:
    """Walks the taxonomy top-down, recording decisions and building the kept tree."""

    def __init__(self, tally: dict[str, Counter[str]], sheets: int, tie: TieRule):
        self.tally, self.sheets, self.tie = tally, sheets, tie
        self.decisions: list[NodeDecision] = []

    def record(self, level: Level, path: str, node: Any, parent_kept: bool) -> NodeDecision:
        votes = self.tally.get(node.slug, Counter())
        keep, remove = votes["keep"], votes["remove"]
        outcome, reason = _decide(keep, remove, self.tie) if parent_kept else ("removed", "parent removed")
        decision = NodeDecision(
            slug=node.slug,
            level=level,
            path=path,
            name=node.name,
            keep=keep,
            remove=remove,
            abstain=self.sheets - keep - remove,
            outcome=outcome,
            reason=reason,
        )
        self.decisions.append(decision)
        return decision

    def branch(self, level: Level, path: str, node: Any, parent_kept: bool) -> dict[str, Any] | None:
        """The kept copy of ``node`` (None if removed); children are decided even under a removed node."""
        decision = self.record(level, path, node, parent_kept)
        kept = decision.outcome == "kept"
        data: dict[str, Any] = {
            "name": node.name,
            "slug": node.slug,
            "description": node.description,
            "status": "verified",
        }
        if level == "field" and node.group is not None:
            data["group"] = node.group
        if level == "discipline":
            data["added"] = node.added
            return data if kept else None
        key, children = ("subfields", node.subfields) if level == "field" else ("disciplines", node.disciplines)
        child_level: Level = "subfield" if level == "field" else "discipline"
        data[key] = [
            kept_child
            for child in children
            if (kept_child := self.branch(child_level, f"{path}/{child.slug}", child, kept)) is not None
        ]
        if kept and not data[key]:
            decision.outcome, decision.reason = "removed", "emptied"
            return None
        return data if kept else None


def apply_votes(taxonomy: Taxonomy, sheet_paths: list[str | os.PathLike[str]], tie: TieRule = "remove") -> VoteResult:
    """Majority vote over annotator sheets; removes rejected subtrees and branches left empty.

    Per node, ``keep`` and ``remove`` votes are counted across sheets (case and surrounding
    spaces ignored; blank or a missing row = abstain). The majority of the non-abstaining votes
    decides; a tie, including nobody voting, follows ``tie``. Every problem in every sheet is
    collected first and raised as one ReviewSheetError, so nothing is decided from bad input.
    """
    if not sheet_paths:
        raise TaxonomyError("no review sheets given; pass at least one filled-in sheet")
    if tie not in ("remove", "keep"):
        raise TaxonomyError(f"bad tie rule {tie!r}; use remove or keep")
    known = {node.slug for _, _, node in taxonomy.nodes()}
    tally: dict[str, Counter[str]] = {}
    problems: list[SheetProblem] = []
    for sheet in sheet_paths:
        votes, sheet_problems = _read_sheet(Path(sheet), known)
        problems.extend(sheet_problems)
        for slug, vote in votes.items():
            tally.setdefault(slug, Counter())[vote] += 1
    if problems:
        raise ReviewSheetError(problems)
    pruner = _Pruner(tally, len(sheet_paths), tie)
    fields = [
        kept for field in taxonomy.fields if (kept := pruner.branch("field", field.slug, field, True)) is not None
    ]
    if not fields:
        raise TaxonomyError(
            "the votes removed every field, so there is no taxonomy left to write; "
            "check the sheets (blank votes count as ties, see --tie)"
        )
    verified = build_taxonomy(
        {"version": taxonomy.version, "name": taxonomy.name, "status": "verified", "fields": fields}
    )
    return VoteResult(taxonomy=verified, decisions=pruner.decisions, sheets=len(sheet_paths), tie=tie)
