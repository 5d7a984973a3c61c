"""Publishing a new ladder version carries evidence links forward by code (issue 13.1).

Version 2 (tests/fixtures/ladders/ai-ml-engineer-v2.yaml) rewords TE-3.2, removes TE-3.3
and adds TE-3.4 against the seed's version 1."""

from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from apps.evidence.models import EvidenceLink
from apps.evidence.selectors import evidence_coverage
from apps.evidence.services import LinkSpec, evidence_link_confirm, evidence_update
from apps.ladders.models import Expectation, Ladder, LadderVersion
from apps.ladders.schema import LadderFileError
from apps.ladders.services import ladder_load, ladder_load_file
from tests.conftest import LADDER_FILE
from tests.factories import EvidenceFactory

pytestmark = pytest.mark.django_db

V2_FILE = Path(__file__).resolve().parent.parent / "fixtures" / "ladders" / "ai-ml-engineer-v2.yaml"


def publish_v2() -> LadderVersion:
    return ladder_load_file(path=V2_FILE, publish=True).version


def links_of(evidence):
    return {
        lk.expectation.code: lk
        for lk in EvidenceLink.objects.filter(evidence=evidence).select_related(
            "expectation__version", "made_against__version"
        )
    }


def test_publish_maps_links_by_code_and_flags_removed_and_reworded(ladder_version, engineer):
    kept = EvidenceFactory(person=engineer, links=[LinkSpec(expectation="TE-3.1")])
    reworded = EvidenceFactory(person=engineer, links=[LinkSpec(expectation="TE-3.2")])
    gone = EvidenceFactory(person=engineer, links=[LinkSpec(expectation="TE-3.3")])
    v1 = {e.code: e for e in ladder_version.expectations.all()}

    v2 = publish_v2()
    assert v2.number == 2 and v2.is_published

    link = links_of(kept)["TE-3.1"]
    assert link.expectation.version == v2
    assert link.made_against == v1["TE-3.1"]
    assert link.ladder_change == ""

    link = links_of(reworded)["TE-3.2"]
    assert link.expectation.version == v2
    assert link.expectation.text == "Runs models through MLflow, Airflow and CI/CD pipelines"
    assert link.made_against == v1["TE-3.2"]
    assert link.made_against.text == "Uses MLflow, Airflow, CI/CD tools"
    assert link.ladder_change == "reworded"

    link = links_of(gone)["TE-3.3"]
    assert link.expectation == v1["TE-3.3"]  # nowhere to go: it stays, flagged
    assert link.made_against == v1["TE-3.3"]
    assert link.ladder_change == "removed"


def test_coverage_after_publish_counts_carried_links(ladder_version, engineer):
    EvidenceFactory(person=engineer, links=[LinkSpec(expectation="TE-3.1")])
    EvidenceFactory(person=engineer, links=[LinkSpec(expectation="TE-3.2")])
    EvidenceFactory(person=engineer, links=[LinkSpec(expectation="TE-3.3")])
    before = evidence_coverage(person=engineer)
    assert {i.expectation.code for i in before.items if i.covered} == {"TE-3.1", "TE-3.2", "TE-3.3"}

    publish_v2()
    after = evidence_coverage(person=engineer)
    covered = {i.expectation.code for i in after.items if i.covered}
    assert covered == {"TE-3.1", "TE-3.2"}  # carried; TE-3.3 is gone, TE-3.4 is a gap
    assert "TE-3.4" in {i.expectation.code for i in after.items if not i.covered}
    assert all(i.expectation.version.number == 2 for i in after.items)


def test_a_third_version_keeps_what_the_link_was_first_made_against(ladder_version, engineer):
    ev = EvidenceFactory(person=engineer, links=[LinkSpec(expectation="TE-3.2")])
    publish_v2()
    # v3: v2's text with one more expectation; TE-3.2 still reads as in v2
    text = V2_FILE.read_text().replace(
        '  - code: "TE-3.4"',
        '  - code: "TE-3.5"\n    competency: TE\n    level: 3\n'
        '    text: "Mentors on evaluation"\n  - code: "TE-3.4"',
    )
    v3 = ladder_load(text=text, publish=True).version
    link = links_of(ev)["TE-3.2"]
    assert link.expectation.version == v3
    assert link.made_against.version.number == 1
    assert link.ladder_change == "reworded"  # still unlike what it was made against


def test_editing_an_item_keeps_its_carried_links_and_confirm_clears_a_flag(
    ladder_version, engineer
):
    ev = EvidenceFactory(person=engineer, links=[LinkSpec(expectation="TE-3.2")])
    publish_v2()
    # re-sending the same codes (the API's round trip) keeps the rows and their flags
    evidence_update(
        evidence=ev,
        actor=engineer.user,
        title="Renamed",
        links=[LinkSpec(expectation="TE-3.2"), LinkSpec(expectation="TE-3.1")],
    )
    links = links_of(ev)
    assert links["TE-3.2"].ladder_change == "reworded"
    assert links["TE-3.2"].made_against.version.number == 1
    assert links["TE-3.1"].made_against is None  # made now, against its own expectation

    evidence_link_confirm(evidence=ev, actor=engineer.user, code="TE-3.2")
    link = links_of(ev)["TE-3.2"]
    assert link.ladder_change == ""
    assert link.made_against == link.expectation


def test_reloading_a_file_that_moves_a_code_to_another_competency_is_refused(ladder_version):
    text = LADDER_FILE.read_text().replace(
        '  - code: TE\n    name: "Technical Expertise"', '  - code: TE\n    name: "Team Empathy"'
    )
    with pytest.raises(LadderFileError) as caught:
        ladder_load(text=text, publish=True)
    line = text.splitlines().index('  - code: "TE-1.1"') + 1
    assert caught.value.problems[0].startswith(f"line {line}: expectations[0].code: ")
    assert "'Technical Expertise'" in caught.value.problems[0]
    assert "'Team Empathy'" in caught.value.problems[0]
    # nothing written
    assert LadderVersion.objects.count() == 1
    assert Ladder.objects.get().versions.get().number == 1
    assert not Expectation.objects.filter(competency__name="Team Empathy").exists()


def test_load_ladder_command_names_the_line(ladder_version, tmp_path):
    text = LADDER_FILE.read_text().replace('name: "Technical Expertise"', 'name: "Team Empathy"')
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(CommandError) as caught:
        call_command("load_ladder", str(bad), "--publish")
    message = str(caught.value)
    assert "nothing was loaded" in message
    assert "expectations[0].code" in message and "line " in message
    assert LadderVersion.objects.count() == 1


def test_the_evidence_api_flags_removed_and_reworded_links(ladder_version, engineer, engineer_api):
    ev = EvidenceFactory(
        person=engineer,
        links=[LinkSpec(expectation="TE-3.1"), LinkSpec(expectation="TE-3.2"),
               LinkSpec(expectation="TE-3.3")],
    )  # fmt: skip
    v1 = {e.code: e for e in ladder_version.expectations.all()}
    assert engineer_api.get(f"/api/v1/evidence/{ev.pk}/").json()["ladder_changed"] is False
    publish_v2()

    body = engineer_api.get(f"/api/v1/evidence/{ev.pk}/").json()
    assert body["ladder_changed"] is True
    assert body["expectations"] == ["TE-3.1", "TE-3.2", "TE-3.3"]
    by_code = {lk["expectation"]: lk for lk in body["links"]}
    assert by_code["TE-3.1"]["ladder_change"] == ""
    assert by_code["TE-3.2"]["ladder_change"] == "reworded"
    assert by_code["TE-3.2"]["made_against"] == {
        "expectation": v1["TE-3.2"].pk,
        "code": "TE-3.2",
        "version": 1,
        "text": "Uses MLflow, Airflow, CI/CD tools",
    }
    assert by_code["TE-3.3"]["ladder_change"] == "removed"
    listed = engineer_api.get("/api/v1/evidence/").json()["results"]
    assert [r["ladder_changed"] for r in listed] == [True]

    # the body read back as it is (a removed code included) saves unchanged
    put = engineer_api.patch(
        f"/api/v1/evidence/{ev.pk}/", {"expectations": body["expectations"]}, format="json"
    )
    assert put.status_code == 200, put.content
    assert put.json()["links"] == body["links"]

    confirmed = engineer_api.post(
        f"/api/v1/evidence/{ev.pk}/confirm-link/", {"code": "TE-3.2"}, format="json"
    )
    assert confirmed.status_code == 200
    link = {lk["expectation"]: lk for lk in confirmed.json()["links"]}["TE-3.2"]
    assert link["ladder_change"] == ""
    assert link["made_against"]["version"] == 2
    refused = engineer_api.post(
        f"/api/v1/evidence/{ev.pk}/confirm-link/", {"code": "TE-3.3"}, format="json"
    )
    assert refused.status_code == 400
    assert "TE-3.3" in str(refused.json()["error"])


def test_the_evidence_page_flags_the_links(client, ladder_version, engineer):
    ev = EvidenceFactory(
        person=engineer, links=[LinkSpec(expectation="TE-3.2"), LinkSpec(expectation="TE-3.3")]
    )
    publish_v2()
    client.force_login(engineer.user)
    html = client.get(f"/evidence/{ev.pk}/").content.decode()
    assert "Reworded in v2" in html
    assert "You linked it when it read: “Uses MLflow, Airflow, CI/CD tools” (v1)" in html
    assert "Removed from the ladder" in html
    assert "the current version has no TE-3.3" in html

    response = client.post(f"/evidence/{ev.pk}/confirm-link/", {"code": "TE-3.2"}, follow=True)
    html = response.content.decode()
    assert "Kept the link to TE-3.2" in html
    assert "Reworded in v2" not in html
    assert "Removed from the ladder" in html


def test_the_edit_form_keeps_a_removed_link_until_it_is_unticked(client, ladder_version, engineer):
    ev = EvidenceFactory(
        person=engineer, links=[LinkSpec(expectation="TE-3.1"), LinkSpec(expectation="TE-3.3")]
    )
    publish_v2()
    client.force_login(engineer.user)
    html = client.get(f"/evidence/{ev.pk}/edit/").content.decode()
    assert 'id="removed-links"' in html
    assert 'value="TE-3.3" id="exp-TE-3.3" checked' in html

    form = {
        "title": "Edited",
        "occurred_on": ev.occurred_on.isoformat(),
        "visibility": "manager",
        "expectations": ["TE-3.1", "TE-3.3"],
    }
    assert client.post(f"/evidence/{ev.pk}/edit/", form).status_code == 302
    links = links_of(ev)
    assert set(links) == {"TE-3.1", "TE-3.3"}
    assert links["TE-3.3"].ladder_change == "removed"

    form["expectations"] = ["TE-3.1"]
    assert client.post(f"/evidence/{ev.pk}/edit/", form).status_code == 302
    assert set(links_of(ev)) == {"TE-3.1"}


# loading v2 (the ladder, the code check, the version's rows: ~45) and moving the links:
# the new expectations and deliverables, the duplicates' delete, the groups, the facts, one
# UPDATE per group (4 here) and the deliverable groups
PUBLISH_QUERIES = 55


@pytest.mark.parametrize("n", [2, 40])
def test_publishing_writes_per_group_of_links_not_per_link(
    ladder_version, engineer, django_assert_num_queries, n
):
    for _ in range(n):
        EvidenceFactory(
            person=engineer,
            links=[LinkSpec(expectation=c) for c in ("TE-3.1", "TE-3.2", "TE-3.3", "CC-3.1")],
        )
    # the file's load (ladder, versions, rows) and the move: the same whatever the links
    with django_assert_num_queries(PUBLISH_QUERIES):
        publish_v2()
    assert EvidenceLink.objects.filter(expectation__version__number=2).count() == 3 * n


def test_deliverable_links_follow_the_same_text_or_are_flagged_removed(ladder_version, engineer):
    first = ladder_version.deliverables.get(
        text="Cleaned, annotated, and pre-processed datasets for supervised learning models"
    )
    ev = EvidenceFactory(person=engineer, links=[LinkSpec(deliverable=first.pk)])
    v2 = publish_v2()
    link = EvidenceLink.objects.select_related("deliverable").get(evidence=ev)
    assert link.deliverable.version == v2 and link.deliverable.text == first.text
    assert link.ladder_change == ""

    text = V2_FILE.read_text().replace(first.text, "Curated datasets with data cards")
    ladder_load(text=text, publish=True)
    link.refresh_from_db()
    assert link.deliverable.version == v2  # stays where it was, flagged
    assert link.ladder_change == "removed"


def test_the_follow_command_carries_links_left_behind(ladder_version, engineer):
    from io import StringIO

    ev = EvidenceFactory(person=engineer, links=[LinkSpec(expectation="TE-3.2")])
    v2 = publish_v2()
    # a link left on v1 (as a release before this one would have left it)
    EvidenceLink.objects.filter(evidence=ev).update(
        expectation=ladder_version.expectations.get(code="TE-3.2"),
        made_against=None,
        ladder_change="",
    )
    out = StringIO()
    call_command("evidence_links_follow", "ai-ml-engineer", stdout=out)
    assert "ai-ml-engineer v2: 1 links carried (1 reworded), 0 removed" in out.getvalue()
    link = links_of(ev)["TE-3.2"]
    assert link.expectation.version == v2 and link.ladder_change == "reworded"
    out = StringIO()
    call_command("evidence_links_follow", stdout=out)  # again: nothing left to move
    assert "0 links carried" in out.getvalue()
    with pytest.raises(CommandError, match="no such ladder: nope"):
        call_command("evidence_links_follow", "nope")
