"""The default taxonomy, loading, validation with line numbers, selection and the show/validate CLI."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from glan_dataset.cli.taxonomy import taxonomy_app
from glan_dataset.taxonomy import (
    DEFAULT_TAXONOMY_PATH,
    Taxonomy,
    TaxonomyError,
    TaxonomyValidationError,
    UnknownConfigError,
    load_taxonomy,
    slugify,
    validate_taxonomy_file,
)

PAPER_TABLE_8 = """Advertising; Aerospace industry; Agriculture; American history; American politics; Anthropology;
Applied mathematics; Archaeology; Architecture and design; Astronomy; Automotive industry; Biblical studies; Biology;
Business; Chemical Engineering; Chemistry; Civil Engineering; Clinical laboratory sciences; Clinical neuropsychology;
Clinical physiology; Communication studies; Computer science; Cultural industry; Dance; Dentistry; Dermatology;
Divinity; Earth science; Economics; Education; Education industry; Electric power industry; Electrical Engineering;
Emergency medicine; Energy industry; Environmental studies and forestry; Epidemiology; European history; Fashion;
Film; Film industry; Fishing industry; Floral; Food industry; Foreign policy; Geography; Geriatrics; Gynaecology;
Healthcare industry; Hematology; History; Holistic medicine; Hospitality industry; Housing; Industrial robot industry;
Infectious disease; Insurance industry; Intensive care medicine; Internal medicine; Journalism;
Languages and literature; Law; Leisure industry; Library and museum studies;
Linguistics; Logic; Materials Science and Engineering; Mathematics;
Mechanical Engineering; Medical toxicology; Medicine; Military sciences; Mining; Music; Music industry; Nursing;
Nutrition; Obstetrics; Ophthalmology; Otolaryngology; Pathology; Pediatrics; Performing arts; Petroleum industry;
Pharmaceutical industry; Pharmaceutical sciences; Philosophy; Physics; Political science; Prehistory;
Preventive medicine; Psychiatry; Psychology; Public administration; Public health; Public policy;
Pulp and paper industry; Radiology; Real estate industry; Religious Studies; Retail industry; Semiconductor industry;
Sexology; Shipbuilding industry; Social work; Sociology; Steel industry; Surgery; Systems science;
Telecommunications industry; Television; Textile industry; Theatre; Theology; Tobacco industry; Transport industry;
Transportation; Urology; Veterinary medicine; Video game industry; Visual arts; Water industry; Wood industry"""
PAPER_NAMES = [name.strip() for name in PAPER_TABLE_8.replace("\n", " ").split(";")]
SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@pytest.fixture(scope="module")
def default() -> Taxonomy:
    return load_taxonomy()


def write(tmp_path: Path, text: str, name: str = "taxonomy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- the default file


def test_default_has_the_papers_shape(default: Taxonomy) -> None:
    assert len(PAPER_NAMES) == 123
    assert [f.name for f in default.fields] == [
        "Humanities",
        "Social Science",
        "Natural Science",
        "Applied Science",
        "Formal Science",
        "Manufacturing",
        "Services",
        "Agriculture",
    ]
    assert [f.group for f in default.fields] == ["academic"] * 5 + ["industry"] * 3
    names = [d.name for d in default.disciplines()]
    assert len(names) == 126
    assert set(PAPER_NAMES) <= set(names)
    added = [d for d in default.disciplines() if d.added]
    assert len(added) == 3
    assert {d.name for d in added} == set(names) - set(PAPER_NAMES)
    assert "Statistics" in {d.name for d in added}
    assert default.discipline("statistics").path == "formal-science/mathematics-and-statistics/statistics"


def test_default_slugs_are_unique_wellformed_and_not_all(default: Taxonomy) -> None:
    slugs = [node.slug for _, _, node in default.nodes()]
    assert len(slugs) == len(set(slugs)) == 8 + len(default.subfields()) + 126
    assert all(SLUG.match(slug) for slug in slugs)
    assert "all" not in slugs
    assert default.config_names()[0] == "all"
    assert len(default.config_names()) == len(slugs) + 1


# Disciplines per field implied by the paper's Table 6 (each field's share of GLAN-Test, 50 questions
# per discipline): the README states the same counts.
PAPER_FIELD_SHAPE = {
    "humanities": 20,
    "social-science": 10,
    "natural-science": 5,
    "applied-science": 53,
    "formal-science": 4,
    "manufacturing": 16,
    "services": 15,
    "agriculture-field": 3,
}


def test_default_fields_hold_the_papers_share_of_disciplines(default: Taxonomy) -> None:
    assert {f.slug: len(default.select(f.slug)) for f in default.fields} == PAPER_FIELD_SHAPE
    shares = {slug: round(100 * n / 126, 1) for slug, n in PAPER_FIELD_SHAPE.items()}
    assert list(shares.values()) == [15.9, 7.9, 4.0, 42.1, 3.2, 12.7, 11.9, 2.4]
    # re-homed disciplines keep their slugs (their data does not change)
    assert default.discipline("law").field_slug == "humanities"
    assert default.discipline("business").field_slug == "applied-science"
    assert default.discipline("applied-mathematics").field_slug == "applied-science"
    assert default.discipline("neuroscience").field_slug == "applied-science"
    assert default.discipline("food-industry").field_slug == "manufacturing"
    assert default.discipline("statistics").field_slug == "formal-science"


def test_readme_states_the_default_field_shape() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    line = next(line for line in readme.splitlines() if "Humanities 20" in line)
    for name, count in zip(
        [
            "Humanities",
            "Social Science",
            "Natural Science",
            "Applied Science",
            "Formal Science",
            "Manufacturing",
            "Services",
            "Agriculture",
        ],
        PAPER_FIELD_SHAPE.values(),
        strict=True,
    ):
        assert f"{name} {count}" in line


def test_name_reused_across_levels_gives_the_discipline_the_plain_slug(default: Taxonomy) -> None:
    assert default.config_kind("agriculture") == "discipline"
    assert default.config_kind("agriculture-field") == "field"
    assert [d.slug for d in default.select("agriculture-field")] == [
        "fishing-industry",
        "floral",
        "wood-industry",
    ]
    assert default.select("agriculture")[0].field_slug == "applied-science"


def test_default_is_verified_and_every_node_is_described(default: Taxonomy) -> None:
    assert default.status == "verified"
    assert all(node.status == "verified" for _, _, node in default.nodes())  # inherited from the root
    assert all(node.description and "\n" not in node.description for _, _, node in default.nodes())


def test_default_file_validates_clean_and_path_points_at_it(default: Taxonomy) -> None:
    assert validate_taxonomy_file(DEFAULT_TAXONOMY_PATH) == []
    assert load_taxonomy(DEFAULT_TAXONOMY_PATH) == default


def test_disciplines_know_their_parents(default: Taxonomy) -> None:
    physics = default.discipline("physics")
    assert (physics.field_slug, physics.field_name) == ("natural-science", "Natural Science")
    assert (physics.subfield_slug, physics.subfield_name) == ("physical-sciences", "Physical sciences")
    assert "field_slug" not in physics.model_dump()


# --------------------------------------------------------------------------- dumps and hashes


def test_yaml_round_trip_keeps_content_and_hash(default: Taxonomy, tmp_path: Path) -> None:
    target = tmp_path / "sub" / "copy.yaml"
    default.save(target)
    again = load_taxonomy(target)
    assert again == default
    assert again.content_hash() == default.content_hash()
    assert "status: verified" in target.read_text().split("fields:")[0]
    assert target.read_text().count("status:") == 1  # inherited statuses are not repeated
    assert [p.name for p in tmp_path.joinpath("sub").iterdir()] == ["copy.yaml"]  # no temp file left


def test_content_hash_ignores_formatting_but_not_content(tmp_path: Path) -> None:
    flow = write(
        tmp_path,
        """
        version: 1
        fields:
          - {name: A, slug: a, subfields: [{name: B, slug: b, disciplines: [{name: C, slug: c}]}]}
        """,
        "flow.yaml",
    )
    block = write(
        tmp_path,
        """
        # a comment
        version: 1
        fields:
          - name: A
            slug: a
            subfields:
              - name: B
                slug: b
                disciplines:
                  - name: C
                    slug: c
                    added: false
        """,
        "block.yaml",
    )
    changed = write(tmp_path, flow.read_text().replace("name: C", "name: D"), "changed.yaml")
    assert load_taxonomy(flow).content_hash() == load_taxonomy(block).content_hash()
    assert load_taxonomy(flow).content_hash() != load_taxonomy(changed).content_hash()


# --------------------------------------------------------------------------- selection


def test_select_by_each_kind(default: Taxonomy) -> None:
    assert len(default.select("all")) == 126
    assert default.config_kind("all") == "all"
    natural = default.select("natural-science")
    assert [d.slug for d in natural] == [
        "biology",
        "physics",
        "chemistry",
        "earth-science",
        "astronomy",
    ]
    assert default.config_kind("natural-science") == "field"
    assert [d.slug for d in default.select("physical-sciences")] == ["physics", "chemistry"]
    assert default.config_kind("physical-sciences") == "subfield"
    assert [d.slug for d in default.select("physics")] == ["physics"]
    assert default.config_kind("physics") == "discipline"


def test_select_accepts_a_display_name(default: Taxonomy) -> None:
    assert [d.slug for d in default.select("Computer science")] == ["computer-science"]


def test_unknown_config_suggests_closest_names(default: Taxonomy) -> None:
    with pytest.raises(UnknownConfigError) as caught:
        default.select("phisics")
    message = str(caught.value)
    assert message.startswith("unknown config 'phisics'; closest: physics, physical-sciences")
    assert "\n" not in message
    assert caught.value.suggestions[0] == "physics"
    assert isinstance(caught.value, TaxonomyError)
    with pytest.raises(UnknownConfigError, match="unknown discipline 'chemstry'; closest: chemistry"):
        default.discipline("chemstry")
    with pytest.raises(UnknownConfigError):
        default.discipline("natural-science")  # a field is not a discipline


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Computer science", "computer-science"),
        ("Materials Science & Engineering", "materials-science-and-engineering"),
        ("  Children's   literature ", "childrens-literature"),
        ("Économie", "economie"),
        ("High-technology manufacturing", "high-technology-manufacturing"),
    ],
)
def test_slugify(name: str, slug: str) -> None:
    assert slugify(name) == slug


def test_missing_slug_is_derived_from_the_name(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        fields:
          - name: Formal Science
            subfields:
              - name: Logic and computing
                disciplines:
                  - name: Computer science
        """,
    )
    taxonomy = load_taxonomy(path)
    assert taxonomy.config_names() == ["all", "formal-science", "logic-and-computing", "computer-science"]


# --------------------------------------------------------------------------- validation

BROKEN = """
version: 1
name: broken
fields:
  - name: Natural Science
    slug: natural-science
    colour: green
    subfields:
      - name: Physical sciences
        slug: physics
        status: approved
        disciplines:
          - {name: Physics, slug: physics}
          - {name: Chemistry, slug: Chem Istry}
          - {slug: nameless}
          - {name: Everything, slug: all}
      - name: Empty
        slug: empty
        disciplines: []
  - name: Lonely
    slug: lonely
"""


def test_validation_reports_every_issue_with_its_line(tmp_path: Path) -> None:
    issues = validate_taxonomy_file(write(tmp_path, BROKEN))
    by_line = {issue.line: issue.message for issue in issues}
    assert len(issues) == 8, [i.format() for i in issues]
    assert "unknown key 'colour'" in by_line[6] and "allowed keys: name, slug" in by_line[6]
    assert "bad status 'approved'" in by_line[10] and "proposed or verified" in by_line[10]
    assert "duplicate slug 'physics'" in by_line[12] and "line 9" in by_line[12]
    assert "bad slug 'Chem Istry'" in by_line[13] and "'chem-istry'" in by_line[13]
    assert "missing name" in by_line[14]
    assert "'all' is reserved" in by_line[15]
    assert "empty branch" in by_line[18] and "'Empty'" in by_line[18]
    assert "empty branch" in by_line[19] and "'Lonely'" in by_line[19] and "subfields" in by_line[19]


def test_issue_formats_as_file_line_message(tmp_path: Path) -> None:
    path = write(tmp_path, BROKEN)
    first = validate_taxonomy_file(path)[0]
    assert first.format(path) == f"{path}:6: {first.message}"


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        fields:
          - name: A
            slug: [a
          - name: B
        """,
    )
    [issue] = validate_taxonomy_file(path)
    assert issue.line is not None and 4 <= issue.line <= 5
    assert issue.message.startswith("YAML syntax error")


def test_duplicate_key_and_empty_file_are_issues(tmp_path: Path) -> None:
    [duplicate] = validate_taxonomy_file(write(tmp_path, "version: 1\nversion: 2\n", "dup.yaml"))
    assert duplicate.line == 2 and "duplicate key" in duplicate.message
    [empty] = validate_taxonomy_file(write(tmp_path, "", "empty.yaml"))
    assert "empty" in empty.message
    [no_fields] = validate_taxonomy_file(write(tmp_path, "version: 1\nname: x\n", "nofields.yaml"))
    assert "'fields'" in no_fields.message


def test_load_raises_one_line_summary_with_count(tmp_path: Path) -> None:
    path = write(tmp_path, BROKEN)
    with pytest.raises(TaxonomyValidationError) as caught:
        load_taxonomy(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:6: ")
    assert "and 7 more issues" in message
    assert len(caught.value.issues) == 8


def test_missing_file_is_a_taxonomy_error(tmp_path: Path) -> None:
    with pytest.raises(TaxonomyError, match="cannot read the taxonomy file .*nope.yaml"):
        load_taxonomy(tmp_path / "nope.yaml")


def test_models_refuse_invalid_trees() -> None:
    with pytest.raises(ValueError, match="duplicate slug 'x'"):
        Taxonomy.model_validate(
            {"fields": [{"name": "X", "subfields": [{"name": "Y", "disciplines": [{"name": "X"}]}]}]}
        )


# --------------------------------------------------------------------------- CLI


def test_cli_show_prints_tree_counts_and_total() -> None:
    result = CliRunner().invoke(taxonomy_app, ["show"])
    assert result.exit_code == 0, result.output
    assert "Natural Science [natural-science] 3 sub-fields, 5 disciplines" in result.stdout
    assert "total: 8 fields, 34 sub-fields, 126 disciplines" in result.stdout


def test_cli_show_config_limits_the_tree() -> None:
    result = CliRunner().invoke(taxonomy_app, ["show", "--config", "physical-sciences"])
    assert result.exit_code == 0
    assert "Physics [physics]" in result.stdout and "Biology" not in result.stdout
    assert "1 field, 1 sub-field, 2 disciplines" in result.stdout


def test_cli_unknown_config_is_one_red_line_exit_2() -> None:
    result = CliRunner().invoke(taxonomy_app, ["show", "--config", "phisics"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and result.stderr.startswith(
        "error: unknown config 'phisics'; closest: physics"
    )
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_cli_validate_ok_and_broken(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(taxonomy_app, ["validate", str(DEFAULT_TAXONOMY_PATH)])
    assert ok.exit_code == 0
    assert ok.stdout.strip() == "ok: 8 fields, 34 sub-fields, 126 disciplines"
    path = write(tmp_path, BROKEN)
    bad = runner.invoke(taxonomy_app, ["validate", str(path)])
    assert bad.exit_code == 2
    lines = bad.stdout.strip().splitlines()
    assert lines[0].startswith(f"{path}:6: ")
    assert sum(line.startswith(f"{path}:") for line in lines) == 8


def test_cli_missing_file_is_a_clean_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(taxonomy_app, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: cannot read the taxonomy file") and "nope.yaml" in result.stderr
    assert "Traceback" not in result.output
