"""The YAML loader: a good file, an idempotent reload, versions, and every kind of bad file."""

import re

import pytest
from django.core.management import CommandError, call_command

from apps.ladders.models import (
    Competency,
    Deliverable,
    Expectation,
    Ladder,
    LadderVersion,
    Level,
    Skill,
    Statement,
)
from apps.ladders.schema import LadderFileError
from apps.ladders.services import ladder_load

pytestmark = pytest.mark.django_db

ALL_MODELS = (Ladder, LadderVersion, Level, Competency, Expectation, Deliverable, Statement, Skill)


def _counts() -> dict[str, int]:
    return {m.__name__: m.objects.count() for m in ALL_MODELS}


def test_good_file_loads_the_whole_tree(ladder_text):
    result = ladder_load(text=ladder_text, publish=True)

    assert result.outcome == "created"
    version = result.version
    assert (version.ladder.slug, version.number, version.status) == (
        "ai-ml-engineer",
        1,
        "published",
    )
    assert _counts() == {
        "Ladder": 1,
        "LadderVersion": 1,
        "Level": 5,
        "Competency": 3,
        "Expectation": 34,
        "Deliverable": 5,
        "Statement": 30,
        "Skill": 23,
    }
    assert list(version.levels.values_list("title", flat=True)) == [
        "AI/ML Engineer I",
        "AI/ML Engineer II",
        "AI/ML Engineer III",
        "AI/ML Engineer IV",
        "AI/ML Engineer V",
    ]
    te31 = version.expectations.get(code="TE-3.1")
    assert (te31.text, te31.level.number, te31.competency.name) == (
        "Designs and builds production-grade models",
        3,
        "Technical Expertise",
    )


def test_loading_the_same_file_twice_changes_nothing(ladder_text):
    first = ladder_load(text=ladder_text, publish=True).version
    before = _counts()
    ids = set(Expectation.objects.values_list("id", flat=True))

    again = ladder_load(text=ladder_text, publish=True)

    assert again.outcome == "unchanged"
    assert again.version.pk == first.pk
    assert _counts() == before
    assert set(Expectation.objects.values_list("id", flat=True)) == ids


def test_management_command_loads_and_publishes(ladder_text, tmp_path, capsys):
    path = tmp_path / "ladder.yaml"
    path.write_text(ladder_text, encoding="utf-8")

    call_command("load_ladder", str(path))
    assert LadderVersion.objects.get().status == "draft"
    call_command("load_ladder", str(path), "--publish")

    version = LadderVersion.objects.get()
    assert version.status == "published"
    assert version.published_at is not None
    assert "unchanged, published (published now); 34 expectations" in capsys.readouterr().out


def test_a_changed_file_becomes_a_new_version_and_keeps_the_old(ladder_text):
    v1 = ladder_load(text=ladder_text, publish=True).version
    changed = ladder_text.replace("Codes in Python/R", "Codes in Python or R")

    result = ladder_load(text=changed, publish=True)

    assert (result.outcome, result.version.number) == ("created", 2)
    assert v1.expectations.get(code="TE-1.2").text == "Codes in Python/R"
    assert result.version.expectations.get(code="TE-1.2").text == "Codes in Python or R"


def test_a_changed_file_replaces_an_unpublished_draft(ladder_text):
    ladder_load(text=ladder_text)
    changed = ladder_text.replace("Codes in Python/R", "Codes in Python or R")

    result = ladder_load(text=changed)

    assert (result.outcome, result.version.number) == ("replaced", 1)
    assert LadderVersion.objects.count() == 1
    assert Expectation.objects.get(code="TE-1.2").text == "Codes in Python or R"


def test_rerunning_the_demo_load_neither_adds_nor_republishes_a_version(
    ladder_text, tmp_path, capsys
):
    path = tmp_path / "ladder.yaml"
    path.write_text(ladder_text, encoding="utf-8")
    call_command("load_ladder", str(path), "--publish")
    first = LadderVersion.objects.get()
    capsys.readouterr()

    call_command("load_ladder", str(path), "--publish")

    again = LadderVersion.objects.get()
    assert (again.pk, again.published_at) == (first.pk, first.published_at)
    assert "v1: unchanged, published; 34 expectations" in capsys.readouterr().out


def test_the_published_file_again_beside_a_draft_is_unchanged(ladder_text):
    v1 = ladder_load(text=ladder_text, publish=True).version
    changed = ladder_text.replace("Codes in Python/R", "Codes in Python or R")
    draft = ladder_load(text=changed).version  # v2, a draft

    result = ladder_load(text=ladder_text, publish=True)

    assert (result.outcome, result.version.pk, result.published_now) == ("unchanged", v1.pk, False)
    assert list(LadderVersion.objects.order_by("number").values_list("number", "status")) == [
        (1, "published"),
        (2, "draft"),
    ]
    assert draft.expectations.get(code="TE-1.2").text == "Codes in Python or R"


def test_a_draft_edited_by_hand_is_not_unchanged_from_its_file(ladder_text):
    from apps.ladders.services import expectation_update

    draft = ladder_load(text=ladder_text).version
    expectation_update(expectation=draft.expectations.get(code="TE-1.2"), text="Hand edit")

    result = ladder_load(text=ladder_text, publish=True)

    assert result.outcome == "replaced"
    assert result.version.expectations.get(code="TE-1.2").text == "Codes in Python/R"


# Each case: how to break the good file, and the line/field/message the error must name.
MALFORMED = {
    "bad-yaml": (
        lambda t: t.replace('  - code: "TE-1.1"', '  - code: "TE-1.1\n   oops: [', 1),
        r"line \d+, column \d+: not valid YAML",
    ),
    "missing-field": (
        lambda t: t.replace('    title: "AI/ML Engineer III"\n', "", 1),
        r"line \d+: levels\[2\]\.title: Field required",
    ),
    "unknown-competency": (
        lambda t: t.replace("competency: PSI", "competency: XYZ", 1),
        r"line \d+: expectations\[19\]\.competency: unknown competency 'XYZ'",
    ),
    "duplicate-code": (
        lambda t: t.replace('code: "TE-1.2"', 'code: "TE-1.1"', 1),
        r"line \d+: expectations\[1\]\.code: duplicate code 'TE-1.1' "
        r"\(first at expectations\[0\]\)",
    ),
    "level-out-of-range": (
        lambda t: t.replace(
            'code: "TE-1.1"\n    competency: TE\n    level: 1',
            'code: "TE-7.1"\n    competency: TE\n    level: 7',
            1,
        ),
        r"line \d+: expectations\[0\]\.level: level 7 is out of range \(levels are 1–5\)",
    ),
    "deliverable-level-out-of-range": (
        lambda t: t.replace("deliverables:\n  - level: 1", "deliverables:\n  - level: 0", 1),
        r"deliverables\[0\]\.level: level 0 is out of range",
    ),
    "code-does-not-match-level": (
        lambda t: t.replace('code: "TE-1.1"', 'code: "TE-2.9"', 1),
        r"expectations\[0\]\.code: code 'TE-2\.9' does not match competency 'TE' and level 1",
    ),
    "unknown-field": (
        lambda t: t.replace("slug: ai-ml-engineer", "slug: ai-ml-engineer\ncolour: blue", 1),
        r"colour: Extra inputs are not permitted",
    ),
    "not-a-mapping": (lambda t: "- just\n- a list\n", r"expected a mapping at the top level"),
    "empty-text": (
        lambda t: t.replace('text: "Codes in Python/R"', 'text: "   "', 1),
        r"expectations\[1\]\.text: String should have at least 1 character",
    ),
}


@pytest.mark.parametrize("case", MALFORMED.keys())
def test_malformed_file_is_rejected_naming_the_place_and_writes_nothing(ladder_text, case):
    breaker, expected = MALFORMED[case]

    with pytest.raises(LadderFileError) as caught:
        ladder_load(text=breaker(ladder_text), publish=True)

    assert any(re.search(expected, p) for p in caught.value.problems), caught.value.problems
    assert _counts() == dict.fromkeys(_counts(), 0)


def test_malformed_file_leaves_an_existing_ladder_untouched(ladder_text):
    ladder_load(text=ladder_text, publish=True)
    before = _counts()

    with pytest.raises(LadderFileError):
        ladder_load(text=MALFORMED["duplicate-code"][0](ladder_text), publish=True)

    assert _counts() == before


def test_command_reports_every_problem_and_fails(ladder_text, tmp_path):
    broken = MALFORMED["unknown-competency"][0](MALFORMED["duplicate-code"][0](ladder_text))
    path = tmp_path / "broken.yaml"
    path.write_text(broken, encoding="utf-8")

    with pytest.raises(CommandError) as caught:
        call_command("load_ladder", str(path))

    message = str(caught.value)
    assert "nothing was loaded" in message
    assert "duplicate code 'TE-1.1'" in message
    assert "unknown competency 'XYZ'" in message


def test_command_names_a_missing_file():
    with pytest.raises(CommandError, match="no such file"):
        call_command("load_ladder", "/nonexistent/ladder.yaml")


def test_error_line_points_at_the_offending_entry(ladder_text):
    broken = ladder_text.replace("competency: PSI", "competency: XYZ", 1)

    with pytest.raises(LadderFileError) as caught:
        ladder_load(text=broken)

    line = int(re.match(r"line (\d+):", caught.value.problems[0]).group(1))
    assert broken.splitlines()[line - 1].strip() == "competency: XYZ"
