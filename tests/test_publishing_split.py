"""GLAN-Test split: stable by seed, capped at half a discipline, near duplicates of any test question out of train."""

from __future__ import annotations

import random
from pathlib import Path

import polars as pl

from glan_dataset.publishing.split import (
    LSH_BANDS,
    LSH_CHUNK,
    NEAR_DUPLICATE_THRESHOLD,
    HeldOutIndex,
    held_out_ids,
    holdout_size,
    iter_clean_splits,
    lsh_band_keys,
    sorted_words,
    split_discipline,
)
from glan_dataset.records import record_polars_schema
from glan_dataset.text import normalize
from tests.publishing_support import make_records


def frame(rows):
    return pl.DataFrame(rows, schema=record_polars_schema())


def test_split_is_deterministic_and_independent_of_row_order():
    rows = make_records("physics", 40)
    a = split_discipline(frame(rows), test_per_discipline=5, seed=3)
    b = split_discipline(frame(list(reversed(rows))), test_per_discipline=5, seed=3)
    assert a.test.equals(b.test) and a.train.equals(b.train)
    assert a.test.height == 5 and a.train.height == 35
    assert set(a.test["id"]).isdisjoint(a.train["id"])
    assert a.test["id"].to_list() == sorted(a.test["id"].to_list())


def test_seed_changes_the_test_set():
    rows = make_records("physics", 40)
    ids = {seed: set(split_discipline(frame(rows), test_per_discipline=5, seed=seed).test["id"]) for seed in (0, 1)}
    assert ids[0] != ids[1]


def test_test_set_stays_mostly_stable_when_the_discipline_grows():
    small = split_discipline(frame(make_records("physics", 40)), test_per_discipline=5, seed=0)
    big = split_discipline(frame(make_records("physics", 80)), test_per_discipline=5, seed=0)
    # a record keeps its place unless one of the 40 new ones ranks before it
    assert len(set(small.test["id"]) & set(big.test["id"])) >= 1


def test_holdout_never_takes_more_than_half():
    assert holdout_size(6, 50) == 3
    assert holdout_size(1, 50) == 0
    assert holdout_size(1000, 50) == 50
    split = split_discipline(frame(make_records("physics", 7)), test_per_discipline=50, seed=0)
    assert (split.train.height, split.test.height) == (4, 3)


def test_near_duplicates_of_test_questions_leave_train():
    rows = make_records("physics", 30)
    first = split_discipline(frame(rows), test_per_discipline=3, seed=0)
    test_q = first.test["question"][0]
    # a reworded copy: same words in another order, other case and punctuation
    words = normalize(test_q).split()
    copy = dict(rows[0], id="copy0001", question=" ".join(reversed(words)).upper() + "!!")
    copy["messages"] = [{"role": "user", "content": copy["question"]}, {"role": "assistant", "content": "x"}]
    split = split_discipline(frame([*rows, copy]), test_per_discipline=3, seed=0)
    assert split.test.equals(first.test)  # the copy ranks after the held-out ids for seed 0
    assert "copy0001" not in split.train["id"].to_list()
    assert split.near_duplicates_removed == 1
    assert split.train.height == first.train.height


def test_questions_are_compared_after_the_shared_normalization():
    assert normalize("  What IS  the Energy, of a photon?? ") == "what is the energy of a photon"


# ---------------------------------------------------------------- across disciplines

CALCULUS = "A particle moves along a line with position x(t) = 3t^2 - 2t + 1 metres. Using derivatives, find its velocity and acceleration at t = 2 s."


def records(discipline: str, n: int, salt: str = "") -> list[dict]:
    """``n`` records of ``discipline`` (physics word salads re-homed: the split only reads ids and questions)."""
    places = {
        "physics": ("natural-science", "physical-sciences"),
        "mathematics": ("formal-science", "mathematics-and-statistics"),
    }
    field, subfield = places[discipline]
    rows = []
    for row in make_records("physics", n, salt=salt + discipline):
        rows.append(dict(row, id=discipline[:4] + row["id"], discipline=discipline, field=field, subfield=subfield))
    return rows


def with_question(row: dict, question: str, new_id: str | None = None) -> dict:
    row = dict(row, question=question, id=new_id or row["id"])
    row["messages"] = [{"role": "user", "content": question}, {"role": "assistant", "content": row["answer"]}]
    return row


def write(clean: Path, discipline: str, rows: list[dict]) -> None:
    clean.mkdir(parents=True, exist_ok=True)
    frame(rows).write_parquet(clean / f"{discipline}.parquet")


def calculus_run(clean: Path, maths_question: str) -> None:
    """Physics holds the calculus question out (test); mathematics has ``maths_question`` in train."""
    physics = records("physics", 20)
    held = held_out_ids([r["id"] for r in physics], test_per_discipline=3, seed=0)
    physics = [with_question(r, CALCULUS) if r["id"] == min(held) else r for r in physics]
    maths = records("mathematics", 20)
    maths.append(with_question(maths[0], maths_question, new_id="zzzz-copy"))  # ranks after the held-out ids
    write(clean, "physics", physics)
    write(clean, "mathematics", maths)


def test_a_train_question_copying_another_disciplines_test_question_leaves_train(tmp_path):
    clean = tmp_path / "clean"
    # the same calculus question, re-typed: other case and punctuation, "metres" -> "meters"
    calculus_run(clean, CALCULUS.upper().replace("METRES", "METERS").replace(",", "") + "??")
    splits = {s.discipline: s for s in iter_clean_splits(clean, test_per_discipline=3, seed=0)}
    assert CALCULUS in splits["physics"].test["question"].to_list()
    maths = splits["mathematics"]
    assert "zzzz-copy" not in maths.train["id"].to_list()
    assert "zzzz-copy" not in maths.test["id"].to_list()
    assert (maths.cross_discipline_removed, maths.removed_for) == (1, (("physics", 1),))
    assert maths.near_duplicates_removed == 0
    assert splits["physics"].cross_discipline_removed == 0
    # the index covers every clean file even when only one discipline is split
    only = list(iter_clean_splits(clean, disciplines=["mathematics"], test_per_discipline=3, seed=0))
    assert [s.cross_discipline_removed for s in only] == [1]


def test_a_different_question_on_the_same_subject_stays(tmp_path):
    clean = tmp_path / "clean"
    calculus_run(clean, "Find the area under y = 3x^2 - 2x + 1 between x = 0 and x = 2 using definite integrals.")
    maths = {s.discipline: s for s in iter_clean_splits(clean, test_per_discipline=3, seed=0)}["mathematics"]
    assert "zzzz-copy" in maths.train["id"].to_list()
    assert maths.cross_discipline_removed == 0


def test_lsh_finds_what_an_exhaustive_comparison_finds():
    from rapidfuzz import fuzz, process

    rng = random.Random(5)
    vocab = [f"term{i}" for i in range(400)] + "the of a and to in is what how why find explain".split()
    tests = [" ".join(rng.choice(vocab) for _ in range(rng.randint(8, 60))) for _ in range(300)]
    train = []
    for q in tests[:150]:  # near copies: a word or two changed, dropped or moved
        words = q.split()
        for _ in range(rng.randint(0, 2)):
            words[rng.randrange(len(words))] = rng.choice(vocab)
        if rng.random() < 0.3:
            words.append(words.pop(0))
        train.append(" ".join(words))
    train += [" ".join(rng.choice(vocab) for _ in range(rng.randint(8, 60))) for _ in range(300)]
    index = HeldOutIndex.build([("physics", f"t{i}", q) for i, q in enumerate(tests)])
    found = index.near_duplicates("mathematics", [normalize(q) for q in train])
    scores = process.cdist(train, tests, scorer=fuzz.token_sort_ratio, dtype="float32", workers=1)
    exhaustive = {i for i, best in enumerate(scores.max(axis=1).tolist()) if best >= NEAR_DUPLICATE_THRESHOLD}
    assert len(exhaustive) >= 100
    missed = exhaustive - set(found)
    assert len(missed) <= len(exhaustive) // 50, missed  # recall >= 98%
    assert set(found) <= exhaustive  # every removal is confirmed by the score
    assert index.near_duplicates("physics", [normalize(q) for q in train]) == {}  # own discipline: exhaustive elsewhere


def test_the_card_counts_removals_per_discipline_and_in_total(tmp_path):
    from glan_dataset.publishing.card import CardInputs, render_card
    from glan_dataset.publishing.layout import write_layout
    from glan_dataset.taxonomy import DEFAULT_TAXONOMY_PATH

    clean = tmp_path / "clean"
    calculus_run(clean, CALCULUS.replace("metres", "meters"))
    splits = iter_clean_splits(clean, test_per_discipline=3, seed=0)
    staged = write_layout(splits, tmp_path / "s", taxonomy_path=DEFAULT_TAXONOMY_PATH, test_per_discipline=3, seed=0)
    assert staged.disciplines["mathematics"].cross_discipline_removed == 1
    card = render_card(CardInputs(staged=staged, run={}, decontamination=None, releases=[], dataset_id="org/glan"))
    assert "a test question of the same discipline: **0** removed;" in card
    assert "a test question of another discipline: **1** removed (`mathematics`: 1)." in card


def test_sorted_words_ratio_is_token_sort_ratio():
    from rapidfuzz import fuzz

    rng = random.Random(1)
    vocab = "the of a energy photon derivative velocity 2 3t find explain why".split()
    for _ in range(2000):
        a, b = (normalize(" ".join(rng.choice(vocab) for _ in range(rng.randint(0, 15)))) for _ in range(2))
        assert fuzz.ratio(sorted_words(a), sorted_words(b)) == fuzz.token_sort_ratio(a, b)


def test_lsh_keys_of_a_question_do_not_depend_on_its_batch():
    questions = [f"question {i} about energy and photon number {i % 97}" for i in range(LSH_CHUNK + 10)]
    keys = lsh_band_keys(questions)
    assert keys.shape == (len(questions), LSH_BANDS)
    for i in (0, LSH_CHUNK - 1, LSH_CHUNK, LSH_CHUNK + 9):
        assert (keys[i] == lsh_band_keys([questions[i]])[0]).all()
    assert lsh_band_keys(["b a c"]).tolist() == lsh_band_keys(["a c b"]).tolist()  # word sets: order-free
