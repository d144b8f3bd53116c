"""``glan taxonomy ...``: inspect, validate, review, edit and compare taxonomy files.

Every user error (bad file, bad sheet, unknown name, missing file) ends as one red
``error: ...`` line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from glan_dataset.cli import Group
from glan_dataset.cli.options import BaseUrl, Concurrency, EngineOptions, Model, Prices, PromptsDir, Quiet
from glan_dataset.defaults import DEFAULT_MODEL, TieRule
from glan_dataset.errors import GlanError

if TYPE_CHECKING:
    from glan_dataset.taxonomy import Discipline, Taxonomy, VoteResult

taxonomy_app = typer.Typer(
    help="Inspect, validate, review (human votes), edit and compare taxonomy files.",
    no_args_is_help=True,
    cls=Group,
)

USER_ERROR = 2

TaxonomyOption = Annotated[
    Path | None,
    typer.Option("--taxonomy", "-t", help="Taxonomy YAML file (default: the packaged GLAN taxonomy)."),
]


def _out() -> Console:
    return Console(highlight=False, soft_wrap=True)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn expected failures into one red line on stderr and exit code 2."""
    try:
        yield
    except GlanError as exc:  # TaxonomyError, ReviewSheetError, endpoint configuration ...
        _fail(str(exc))
    except OSError as exc:
        target = exc.filename if exc.filename is not None else ""
        _fail(f"cannot access {target}: {exc.strerror or exc}; check the path" if target else str(exc))


def _fail(message: str) -> None:
    Console(stderr=True, highlight=False).print(Text(f"error: {message}", style="red"), soft_wrap=True)
    raise typer.Exit(USER_ERROR)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _totals(taxonomy: Taxonomy) -> str:
    fields = len(taxonomy.fields)
    subfields = len(taxonomy.subfields())
    disciplines = len(taxonomy.disciplines())
    return f"{_plural(fields, 'field')}, {_plural(subfields, 'sub-field')}, {_plural(disciplines, 'discipline')}"


# --------------------------------------------------------------------------- show


def _discipline_label(discipline: Discipline) -> Text:
    label = Text(f"{discipline.name} ")
    label.append(f"[{discipline.slug}]", style="dim")
    if discipline.added:
        label.append(" added", style="cyan")
    if discipline.status == "proposed":
        label.append(" proposed", style="yellow")
    return label


def _tree(taxonomy: Taxonomy, selected: set[str]) -> Tree:
    """A rich tree of the selected disciplines with per-node counts."""
    root = Tree(Text(taxonomy.name or "taxonomy", style="bold"))
    for field in taxonomy.fields:
        subfields = [s for s in field.subfields if any(d.slug in selected for d in s.disciplines)]
        if not subfields:
            continue
        count = sum(1 for s in subfields for d in s.disciplines if d.slug in selected)
        field_label = Text(f"{field.name} ", style="bold")
        field_label.append(f"[{field.slug}] ", style="dim")
        field_label.append(f"{_plural(len(subfields), 'sub-field')}, {_plural(count, 'discipline')}")
        branch = root.add(field_label)
        for sub in subfields:
            disciplines = [d for d in sub.disciplines if d.slug in selected]
            sub_label = Text(f"{sub.name} ")
            sub_label.append(f"[{sub.slug}] ", style="dim")
            sub_label.append(_plural(len(disciplines), "discipline"))
            leaf = branch.add(sub_label)
            for discipline in disciplines:
                leaf.add(_discipline_label(discipline))
    return root


@taxonomy_app.command()
def show(
    taxonomy: TaxonomyOption = None,
    config: Annotated[
        str, typer.Option("--config", "-c", help="Show only this config: all, a field, sub-field or discipline slug.")
    ] = "all",
) -> None:
    """Print the taxonomy as a tree, with sub-field and discipline counts per node."""
    from glan_dataset.taxonomy import load_taxonomy

    with _user_errors():
        loaded = load_taxonomy(taxonomy)
        selected = loaded.select(config)
    console = _out()
    console.print(_tree(loaded, {d.slug for d in selected}), soft_wrap=False)
    if loaded.config_kind(config) == "all":
        console.print(f"total: {_totals(loaded)}")
    else:
        fields = {d.field_slug for d in selected}
        subfields = {d.subfield_slug for d in selected}
        console.print(
            f"config {config!r} ({loaded.config_kind(config)}): {_plural(len(fields), 'field')}, "
            f"{_plural(len(subfields), 'sub-field')}, {_plural(len(selected), 'discipline')}"
        )


# --------------------------------------------------------------------------- validate


@taxonomy_app.command()
def validate(file: Annotated[Path, typer.Argument(help="Taxonomy YAML file to check.")]) -> None:
    """Report every problem as FILE:LINE: message (exit 2 if there is any)."""
    from glan_dataset.taxonomy import load_taxonomy, validate_taxonomy_file

    with _user_errors():
        issues = validate_taxonomy_file(file)
    console = _out()
    if issues:
        for issue in issues:
            console.print(Text(issue.format(file)), soft_wrap=True)
        console.print(Text(f"{_plural(len(issues), 'issue')} in {file}", style="red"))
        raise typer.Exit(USER_ERROR)
    with _user_errors():
        console.print(f"ok: {_totals(load_taxonomy(file))}")


# --------------------------------------------------------------------------- review


@taxonomy_app.command("review-sheet")
def review_sheet(
    file: Annotated[Path, typer.Argument(help="Taxonomy YAML file to review.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV sheet to write (one per annotator).")],
) -> None:
    """Write a CSV sheet for annotators: write keep or remove in the vote column, or leave it blank."""
    from glan_dataset.taxonomy import load_taxonomy, write_review_sheet

    with _user_errors():
        rows = write_review_sheet(load_taxonomy(file), out)
    _out().print(f"wrote {out}: {_plural(rows, 'node')} to vote on (keep / remove / blank)")


def _vote_table(result: VoteResult) -> Table:
    table = Table(title=f"votes from {_plural(result.sheets, 'sheet')}; ties: {result.tie}")
    table.add_column("level")
    table.add_column("kept", justify="right")
    table.add_column("removed", justify="right")
    for level, count in result.counts().items():
        table.add_row(level, str(count["kept"]), str(count["removed"]))
    return table


@taxonomy_app.command("apply-votes")
def apply_votes_command(
    file: Annotated[Path, typer.Argument(help="The taxonomy the sheets were written from.")],
    sheets: Annotated[list[Path], typer.Argument(help="Filled-in review sheets, one per annotator.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the verified taxonomy.")],
    tie: Annotated[TieRule, typer.Option("--tie", help="What a tie (or no votes at all) does to a node.")] = "remove",
) -> None:
    """Apply annotators' majority votes: removed nodes take their subtree with them."""
    from glan_dataset.taxonomy import apply_votes, load_taxonomy

    with _user_errors():
        result = apply_votes(load_taxonomy(file), list(sheets), tie=tie)
        result.taxonomy.save(out)
    console = _out()
    console.print(_vote_table(result), soft_wrap=False)
    for line in result.notes():
        console.print(Text(line), soft_wrap=True)
    console.print(f"wrote {out}: {_totals(result.taxonomy)}")


# --------------------------------------------------------------------------- edit


@taxonomy_app.command()
def add(
    file: Annotated[Path, typer.Argument(help="Taxonomy YAML file to edit.")],
    path: Annotated[
        str, typer.Argument(help="'' or / for a field, FIELD for a sub-field, FIELD/SUBFIELD for a discipline.")
    ],
    name: Annotated[
        str, typer.Argument(help="Name; for a new field or sub-field a chain like 'Sub-field > Discipline'.")
    ],
    description: Annotated[str, typer.Option("--description", "-d", help="One-line description of the new node.")] = "",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write here instead of editing FILE in place.")
    ] = None,
) -> None:
    """Add a node (status: proposed) with a unique slug. Comments in FILE are not kept."""
    from glan_dataset.taxonomy import add_node, diff_taxonomies, load_taxonomy

    with _user_errors():
        before = load_taxonomy(file)
        after = add_node(before, path, name, description)
        target = out or file
        after.save(target)
    console = _out()
    for line in diff_taxonomies(before, after).render():
        console.print(Text(line), soft_wrap=True)
    console.print(f"wrote {target}: {_totals(after)}")


@taxonomy_app.command()
def merge(
    base: Annotated[Path, typer.Argument(help="Base taxonomy: wins every conflict.")],
    extra: Annotated[Path, typer.Argument(help="Taxonomy whose new nodes are added to the base.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the merged taxonomy.")],
) -> None:
    """Union of two taxonomies by slug and name; prints what was added."""
    from glan_dataset.taxonomy import diff_taxonomies, load_taxonomy, merge_taxonomies

    with _user_errors():
        base_taxonomy = load_taxonomy(base)
        merged = merge_taxonomies(base_taxonomy, load_taxonomy(extra))
        merged.save(out)
    difference = diff_taxonomies(base_taxonomy, merged)
    console = _out()
    for line in difference.render():
        console.print(Text(line), soft_wrap=True)
    console.print(f"wrote {out}: {_totals(merged)} ({difference.summary()})")


@taxonomy_app.command()
def diff(
    old: Annotated[Path, typer.Argument(help="Old taxonomy file.")],
    new: Annotated[Path, typer.Argument(help="New taxonomy file.")],
) -> None:
    """Nodes added (+), removed (-), renamed or changed (~) and moved (>) from OLD to NEW."""
    from glan_dataset.taxonomy import diff_taxonomies, load_taxonomy

    with _user_errors():
        difference = diff_taxonomies(load_taxonomy(old), load_taxonomy(new))
    console = _out()
    for line in difference.render():
        console.print(Text(line), soft_wrap=True)
    console.print(difference.summary())


@taxonomy_app.command()
def propose(
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the proposed taxonomy (YAML).")],
    fields: Annotated[int | None, typer.Option("--fields", min=1, help="At most this many fields.")] = None,
    samples: Annotated[int, typer.Option("--samples", min=1, help="Samples per level and parent, merged.")] = 3,
    seed_taxonomy: Annotated[
        Path | None, typer.Option("--seed-taxonomy", help="Propose only what is missing under this taxonomy.")
    ] = None,
    run: Annotated[
        Path | None, typer.Option("--run", help="Directory for the LLM cache (default: OUT's name + '-run').")
    ] = None,
    prompts: PromptsDir = None,
    model: Model = DEFAULT_MODEL,
    base_url: BaseUrl = None,
    concurrency: Concurrency = 16,
    price: Prices = None,
    quiet: Quiet = False,
) -> None:
    """Let the LLM propose fields, sub-fields and disciplines (status: proposed) for people to vote on."""
    from glan_dataset import eventloop
    from glan_dataset.prompts import PromptLibrary
    from glan_dataset.taxonomy import load_taxonomy
    from glan_dataset.taxonomy.propose import ProposeSettings, TaxonomyProposer

    run_dir = run or out.with_name(f"{out.stem}-run")
    engine = EngineOptions(base_url=base_url, concurrency=concurrency, prices=price, quiet=quiet).config()
    with _user_errors():
        seed = load_taxonomy(seed_taxonomy) if seed_taxonomy else None
        proposer = TaxonomyProposer(
            ProposeSettings(model=model, samples=samples, fields=fields),
            engine,
            run_dir,
            PromptLibrary(prompts, names=["taxonomy"]),
        )
        taxonomy, report = eventloop.run(proposer.propose(seed))
        taxonomy.save(out)
    console = _out()
    for level in ("field", "subfield", "discipline"):
        console.print(f"{level}s: {report.proposed[level]} proposed, {report.kept[level]} kept from the seed")
    console.print(f"wrote {out}: {_totals(taxonomy)}; next: glan taxonomy review-sheet {out} --out review.csv")
