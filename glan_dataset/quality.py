"""Quality gate at publish time: free rule checks on every pair, the judge's scores, and the filter.

The checks are pure functions of a question and its answer, so they run when publishing (on every
question-answer pair of a conversation) and always reflect the current rules at no cost. The judge's
scores come from ``RUN/judgements`` (the judge step, ``--judge-model``), joined on record id. Which
pairs are dropped (``--min-score``, ``--enforce-checks``) is decided here and never at generation
time, so a maintainer can change a threshold and publish again without a single new LLM call.

What a publish with a gate leaves in the run directory (``RUN/quality/``):

* ``checks.parquet``: one row per published candidate: ``id``, ``discipline``, a boolean column per
  check (true = passes) and ``score`` (null when not judged);
* ``removed.parquet``: the pairs left out, with ``reasons`` (e.g. ``check:refusal``, ``score 3 < 6``);
* ``report.json``: :class:`QualityReport`, which the dataset card shows.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from rapidfuzz import fuzz

from glan_dataset.errors import UsageError
from glan_dataset.rundir import RunDir, atomic_path, write_json_atomic

QUALITY_DIR = "quality"
SCORE_CHART_PATH = "assets/judge_scores.png"

RUBRIC: tuple[tuple[str, str], ...] = (
    ("correctness", "the answer is factually and logically right, and every step of a derivation holds"),
    ("helpfulness", "the answer addresses exactly what is asked, completely and clearly, as a good teacher would"),
    ("difficulty fit", "the question suits the course level (and combines both sessions when it should)"),
)
"""What the LLM judge (``glan_dataset.stages.judge``) scores against: rendered into ``prompts/judge.j2``
and shown in the dataset card. Kept here, below the stages, so publishing never imports a step."""

# ------------------------------------------------------------------ the rule checks
MIN_ANSWER_WORDS = 5
"""Fewer words than this is a near-empty answer ("Yes.", "See above.", "N/A")."""

RESTATE_RATIO = 80.0
"""An answer this similar to its question (rapidfuzz ratio of the normalised texts) only restates it."""
RESTATE_OVERLAP = 0.8
"""An answer no longer than 1.5 questions whose words are this much the question's only paraphrases it."""
LEAK_TAIL_WORDS = 8
"""The answer's last words (where its result is) found verbatim in the question give the answer away."""

_WORDS = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
_LETTER_WORDS = re.compile(r"[^\W\d_]+", re.UNICODE)
_REFUSAL = re.compile(
    r"\b(?:i['’]?m|i\s+am)\s+(?:sorry|afraid)\b[^.!?\n]{0,60}?\b(?:can(?:no|['’])?t|unable|not\s+able|won['’]t)\b"
    r"|\bi\s+(?:can(?:no|['’])?t|am\s+(?:unable|not\s+able)\s+to|['’]m\s+(?:unable|not\s+able)\s+to|won['’]t|will\s+not)"
    r"\s+(?:help|assist|provide|answer|comply|fulfil|complete|do\s+that|give|respond)",
    re.IGNORECASE,
)
_BOILERPLATE = re.compile(
    r"\bas\s+an?\s+(?:ai|a\.i\.|artificial\s+intelligence)\b|\bas\s+a\s+(?:large\s+)?language\s+model\b"
    r"|\bi\s+(?:do\s+not|don['’]t)\s+have\s+(?:personal\s+)?(?:opinions|feelings|beliefs|access\s+to\s+real[- ]time)",
    re.IGNORECASE,
)
_LEAK = re.compile(
    r"(?:^|[\s(\[])(?:answer|solution|correct\s+answer|answer\s+key)\s*[:=]|\bthe\s+(?:correct\s+)?answer\s+is\b",
    re.IGNORECASE,
)
_LIST_ITEM = re.compile(r"^(?:[-*+•]|\d+[.)])\s")
_COMPLETE_END = set(".!?)]}\"'”’*`$>|")
_DANGLING_END = set(",;:-–—(/&+=")

# Frequent function words: English (the prompts' language) against French, German, Spanish, Italian and
# Portuguese. Words shared with English ("a", "in", "per", "die", "con", "et al.") are left out.
_ENGLISH = frozenset(
    "the of and to is that for it as with are this be by on an which we from at or its can not have has was these "
    "their if when so than into each also how what because there been were would will should".split()
)
_FOREIGN = frozenset(
    "le les des est une du dans que pour qui sur pas nous vous sont avec cette der das und ist nicht ein eine "
    "mit zu von dem wird sich auch de la un en y el los las del es por una para como pero más qué cuál se lo "
    "il che della sono questo uma "
    "não em os ao pelo".split()
)
MIN_LANGUAGE_WORDS = 8
"""Shorter texts give too little evidence to call their language."""
NON_LATIN_SHARE = 0.2
"""Above this share of letters (in words of 3+ letters, so Greek symbols like Δ or ω do not count) in
another script, a text is not English."""


def _normal(text: str) -> str:
    return " ".join(_WORDS.findall(text.lower()))


def _words(text: str) -> list[str]:
    return _WORDS.findall(text.lower())


def not_empty(question: str, answer: str) -> bool:
    """At least :data:`MIN_ANSWER_WORDS` words (a one-word or "See above." reply is no answer)."""
    return len(_words(answer)) >= MIN_ANSWER_WORDS


def not_restated(question: str, answer: str) -> bool:
    """The answer says more than the question: not nearly the same text, nor only its words."""
    q, a = _normal(question), _normal(answer)
    if not a:
        return True  # empty is the other check's verdict
    if fuzz.ratio(q, a) >= RESTATE_RATIO:
        return False
    words, known = a.split(), set(q.split())
    overlap = sum(word in known for word in words) / len(words)
    return not (len(words) <= 1.5 * len(q.split()) and overlap >= RESTATE_OVERLAP)


def no_refusal(question: str, answer: str) -> bool:
    """No refusal in the opening ("I'm sorry, but I can't help...") and no "as an AI" boilerplate anywhere."""
    return _REFUSAL.search(answer[:400]) is None and _BOILERPLATE.search(answer) is None


def not_truncated(question: str, answer: str) -> bool:
    """The answer ends where a text ends: no open code block, and its last line (prose) ends with closing
    punctuation, a formula or a closing bracket; a list item, table row or heading may end bare but not
    on a dangling comma, colon or hyphen."""
    text = answer.rstrip()
    if not text:
        return True
    if text.count("```") % 2 or text.count("$$") % 2:
        return False
    last_line = text.splitlines()[-1].strip()
    if last_line[-1] in _DANGLING_END:
        return False
    if _LIST_ITEM.match(last_line) or last_line.startswith(("#", "|")):
        return True
    return last_line[-1] in _COMPLETE_END or last_line.endswith(("\\]", "\\)"))


def no_leak(question: str, answer: str) -> bool:
    """The question does not give its answer away: no "Answer:" / "the answer is" in it, and the answer's
    last :data:`LEAK_TAIL_WORDS` words (where its result is) are not already in the question."""
    if _LEAK.search(question):
        return False
    tail = _words(answer)[-LEAK_TAIL_WORDS:]
    return len(tail) < LEAK_TAIL_WORDS or f" {' '.join(tail)} " not in f" {_normal(question)} "


def is_english(text: str) -> bool:
    """English, by two cheap signals (no language model is installed; the prompts ask in English): the
    share of letters in a non-Latin script, and English against other European function words."""
    words = [w for w in _LETTER_WORDS.findall(text) if len(w) >= 3]
    letters = sum(len(w) for w in words)
    if letters:
        foreign_script = sum(len(w) for w in words if not all(_latin(c) for c in w))
        if foreign_script / letters > NON_LATIN_SHARE:
            return False
    tokens = _words(text)
    if len(tokens) < MIN_LANGUAGE_WORDS:
        return True
    english = sum(token in _ENGLISH for token in tokens)
    foreign = sum(token in _FOREIGN for token in tokens)
    return not (foreign >= 3 and foreign > english)


def _latin(char: str) -> bool:
    return ord(char) < 0x250 or 0x1E00 <= ord(char) <= 0x1EFF


def english(question: str, answer: str) -> bool:
    """Question and answer are in English (the language of the prompts and of the card)."""
    return is_english(question) and is_english(answer)


CHECKS: dict[str, Callable[[str, str], bool]] = {
    "empty": not_empty,
    "restates_question": not_restated,
    "refusal": no_refusal,
    "truncated": not_truncated,
    "leaks_answer": no_leak,
    "language": english,
}
"""Each rule check by name: ``check(question, answer)`` is true when the pair passes."""

CHECK_DESCRIPTIONS: dict[str, str] = {
    "empty": f"the answer has at least {MIN_ANSWER_WORDS} words",
    "restates_question": "the answer is not a restatement of the question",
    "refusal": 'no refusal and no "as an AI" boilerplate',
    "truncated": "the answer is not cut off mid-sentence or inside a code block",
    "leaks_answer": "the question does not contain its own answer",
    "language": "question and answer are in English",
}


def check_pairs(messages: Sequence[dict[str, Any]]) -> dict[str, bool]:
    """Every check over every (question, answer) pair of a conversation: a check passes if all pairs pass."""
    pairs = [
        (str(user["content"]), str(assistant["content"]))
        for user, assistant in zip(messages[::2], messages[1::2], strict=False)
        if user["role"] == "user" and assistant["role"] == "assistant"
    ]
    return {name: all(check(q, a) for q, a in pairs) for name, check in CHECKS.items()}


# ------------------------------------------------------------------ the gate
class QualityGate(BaseModel):
    """What publishing removes: pairs scored below ``min_score`` by the judge, and pairs failing one of the
    ``enforce`` checks (``all`` = every check)."""

    model_config = ConfigDict(frozen=True)

    min_score: float | None = Field(None, ge=1, le=10)
    enforce: tuple[str, ...] = ()

    @field_validator("enforce", mode="before")
    @classmethod
    def _known(cls, value: Any) -> tuple[str, ...]:
        names = [n.strip() for n in (value.split(",") if isinstance(value, str) else value) if n.strip()]
        if "all" in names:
            return tuple(CHECKS)
        unknown = [n for n in names if n not in CHECKS]
        if unknown:
            raise ValueError(f"unknown check(s) {', '.join(unknown)}; choose from all, {', '.join(CHECKS)}")
        return tuple(dict.fromkeys(names))


def quality_gate(min_score: float | None = None, enforce: Sequence[str] | str = ()) -> QualityGate:
    """The gate from ``--min-score`` and ``--enforce-checks`` (a bad value is one line, exit 2)."""
    try:
        return QualityGate(min_score=min_score, enforce=enforce)  # type: ignore[arg-type]  # validator splits a string
    except ValidationError as error:
        first = error.errors()[0]
        flag = "--min-score" if first["loc"] and first["loc"][0] == "min_score" else "--enforce-checks"
        raise UsageError(f"{flag}: {first['msg'].removeprefix('Value error, ')}") from None


class QualityReport(BaseModel):
    """``RUN/quality/report.json``: what the gate saw and did (the card's quality section)."""

    records_in: int
    records_out: int
    removed: int
    min_score: float | None
    enforced: list[str]
    pass_rates: dict[str, float]  # check -> share of candidates passing it
    removed_by: dict[str, int]  # reason kind (check:<name>, score, unscored) -> records
    judge_models: list[str]
    scores: dict[int, int]  # 1..10 -> records with that score
    unscored: int
    rubric: list[tuple[str, str]]
    checks: dict[str, str] = Field(default_factory=lambda: dict(CHECK_DESCRIPTIONS))


@dataclass(frozen=True)
class GatedRecords:
    """What publishing reads: the records that pass (a folder like ``RUN/clean``), and the report."""

    clean_dir: Path
    report: QualityReport | None


def _judgements(run: RunDir, discipline: str) -> pl.DataFrame:
    path = run.stage_file("judgements", discipline)
    if not path.exists():
        return pl.DataFrame(
            schema={"id": pl.String, "score": pl.Int64, "rationale": pl.String, "judge_model": pl.String}
        )
    return pl.read_parquet(path, columns=["id", "score", "rationale", "judge_model"])


def has_judgements(run: RunDir) -> bool:
    return any(run.stage_dir("judgements").glob("*.parquet"))


@contextmanager
def gated_records(run: RunDir, gate: QualityGate, *, prefix: str = ".quality-") -> Iterator[GatedRecords]:
    """The clean records that pass ``gate``, in a temporary folder ``RUN/<prefix>*`` (removed on exit).

    Without a threshold, a check to enforce or judge scores, this is ``RUN/clean`` itself and no report.
    Otherwise it also writes ``RUN/quality/`` (checks, removed pairs and why, report)."""
    judged = has_judgements(run)
    if gate.min_score is None and not gate.enforce and not judged:
        yield GatedRecords(run.clean_dir, None)
        return
    if gate.min_score is not None and not judged:
        raise UsageError(
            f"--min-score needs judge scores and {run.stage_dir('judgements')} has none: "
            "run `glan generate` again with the same flags plus --judge-model MODEL, then publish"
        )
    quality_dir = run.root / QUALITY_DIR
    quality_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=run.root))
    try:
        checks_frames: list[pl.DataFrame] = []
        removed_frames: list[pl.DataFrame] = []
        for path in sorted(run.clean_dir.glob("*.parquet")):
            frame = pl.read_parquet(path)
            verdicts, removed, kept = _gate_discipline(path.stem, frame, _judgements(run, path.stem), gate)
            checks_frames.append(verdicts)
            removed_frames.append(removed)
            kept.write_parquet(tmp / path.name)
        checks = pl.concat(checks_frames, how="vertical") if checks_frames else pl.DataFrame()
        removed = pl.concat(removed_frames, how="vertical") if removed_frames else pl.DataFrame()
        report = _report(checks, removed, gate, [list(pair) for pair in RUBRIC], run)
        for name, data in (("checks.parquet", checks), ("removed.parquet", removed)):
            with atomic_path(quality_dir / name) as target:
                data.write_parquet(target)
        write_json_atomic(quality_dir / "report.json", report.model_dump(mode="json"))
        yield GatedRecords(tmp, report)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _gate_discipline(
    discipline: str, frame: pl.DataFrame, judgements: pl.DataFrame, gate: QualityGate
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(check verdicts with scores, removed rows with reasons, kept rows) of one discipline's clean records."""
    verdict_rows = [check_pairs(messages) for messages in frame["messages"].to_list()]
    verdicts = pl.DataFrame(
        {"id": frame["id"], "discipline": [discipline] * frame.height}
        | {name: [row[name] for row in verdict_rows] for name in CHECKS},
        schema={"id": pl.String, "discipline": pl.String} | dict.fromkeys(CHECKS, pl.Boolean),
    )
    verdicts = verdicts.join(judgements.select("id", "score", "rationale"), on="id", how="left")
    reasons: list[list[str]] = []
    for row, score in zip(verdict_rows, verdicts["score"].to_list(), strict=True):
        why = [f"check:{name}" for name in gate.enforce if not row[name]]
        if gate.min_score is not None:
            if score is None:
                why.append("unscored")
            elif score < gate.min_score:
                why.append(f"score {score} < {gate.min_score:g}")
        reasons.append(why)
    dropped = pl.Series("reasons", reasons, dtype=pl.List(pl.String))
    mask = dropped.list.len() > 0
    removed = pl.DataFrame(
        {
            "id": frame["id"],
            "discipline": verdicts["discipline"],
            "question": frame["question"],
            "answer": frame["answer"],
            "score": verdicts["score"],
            "rationale": verdicts["rationale"],
            "reasons": dropped,
        }
    ).filter(mask)
    return verdicts.drop("rationale"), removed, frame.filter(~mask)


def _report(
    checks: pl.DataFrame, removed: pl.DataFrame, gate: QualityGate, rubric: list[list[str]], run: RunDir
) -> QualityReport:
    total = checks.height
    scores = checks["score"].drop_nulls().to_list() if total else []
    kinds: Counter[str] = Counter()
    for reasons in removed["reasons"].to_list() if removed.height else []:
        kinds.update({reason.split(" ", 1)[0] for reason in reasons})
    models: set[str] = set()
    for path in run.stage_dir("judgements").glob("*.parquet"):
        models.update(pl.read_parquet(path, columns=["judge_model"])["judge_model"].unique().to_list())
    return QualityReport(
        records_in=total,
        records_out=total - removed.height,
        removed=removed.height,
        min_score=gate.min_score,
        enforced=list(gate.enforce),
        pass_rates={name: (float(checks[name].mean() or 0.0) if total else 1.0) for name in CHECKS},
        removed_by=dict(sorted(kinds.items())),
        judge_models=sorted(models),
        scores={score: count for score, count in sorted(Counter(scores).items())},
        unscored=total - len(scores),
        rubric=[(name, description) for name, description in rubric],
    )


def render_score_histogram(report: QualityReport, path: Path, *, min_score: float | None = None) -> None:
    """Bars of the judge's scores 1-10 (a dashed line at ``min_score``), like the records-per-field chart:
    Agg backend, no "Software" PNG chunk, so the same counts give the same bytes."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    xs = list(range(1, 11))
    counts = [report.scores.get(x, 0) for x in xs]
    with matplotlib.rc_context({"font.size": 10}):
        fig, ax = plt.subplots(figsize=(7, 3.2), dpi=100)
        try:
            colors = ["#C44E52" if min_score is not None and x < min_score else "#4C72B0" for x in xs]
            ax.bar(xs, counts, color=colors)
            if min_score is not None:
                ax.axvline(min_score - 0.5, color="#333333", linestyle="--", linewidth=1)
            ax.set_xticks(xs)
            ax.set_xlabel("judge score")
            ax.set_ylabel("pairs")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
            ax.set_title("Judge scores" + (f" (kept: {min_score:g} and above)" if min_score is not None else ""))
            ax.spines[["top", "right"]].set_visible(False)
            fig.tight_layout()
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, format="png", metadata={"Software": None})
        finally:
            plt.close(fig)


def card_section(report: QualityReport) -> dict[str, Any]:
    """What the card's quality section (``dataset_card/_quality.md.j2``) shows."""
    return {
        **report.model_dump(mode="json"),
        "chart": SCORE_CHART_PATH if report.scores else None,
        "check_rows": [
            {
                "name": name,
                "description": CHECK_DESCRIPTIONS[name],
                "pass_rate": report.pass_rates.get(name, 1.0),
                "enforced": name in report.enforced,
            }
            for name in CHECKS
        ],  # fmt: skip
        "mean_score": (
            sum(score * count for score, count in report.scores.items()) / sum(report.scores.values())
            if report.scores
            else None
        ),
    }
