"""The dataset card (``README.md``): YAML metadata the Hub reads plus a body people read.

The template lives in ``dataset_card/`` (shipped in the package as ``glan_dataset/_card``). This
module turns the run (``run.json``, the decontamination report, the staged layout, the release
history) into plain values, so the template only formats; every number in the card comes from here.
The YAML front matter is produced by ``huggingface_hub.DatasetCardData`` so it is exactly what the
Hub parses back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from glan_dataset.defaults import DEFAULT_LICENSE
from glan_dataset.publishing.chart import CHART_PATH
from glan_dataset.publishing.layout import SPLITS, StagedData, configs_metadata, dataset_info_metadata
from glan_dataset.publishing.releases import Release
from glan_dataset.publishing.split import NEAR_DUPLICATE_THRESHOLD
from glan_dataset.quality import card_section

TAGS: tuple[str, ...] = ("synthetic", "glan", "instruction-tuning")
TASK_CATEGORIES: tuple[str, ...] = ("text-generation", "question-answering")
SIZE_CATEGORIES: tuple[tuple[int, str], ...] = (
    (10**3, "n<1K"),
    (10**4, "1K<n<10K"),
    (10**5, "10K<n<100K"),
    (10**6, "100K<n<1M"),
    (10**7, "1M<n<10M"),
    (10**8, "10M<n<100M"),
    (10**9, "100M<n<1B"),
)
DEMO_PRETTY_NAME = "GLAN demo dataset (placeholder text, not real data)"
DEFAULT_PRETTY_NAME = "GLAN synthetic instructions"


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket for ``n`` records."""
    for limit, label in SIZE_CATEGORIES:
        if n < limit:
            return label
    return "n>1B"


@dataclass
class CardInputs:
    """Everything a card is made from."""

    staged: StagedData
    run: dict[str, Any]  # run.json as written by the pipeline
    decontamination: dict[str, Any] | None
    releases: list[Release]
    license: str = DEFAULT_LICENSE
    dataset_id: str = "ORG/NAME"
    on_hub: bool = False  # tags can be loaded with revision=; a local folder has no revisions
    extra: str | None = None
    pretty_name: str | None = None
    demo: bool = False
    chart_path: str = CHART_PATH
    extra_tags: list[str] = field(default_factory=list)
    leaderboard: list[dict[str, Any]] = field(default_factory=list)  # glan_dataset.evaluation.leaderboard_rows
    missing: dict[str, Any] | None = None
    """``publish.MissingData`` as a dict when published with ``--allow-partial`` and something is missing."""
    quality: Any = None  # glan_dataset.quality.QualityReport when publishing applied the quality gate


def template_dir() -> Path:
    """``dataset_card/`` (the package ships it as ``glan_dataset._card``)."""
    try:
        path = Path(str(resources.files("glan_dataset._card")))
        if (path / "README.md.j2").exists():
            return path
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parents[2] / "dataset_card"


def card_metadata(inputs: CardInputs) -> Any:
    """The front matter as ``DatasetCardData`` (license, language, tasks, size, tags, configs, dataset_info)."""
    from huggingface_hub import DatasetCardData

    staged = inputs.staged
    data = DatasetCardData(
        license=inputs.license,
        language=["en"],
        task_categories=list(TASK_CATEGORIES),
        size_categories=[size_category(staged.total())],
        pretty_name=pretty_name(inputs),
        tags=[*TAGS, *(["demo", "placeholder"] if inputs.demo else []), *inputs.extra_tags],
        configs=configs_metadata(staged.configs, staged.disciplines),
        dataset_info=dataset_info_metadata(staged.configs, staged.disciplines),
    )
    return data


def pretty_name(inputs: CardInputs) -> str:
    if inputs.demo:
        return DEMO_PRETTY_NAME
    return inputs.pretty_name or DEFAULT_PRETTY_NAME


def render_card(inputs: CardInputs) -> str:
    """The full ``README.md`` text."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir())),
        autoescape=False,  # noqa: S701 - Markdown, not HTML
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = _num
    env.filters["count"] = _count
    text = env.get_template("README.md.j2").render(**card_context(inputs))
    return _squeeze_blank_lines(text)


def card_context(inputs: CardInputs) -> dict[str, Any]:
    staged = inputs.staged
    fields = _field_rows(staged)
    totals = {
        "records": staged.total(),
        "train": staged.total("train"),
        "test": staged.total("test"),
        "fields": len(fields),
        "subfields": len({d.subfield for d in staged.disciplines.values()}),
        "disciplines": len(staged.disciplines),
    }
    generation = _generation(inputs.run)
    first = fields[0]["disciplines"][0]
    summary = (
        f"Synthetic instruction-tuning data generated with GLAN (Generalized Instruction Tuning, "
        f"Li et al. 2024) from a taxonomy of human knowledge: {_count(totals['records'], 'question-answer pair')} "
        f"across {_count(totals['disciplines'], 'discipline')} in {_count(totals['fields'], 'field')}, written by "
        f"`{generation['model']}` (questions) and `{generation['answer_model']}` (answers)."
    )
    if inputs.demo:
        summary = "**Placeholder text, not real data.** " + summary
    return {
        "card_data": card_metadata(inputs).to_yaml(),
        "pretty_name": pretty_name(inputs),
        "demo": inputs.demo,
        "summary": summary,
        "totals": totals,
        "license": inputs.license,
        "dataset_id": inputs.dataset_id,
        "on_hub": inputs.on_hub,
        "examples": {"discipline": first["name"], "subfield": first["subfield"], "field": fields[0]["name"]},
        "fields": fields,
        "chart_path": inputs.chart_path,
        "generation": generation,
        "decontamination": _decontamination(inputs.decontamination, set(staged.disciplines)),
        "split": _split(staged),
        "releases": [_release_row(r) for r in inputs.releases],
        "extra": (inputs.extra or "").strip() or None,
        "leaderboard": inputs.leaderboard,
        "missing": _missing(inputs.missing),
        "quality": None if inputs.quality is None else card_section(inputs.quality),
    }


def _missing(missing: dict[str, Any] | None) -> dict[str, Any] | None:
    """The "missing from this release" section: disciplines without records, incomplete ones with counts."""
    if not missing:
        return None
    incomplete = missing.get("incomplete") or {}
    return {
        "no_records": list(missing.get("no_records") or []),
        "incomplete": [{"name": name, "failed": int(n)} for name, n in sorted(incomplete.items())],
        "outstanding_failures": int(missing.get("outstanding_failures") or 0),
    }


# --------------------------------------------------------------------------------------------
# Context pieces
# --------------------------------------------------------------------------------------------


def _field_rows(staged: StagedData) -> list[dict[str, Any]]:
    """Fields in taxonomy order with their disciplines and train/test counts (only those with records)."""
    rows = []
    for config in staged.configs:
        if config.kind != "field":
            continue
        disciplines = []
        for name in config.disciplines:
            d = staged.disciplines[name]
            disciplines.append(
                {
                    "name": name,
                    "title": staged.names.title(name),
                    "subfield": d.subfield,
                    "subfield_title": staged.names.title(d.subfield),
                    **{split: d.num_examples(split) for split in SPLITS},
                }
            )
        rows.append(
            {
                "name": config.name,
                "title": config.title,
                "disciplines": disciplines,
                **{split: sum(d[split] for d in disciplines) for split in SPLITS},
            }
        )
    return rows


def field_counts(staged: StagedData) -> list[tuple[str, int, int]]:
    """(field title, train, test) per field: what the chart draws."""
    return [(row["title"], row["train"], row["test"]) for row in _field_rows(staged)]


def _generation(run: dict[str, Any]) -> dict[str, Any]:
    settings = run.get("settings") or {}
    model = settings.get("model", "unknown")
    answer_model = settings.get("answer_model", "unknown")
    sampling = []
    for key, label in (
        ("generation_sampling", "Subjects, syllabi and questions"),
        ("answer_sampling", "Answers"),
        ("conversion_sampling", "Free text to JSON conversion"),
    ):
        params = settings.get(key)
        if params:
            sampling.append({"label": label, **{k: params.get(k) for k in ("temperature", "top_p", "max_tokens")}})
    counts = [
        {"label": label, "value": settings[key]}
        for key, label in (
            ("subject_samples", "Subject lists sampled per discipline"),
            ("max_subjects", "Subjects kept per discipline (at most)"),
            ("questions_per_subject", "Questions per subject"),
            ("multi_session_ratio", "Share of two-session questions"),
        )
        if key in settings
    ]
    step_options = settings.get("step_options") or {}  # steps' own settings (glan_dataset.stages.Step.options)
    if "conversations" in step_options:
        counts.append(
            {"label": "Question-answer turns per conversation", "value": step_options["conversations"]["turns"]}
        )
    stage_counts: dict[str, int] = {}
    for per_discipline in (run.get("counts") or {}).values():
        for stage, value in (per_discipline or {}).items():
            stage_counts[stage] = stage_counts.get(stage, 0) + int(value or 0)
    usage_rows, total = _usage(run.get("usage") or {})
    return {
        "model": model,
        "answer_model": answer_model,
        "models": sorted({model, answer_model}),
        "sampling": sampling,
        "counts": counts,
        "seed": settings.get("seed", 0),
        "version": run.get("glan_dataset_version", "unknown"),
        "prompt_versions": sorted((run.get("prompt_versions") or {}).items()),
        "stage_counts": [(k, v) for k, v in stage_counts.items() if k != "failures" or v],
        "usage": usage_rows,
        "usage_total": total,
    }


def _usage(usage: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows of the token/cost table from run.json's ``usage`` (the engine's cumulative ledger)."""
    entries = usage.get("cumulative") or usage.get("session") or []
    rows = []
    for e in entries:
        rows.append(
            {
                "stage": e.get("stage", "?"),
                "model": e.get("model", "?"),
                "calls": int(e.get("calls", 0)) + int(e.get("batch_calls", 0)),
                "prompt_tokens": int(e.get("prompt_tokens", 0)) + int(e.get("batch_prompt_tokens", 0)),
                "completion_tokens": int(e.get("completion_tokens", 0)) + int(e.get("batch_completion_tokens", 0)),
                "cost": _money(e.get("cost_usd")),
            }
        )
    total_cost = usage.get("cumulative_cost_usd", usage.get("session_cost_usd"))
    total = {
        "calls": sum(r["calls"] for r in rows),
        "prompt_tokens": sum(r["prompt_tokens"] for r in rows),
        "completion_tokens": sum(r["completion_tokens"] for r in rows),
        "cost": _money(total_cost),
    }
    return rows, total


def _decontamination(report: dict[str, Any] | None, published: set[str]) -> dict[str, Any] | None:
    """The report (``glan_dataset.decontamination.DecontaminationReport`` as JSON) as table rows and lines.

    Read as plain JSON, tolerantly: a report written by an older or newer version still renders
    whatever it has rather than failing the publish. Says plainly what was *not* checked.
    """
    if report is None:
        return None
    benchmarks = []
    raw = report.get("benchmarks") or {}
    items = raw.items() if isinstance(raw, dict) else ((b.get("name", "?"), b) for b in raw if isinstance(b, dict))
    for name, entry in items:
        if isinstance(entry, dict):
            benchmarks.append(
                {
                    "name": name,
                    "split": str(entry.get("split") or "test"),
                    "source": str(entry.get("source", "")),
                    "version": str(entry.get("version") or "n/a"),
                    "items": _first_int(entry, "items"),
                    "indexed": _first_int(entry, "items_indexed", "indexed", "items"),
                    "removed": _first_int(entry, "records_removed", "removed"),
                }
            )
    unavailable_raw = report.get("unavailable") or {}
    splits = report.get("unavailable_splits") or {}
    if isinstance(unavailable_raw, dict):
        unavailable = [
            f"{name} ({splits.get(name, 'test')}): {reason}" if reason else name
            for name, reason in sorted(unavailable_raw.items())
        ]
    else:
        unavailable = sorted(map(str, unavailable_raw))
    dups = report.get("duplicates_removed") or {}
    settings = report.get("settings") or {}
    lines = []
    if "records_in" in report:
        lines.append(f"Records checked: **{_num(report['records_in'])}**")
    if "contaminated" in report:
        train = int(report.get("contaminated_train") or 0)
        test = int(report.get("contaminated_test", int(report["contaminated"]) - train))
        lines.append(f"Removed as benchmark contamination: **{_num(report['contaminated'])}**")
        lines.append(f"of which matching a test set: **{_num(test)}**, a training split: **{_num(train)}**")
    if isinstance(dups, dict) and dups:
        lines.append(
            f"Duplicates removed: **{_num(sum(int(v) for v in dups.values()))}** "
            f"({_num(int(dups.get('exact', 0)))} exact, {_num(int(dups.get('near', 0)))} near duplicates)"
        )
    elif isinstance(dups, int | float):
        lines.append(f"Duplicates removed: **{_num(dups)}**")
    if "records_out" in report:
        lines.append(f"Records kept: **{_num(report['records_out'])}**")
    if settings:
        lines.append(
            f"Method: word {settings.get('n', 13)}-grams; a record is removed when it covers at least "
            f"{float(settings.get('threshold', 0.5)):.0%} of a benchmark item; near duplicates at rapidfuzz "
            f"similarity >= {float(settings.get('near_dup_threshold', 0.9)):.0%}"
        )
    if report.get("identity"):
        lines.append(f"Decontamination identity (settings and benchmark items): `{report['identity']}`")
    disciplines = []
    for name, entry in sorted((report.get("disciplines") or {}).items()):
        if not isinstance(entry, dict) or name not in published:  # not a discipline this release no longer has
            continue
        row = {"name": name, **{k: int(v) for k, v in entry.items() if isinstance(v, int | float)}}
        row.setdefault("contaminated_train", 0)
        row.setdefault("contaminated_test", row.get("contaminated", 0) - row["contaminated_train"])
        disciplines.append(row)
    return {
        "benchmarks": benchmarks,
        "test_sets": sum(1 for b in benchmarks if b["split"] == "test"),
        "train_sets": sum(1 for b in benchmarks if b["split"] == "train"),
        "checked_nothing": isinstance(raw, dict | list) and not benchmarks,
        "unavailable": unavailable,
        "lines": lines,
        "disciplines": disciplines,
    }


def _split(staged: StagedData) -> dict[str, Any]:
    removed = {name: d.near_duplicates_removed for name, d in staged.disciplines.items()}
    cross = {name: d.cross_discipline_removed for name, d in staged.disciplines.items()}
    return {
        "test_per_discipline": staged.test_per_discipline,
        "seed": staged.seed,
        "threshold": int(NEAR_DUPLICATE_THRESHOLD),
        "removed": sum(removed.values()),
        "removed_by_discipline": [(k, v) for k, v in sorted(removed.items()) if v],
        "cross_removed": sum(cross.values()),
        "cross_removed_by_discipline": [(k, v) for k, v in sorted(cross.items()) if v],
    }


def _release_row(release: Release) -> dict[str, Any]:
    changed = release.disciplines_changed
    parts = []
    if changed:
        shown = ", ".join(f"`{c}`" for c in changed[:8])
        parts.append(shown + (f" and {len(changed) - 8} more" if len(changed) > 8 else ""))
    if release.disciplines_removed:
        parts.append("removed " + ", ".join(f"`{c}`" for c in release.disciplines_removed))
    if release.partial:
        parts.append("**partial** (see *Missing from this release*)" if release.missing else "**partial**")
    return {**release.model_dump(), "changed_text": "; ".join(parts) or "-"}


def _first_int(entry: dict[str, Any], *keys: str) -> int:
    for key in keys:
        value = entry.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, list):
            return len(value)
    return 0


def _num(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}" if not value.is_integer() else f"{int(value):,}"
    return str(value)


def _count(n: int, word: str) -> str:
    """``1 field``, ``2 fields``, ``1,000 records``."""
    return f"{_num(n)} {word}{'' if n == 1 else 's'}"


def _money(value: Any) -> str:
    return "n/a" if value is None else f"${float(value):,.2f}"


def _squeeze_blank_lines(text: str) -> str:
    """Collapse runs of blank lines the conditional template blocks leave behind."""
    out: list[str] = []
    for line in text.splitlines():
        if not line.strip() and out and not out[-1].strip():
            continue
        out.append(line.rstrip())
    return "\n".join(out).strip() + "\n"
