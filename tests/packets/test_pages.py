"""Packet pages with the real templates: who sees which page (a 404 for everyone else), the
builder saving as you go through its htmx endpoint, submission with gaps, the manager's
review, the committee's decision, cycles and their report, and query counts that do not
grow with the number of evidence items.

The org (conftest): maria → omar → erin (level 2) and her peer; cora on the committee,
outside the chain; root is an admin without a person profile.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.evidence.models import Evidence
from apps.evidence.services import LinkSpec, evidence_create
from apps.packets import services
from apps.packets.models import Assessment, Packet, PacketItem, PromotionCycle
from apps.people.models import LevelChange
from tests.factories import PersonFactory

pytestmark = pytest.mark.django_db

ITEM_PICK = "pick"


def _codes(ladder_version, level=3) -> list[str]:
    return list(
        ladder_version.expectations.filter(level__number=level)
        .order_by("competency__position", "position")
        .values_list("code", flat=True)
    )


def _as(client, person_or_user):
    user = getattr(person_or_user, "user", person_or_user)
    client.force_login(user)
    return client


def _builder_post(codes, evidence, *, narratives=None, notes=None) -> dict:
    """What the builder form posts: every ticked (code, evidence) pair, notes, narratives."""
    data = {"builder": "1", ITEM_PICK: []}
    for code in codes:
        for ev in evidence:
            value = f"{code}|{ev.pk}"
            data[ITEM_PICK].append(value)
            data[f"note:{value}"] = (notes or {}).get(code, "")
    for name, text in (narratives or {}).items():
        data[f"narrative:{name}"] = text
    return data


def _start(erin, cycle) -> Packet:
    return services.packet_create(person=erin, actor=erin.user, cycle=cycle)


def _fill(packet, erin, codes, evidence) -> None:
    services.packet_update(
        packet=packet, actor=erin.user,
        items=[services.ItemSpec(expectation=c, evidence=evidence[0].pk) for c in codes],
        narratives={"Technical Expertise": "I *built* the feature store"},
    )  # fmt: skip


def _submitted(org, cycle, engineer_evidence, ladder_version) -> Packet:
    erin = org.engineer
    packet = _start(erin, cycle)
    _fill(packet, erin, _codes(ladder_version), engineer_evidence)
    return services.packet_submit(packet_id=packet.pk, actor=erin.user)


def _endorsed(org, cycle, engineer_evidence, ladder_version) -> Packet:
    packet = _submitted(org, cycle, engineer_evidence, ladder_version)
    specs = [services.AssessmentSpec(expectation=c, rating="meets")
             for c in _codes(ladder_version)]  # fmt: skip
    return services.packet_endorse(packet_id=packet.pk, actor=org.manager.user, assessments=specs)


@pytest.fixture
def admin(admin_user):
    return admin_user


# --- who sees what ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("engineer", 200),
        ("manager", 200),
        ("director", 200),
        ("peer", 404),
        ("committee", 404),
        ("admin", 200),
    ],
)
def test_draft_packet_page_by_role(client, org, admin, cycle, engineer_evidence, who, status):
    packet = _start(org.engineer, cycle)
    viewer = admin if who == "admin" else org[who]

    response = _as(client, viewer).get(f"/packets/{packet.pk}/")

    assert response.status_code == status
    if who == "engineer":
        assert b"Narrative for Technical Expertise" in response.content  # the builder
    elif status == 200:
        assert b"Narrative for" not in response.content  # read-only for everyone else
        assert b"Never submitted" in response.content


@pytest.mark.parametrize(
    ("url", "allowed", "denied"),
    [
        ("/packets/", ["engineer", "manager", "committee"], ["admin"]),
        ("/packets/reviews/", ["manager", "director"], ["engineer", "peer", "committee", "admin"]),
        (
            "/packets/{pk}/review/",
            ["manager", "director"],
            ["engineer", "peer", "committee", "admin"],
        ),
        ("/packets/committee/", ["committee"], ["engineer", "manager", "director", "admin"]),
        ("/packets/cycles/", ["admin"], ["engineer", "manager", "committee"]),
        ("/packets/cycles/new/", ["admin"], ["engineer", "committee"]),
        ("/packets/cycles/{cycle}/edit/", ["admin"], ["engineer", "committee"]),
        ("/packets/cycles/{cycle}/report/", ["admin", "committee"], ["engineer", "manager"]),
        ("/packets/{pk}/diff/", ["engineer", "manager"], ["peer", "committee"]),
    ],
)
def test_pages_render_for_their_role_and_404_for_others(
    client, org, admin, cycle, engineer_evidence, ladder_version, url, allowed, denied
):
    packet = _submitted(org, cycle, engineer_evidence, ladder_version)
    path = url.format(pk=packet.pk, cycle=cycle.pk)
    for who in allowed:
        viewer = admin if who == "admin" else org[who]
        assert _as(client, viewer).get(path).status_code == 200, (path, who)
    for who in denied:
        viewer = admin if who == "admin" else org[who]
        assert _as(client, viewer).get(path).status_code == 404, (path, who)


def test_decide_page_is_for_the_committee_once_endorsed(
    client, org, cycle, engineer_evidence, ladder_version
):
    packet = _submitted(org, cycle, engineer_evidence, ladder_version)
    assert _as(client, org.committee).get(f"/packets/{packet.pk}/decide/").status_code == 404

    _endorsed_packet = services.packet_endorse(
        packet_id=packet.pk, actor=org.manager.user,
        assessments=[services.AssessmentSpec(expectation=c, rating="exceeds")
                     for c in _codes(ladder_version)],
    )  # fmt: skip

    page = _as(client, org.committee).get(f"/packets/{_endorsed_packet.pk}/decide/")
    assert page.status_code == 200
    assert b"Record decision" in page.content
    assert b"Exceeds" in page.content  # the manager's assessments beside the evidence
    for who in ("engineer", "manager", "peer"):
        assert _as(client, org[who]).get(f"/packets/{packet.pk}/decide/").status_code == 404


def test_navigation_by_role(client, org, admin, cycle, engineer_evidence, ladder_version):
    _submitted(org, cycle, engineer_evidence, ladder_version)

    def nav(viewer) -> str:
        html = _as(client, viewer).get("/packets/" if viewer is not admin else "/ladders/")
        return re.search(r'<nav aria-label="Main">(.*?)</nav>', html.content.decode(), re.S)[1]

    erin = nav(org.engineer)
    assert "My packets" in erin and "Reviews" not in erin and "Committee" not in erin
    omar = nav(org.manager)
    assert re.search(r'Reviews <span class="count"[^>]*>1</span>', omar)
    maria = nav(org.director)  # skip-level: the packet waits for her too
    assert re.search(r'Reviews <span class="count"[^>]*>1</span>', maria)
    assert "Committee" in nav(org.committee)
    root = nav(admin)
    assert "Cycles" in root and "My packets" not in root


# --- my packets ---------------------------------------------------------------------------


def test_start_a_packet_defaults_to_the_next_level(client, org, cycle):
    page = _as(client, org.engineer).get("/packets/")
    assert b"Start a packet" in page.content
    assert re.search(rb'<option value="3" selected>', page.content)

    response = client.post("/packets/new/", {"cycle": cycle.pk, "target_level": 3})

    packet = Packet.objects.get(person=org.engineer)
    assert response.status_code == 302 and response["Location"] == f"/packets/{packet.pk}/"
    assert (packet.cycle, packet.target_level, packet.state) == (cycle, 3, "draft")
    listing = client.get("/packets/").content.decode()
    assert "H2" in listing and "Draft" in listing and "0%" in listing


def test_a_second_open_packet_in_a_cycle_is_a_form_error(client, org, cycle):
    _start(org.engineer, cycle)

    response = _as(client, org.engineer).post(
        "/packets/new/", {"cycle": cycle.pk, "target_level": 3}
    )

    assert response.status_code == 400
    assert b"You already have an open packet in H2" in response.content
    assert Packet.objects.filter(person=org.engineer).count() == 1


def test_closed_cycles_are_not_offered(client, org, cycle):
    cycle.submission_deadline = timezone.now() - timedelta(minutes=1)
    cycle.save()

    page = _as(client, org.engineer).get("/packets/")

    assert b"No promotion cycle takes submissions right now" in page.content


# --- the builder --------------------------------------------------------------------------


def test_builder_offers_linked_evidence_first(client, org, cycle, ladder_version):
    erin = org.engineer
    evidence_create(person=erin, actor=erin.user, title="Unrelated newest")
    linked = evidence_create(person=erin, actor=erin.user, title="Feature store",
                             links=[LinkSpec(expectation="TE-3.1")])  # fmt: skip
    packet = _start(erin, cycle)

    html = _as(client, erin).get(f"/packets/{packet.pk}/").content.decode()

    section = html[html.index('id="exp-TE-3.1"') : html.index('id="exp-TE-3.2"')]
    assert section.index("Feature store") < section.index("Other accepted evidence")
    assert section.index("Other accepted evidence") < section.index("Unrelated newest")
    assert f'value="TE-3.1|{linked.pk}"' in section
    assert "TE-3.1" in html and "gap" in html  # the coverage panel
    assert "<svg" in html and "Coverage by competency" in html  # the exports' chart


def test_builder_save_via_htmx_updates_items_narratives_and_coverage(
    client, org, cycle, engineer_evidence, ladder_version
):
    erin = org.engineer
    packet = _start(erin, cycle)
    codes = _codes(ladder_version)
    data = _builder_post(codes[:2], engineer_evidence[:2], notes={codes[0]: "led the rollout"},
                         narratives={"Technical Expertise": "I *built* it",
                                     "Collaboration & Communication": ""})  # fmt: skip

    response = _as(client, erin).post(f"/packets/{packet.pk}/save/", data, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section class="card coverage packet-coverage"')
    assert "Draft saved" in html
    assert '<strong data-testid="coverage-overall">40%</strong>' in html  # 2 of 5
    items = list(PacketItem.objects.filter(packet=packet).order_by("position")
                 .values_list("expectation__code", "evidence_id", "note"))  # fmt: skip
    assert items == [
        (codes[0], engineer_evidence[0].pk, "led the rollout"),
        (codes[0], engineer_evidence[1].pk, "led the rollout"),
        (codes[1], engineer_evidence[0].pk, ""),
        (codes[1], engineer_evidence[1].pk, ""),
    ]
    packet.refresh_from_db()
    assert packet.narratives["Technical Expertise"] == "I *built* it"
    assert "<em>built</em>" in packet.narratives_html["Technical Expertise"]

    # unticking everything empties the packet (the form replaces the items)
    client.post(f"/packets/{packet.pk}/save/", {"builder": "1"}, HTTP_HX_REQUEST="true")
    assert not PacketItem.objects.filter(packet=packet).exists()


def test_builder_save_without_javascript_redirects_back(client, org, cycle, engineer_evidence,
                                                        ladder_version):  # fmt: skip
    packet = _start(org.engineer, cycle)
    data = _builder_post(_codes(ladder_version)[:1], engineer_evidence[:1])

    response = _as(client, org.engineer).post(f"/packets/{packet.pk}/save/", data, follow=True)

    assert response.redirect_chain == [(f"/packets/{packet.pk}/", 302)]
    assert b"Draft saved." in response.content
    assert PacketItem.objects.filter(packet=packet).count() == 1


def test_builder_save_with_someone_elses_evidence_is_an_error_not_a_500(
    client, org, cycle, engineer_evidence, ladder_version
):
    packet = _start(org.engineer, cycle)
    theirs = evidence_create(person=org.peer, actor=org.peer.user, title="Not hers")
    data = _builder_post(_codes(ladder_version)[:1], [theirs])

    response = _as(client, org.engineer).post(
        f"/packets/{packet.pk}/save/", data, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 422
    assert b"Some items cannot be used." in response.content
    assert f"evidence {theirs.pk} is not one of your accepted items".encode() in response.content
    assert not PacketItem.objects.filter(packet=packet).exists()


@pytest.mark.parametrize(("who", "status"), [("manager", 403), ("peer", 404), ("committee", 404)])
def test_only_the_owner_saves(client, org, cycle, engineer_evidence, ladder_version, who, status):
    packet = _start(org.engineer, cycle)
    data = _builder_post(_codes(ladder_version)[:1], engineer_evidence[:1])

    response = _as(client, org[who]).post(f"/packets/{packet.pk}/save/", data)

    assert response.status_code == status
    assert not PacketItem.objects.filter(packet=packet).exists()


def test_submit_with_gaps_shows_them(client, org, cycle, engineer_evidence, ladder_version):
    erin = org.engineer
    packet = _start(erin, cycle)
    codes = _codes(ladder_version)
    data = _builder_post(codes[:2], engineer_evidence[:1])  # 40% < the cycle's 50%

    response = _as(client, erin).post(f"/packets/{packet.pk}/submit/", data)

    assert response.status_code == 400
    html = response.content.decode()
    assert "Not submitted." in html
    assert "Coverage 40% is below the cycle&#x27;s minimum 50%." in html
    gap_list = html[html.index('class="gap-list"') :]
    for code in codes[2:]:
        assert f'href="#exp-{code}">{code}</a>' in gap_list
    packet.refresh_from_db()
    assert packet.state == "draft"
    assert PacketItem.objects.filter(packet=packet).count() == 2  # what was on screen is kept


def test_submit_saves_the_screen_then_freezes_a_snapshot(
    client, org, cycle, engineer_evidence, ladder_version
):
    erin = org.engineer
    packet = _start(erin, cycle)
    data = _builder_post(_codes(ladder_version), engineer_evidence[:1],
                         narratives={"Technical Expertise": "Shipped"})  # fmt: skip

    response = _as(client, erin).post(f"/packets/{packet.pk}/submit/", data, follow=True)

    packet.refresh_from_db()
    snapshot = packet.snapshots.get()
    assert packet.state == "submitted"
    assert snapshot.data["narratives"] == {"Technical Expertise": "Shipped"}
    html = response.content.decode()
    assert "Submitted for review." in html
    assert f'<code class="sha" data-testid="sha256">{snapshot.sha256}</code>' in html
    assert "Narrative for" not in html  # read-only now
    assert "Withdraw packet" in html


def test_withdraw(client, org, cycle):
    packet = _start(org.engineer, cycle)

    response = _as(client, org.engineer).post(f"/packets/{packet.pk}/withdraw/", follow=True)

    assert b"Packet withdrawn." in response.content
    packet.refresh_from_db()
    assert packet.state == "withdrawn"
    again = client.post(f"/packets/{packet.pk}/withdraw/", follow=True)
    assert b"Cannot withdraw a packet that is withdrawn." in again.content


def test_exports_from_the_page(client, org, cycle, engineer_evidence, ladder_version):
    packet = _submitted(org, cycle, engineer_evidence, ladder_version)
    _as(client, org.manager)

    md = client.get(f"/packets/{packet.pk}/export/?format=md")
    js = client.get(f"/packets/{packet.pk}/export/?format=json&snapshot=1")

    assert md["Content-Disposition"] == f'attachment; filename="packet-{packet.pk}-v1.md"'
    assert md.content.decode().startswith("# Promotion packet: Erin → level 3")
    assert js.json()["target_level"] == 3
    assert client.get(f"/packets/{packet.pk}/export/?format=doc").status_code == 400
    assert client.get(f"/packets/{packet.pk}/export/?format=md&snapshot=9").status_code == 404
    assert _as(client, org.peer).get(f"/packets/{packet.pk}/export/").status_code == 404


def test_snapshot_diff_page(client, org, cycle, engineer_evidence, ladder_version):
    erin, omar = org.engineer, org.manager
    packet = _submitted(org, cycle, engineer_evidence, ladder_version)
    services.packet_request_changes(packet_id=packet.pk, actor=omar.user, comment="More")
    codes = _codes(ladder_version)
    services.packet_update(
        packet=packet, actor=erin.user,
        items=[services.ItemSpec(expectation=c, evidence=engineer_evidence[1].pk, note="new")
               for c in codes],
        narratives={"Technical Expertise": "Rewritten"},
    )  # fmt: skip
    services.packet_submit(packet_id=packet.pk, actor=erin.user)

    page = _as(client, omar).get(f"/packets/{packet.pk}/diff/?from=1&to=2")

    assert page.status_code == 200
    html = page.content.decode()
    added = html[html.index('class="diff added"') : html.index("Evidence removed")]
    removed = html[html.index('class="diff removed"') : html.index("Notes changed")]
    assert added.count("Work 1") == len(codes) and removed.count("Work 0") == len(codes)
    assert "Technical Expertise" in html[html.index("Narratives changed") :]
    assert client.get(f"/packets/{packet.pk}/diff/?from=1&to=7").status_code == 400


# --- review -------------------------------------------------------------------------------


def _ratings(codes, rating="meets") -> dict:
    return {f"rating-{c}": rating for c in codes}


def test_review_assess_then_endorse(client, org, cycle, engineer_evidence, ladder_version):
    packet = _submitted(org, cycle, engineer_evidence, ladder_version)
    codes = _codes(ladder_version)
    url = f"/packets/{packet.pk}/review/"
    _as(client, org.manager)

    page = client.get(url)
    assert page.status_code == 200
    assert b"Work 0" in page.content and b"I <em>built</em> the feature store" in page.content

    saved = client.post(url, {"action": "assess", **_ratings(codes[:2], "exceeds"),
                              f"comment-{codes[0]}": "Strong"}, follow=True)  # fmt: skip
    assert b"Saved 2 assessments." in saved.content
    assert re.search(
        rf'name="rating-{re.escape(codes[0])}" value="exceeds" checked', saved.content.decode()
    )
    assert "Strong</textarea>" in saved.content.decode()  # pre-filled from what was saved

    early = client.post(url, {"action": "endorse"})
    assert early.status_code == 400
    assert b"Assess every expectation of the target level first." in early.content
    assert Packet.objects.get(pk=packet.pk).state == "submitted"

    done = client.post(url, {"action": "endorse", **_ratings(codes[2:]), "comment": "Ready"})
    assert done.status_code == 302 and done["Location"] == "/packets/reviews/"
    assert Packet.objects.get(pk=packet.pk).state == "endorsed"
    ratings = dict(Assessment.objects.filter(packet=packet).values_list("expectation__code",
                                                                        "rating"))  # fmt: skip
    assert ratings == {**{c: "exceeds" for c in codes[:2]}, **{c: "meets" for c in codes[2:]}}


def test_request_changes_needs_a_comment(client, org, cycle, engineer_evidence, ladder_version):
    packet = _submitted(org, cycle, engineer_evidence, ladder_version)
    codes = _codes(ladder_version)
    url = f"/packets/{packet.pk}/review/"
    _as(client, org.manager)

    missing = client.post(url, {"action": "request_changes", **_ratings(codes[:1])})

    assert missing.status_code == 400
    assert b"Say what should change." in missing.content
    assert not Assessment.objects.filter(packet=packet).exists()  # nothing half-done

    asked = client.post(url, {"action": "request_changes", "comment": "Add CC evidence",
                              **_ratings(codes[:1])}, follow=True)  # fmt: skip
    assert b"Asked Erin for changes." in asked.content
    assert Packet.objects.get(pk=packet.pk).state == "changes_requested"
    assert Assessment.objects.filter(packet=packet).count() == 1
    builder = _as(client, org.engineer).get(f"/packets/{packet.pk}/").content.decode()
    assert "Changes requested" in builder and "Add CC evidence" in builder


def test_decline_needs_a_comment(client, org, cycle, engineer_evidence, ladder_version):
    packet = _submitted(org, cycle, engineer_evidence, ladder_version)
    codes = _codes(ladder_version)
    url = f"/packets/{packet.pk}/review/"
    _as(client, org.manager)

    response = client.post(url, {"action": "decline", **_ratings(codes, "below")})

    assert response.status_code == 400
    assert b"Say why you decline." in response.content
    assert Packet.objects.get(pk=packet.pk).state == "submitted"
    client.post(url, {"action": "decline", "comment": "Not yet", **_ratings(codes, "below")})
    assert Packet.objects.get(pk=packet.pk).state == "declined"


def test_review_of_a_packet_no_longer_submitted_is_a_message(
    client, org, cycle, engineer_evidence, ladder_version
):
    packet = _endorsed(org, cycle, engineer_evidence, ladder_version)
    url = f"/packets/{packet.pk}/review/"

    page = _as(client, org.manager).get(url)
    again = client.post(url, {"action": "endorse", **_ratings(_codes(ladder_version))})

    assert b"there is nothing to review now" in page.content
    assert again.status_code == 409
    assert b"Cannot endorse a packet that is endorsed." in again.content


# --- committee ----------------------------------------------------------------------------


def test_committee_table_and_decision_promotes(
    client, org, cycle, engineer_evidence, ladder_version
):
    packet = _endorsed(org, cycle, engineer_evidence, ladder_version)
    _as(client, org.committee)

    table = client.get("/packets/committee/").content.decode()

    row = table[table.index("<tbody>") : table.index("</tbody>")]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    assert "Erin" in cells[0] and cells[1] == "2 → 3" and cells[2] == "100%"
    assert cells[3:6] == ["100%", "100%", "100%"]  # per competency
    assert cells[6:9] == ["0", "5", "0"]  # below / meets / exceeds

    missing = client.post(f"/packets/{packet.pk}/decide/", {"outcome": "promoted"})
    assert missing.status_code == 400
    assert Packet.objects.get(pk=packet.pk).state == "endorsed"

    done = client.post(
        f"/packets/{packet.pk}/decide/",
        {"outcome": "promoted", "rationale": "Clear impact"},
        follow=True,
    )
    assert done.redirect_chain == [(f"/packets/committee/?cycle={cycle.pk}", 302)]
    assert b"Decided: Erin, promoted." in done.content
    erin = org.engineer
    erin.refresh_from_db()
    assert erin.level == 3
    assert LevelChange.objects.filter(person=erin, to_level=3, packet_id=packet.pk).exists()
    decided = done.content.decode()
    assert "Decided (1)" in decided and "Clear impact" in decided


def test_committee_member_does_not_decide_for_own_reports(
    client, org, cycle, engineer_evidence, ladder_version
):
    maria = org.director
    maria.is_committee = True
    maria.save()
    packet = _endorsed(org, cycle, engineer_evidence, ladder_version)
    _as(client, maria)

    page = client.get(f"/packets/{packet.pk}/decide/")
    response = client.post(
        f"/packets/{packet.pk}/decide/",
        {"outcome": "promoted", "rationale": "Mine"},
        follow=True,
    )

    assert b"You manage Erin" in page.content and b"Record decision" not in page.content
    assert response.status_code == 200
    assert b"A committee member does not decide for their own reports." in response.content
    assert Packet.objects.get(pk=packet.pk).state == "endorsed"
    table = client.get("/packets/committee/").content.decode()
    assert "Your report: another member decides" in table


# --- cycles -------------------------------------------------------------------------------


def test_cycle_report_and_csv(client, org, admin, cycle, engineer_evidence, ladder_version):
    _submitted(org, cycle, engineer_evidence, ladder_version)
    _start(org.peer, cycle)
    _as(client, admin)

    page = client.get(f"/packets/cycles/{cycle.pk}/report/").content.decode()
    download = client.get(f"/packets/cycles/{cycle.pk}/report/?format=csv")

    assert "Level 3" in page and "Draft" in page and "Submitted" in page
    assert download["Content-Type"] == "text/csv; charset=utf-8"
    assert download["Content-Disposition"] == f'attachment; filename="cycle-{cycle.pk}.csv"'
    rows = list(csv.DictReader(io.StringIO(download.content.decode())))
    assert rows == [
        {"target_level": "3", "state": "draft", "count": "1"},
        {"target_level": "3", "state": "submitted", "count": "1"},
    ]
    api = client.get(f"/api/v1/cycles/{cycle.pk}/report/?format=csv")
    assert api.content == download.content  # one CSV, two doors


def test_admin_creates_and_extends_a_cycle_with_form_errors(client, admin):
    _as(client, admin)
    bad = {"name": "2027 H1", "opens_on": "2027-01-10", "submission_deadline": "2027-01-05T12:00",
           "decision_on": "2027-02-01", "min_coverage": "0.8"}  # fmt: skip

    response = client.post("/packets/cycles/new/", bad)

    assert response.status_code == 400
    assert b"The deadline is before the cycle opens." in response.content
    assert not PromotionCycle.objects.filter(name="2027 H1").exists()

    ok = client.post("/packets/cycles/new/", {**bad, "submission_deadline": "2027-01-20T17:00"})
    cycle = PromotionCycle.objects.get(name="2027 H1")
    assert ok.status_code == 302 and ok["Location"] == "/packets/cycles/"

    edit = client.get(f"/packets/cycles/{cycle.pk}/edit/")
    assert b'value="2027-01-20T17:00"' in edit.content
    client.post(f"/packets/cycles/{cycle.pk}/edit/",
                {**bad, "submission_deadline": "2027-01-27T17:00"})  # fmt: skip
    cycle.refresh_from_db()
    assert cycle.submission_deadline.isoformat() == "2027-01-27T17:00:00+00:00"
    too_much = client.post(f"/packets/cycles/{cycle.pk}/edit/", {**bad, "min_coverage": "1.5"})
    assert too_much.status_code == 400
    listing = client.get("/packets/cycles/").content.decode()
    assert "2027 H1" in listing and "80%" in listing


# --- query counts -------------------------------------------------------------------------


@pytest.fixture
def many_linked(org, ladder_version):
    """n accepted evidence items of erin's, each linked to an expectation of level 3."""

    def make(n: int) -> list[Evidence]:
        erin = org.engineer
        codes = _codes(ladder_version)
        return [
            evidence_create(person=erin, actor=erin.user, title=f"Item {i}",
                            links=[LinkSpec(expectation=codes[i % len(codes)])])
            for i in range(n)
        ]  # fmt: skip

    return make


# the same for 10 and 200 evidence items (one query each for ServiceNow flags, confirmations)
BUILDER_QUERIES = 19
# the snapshot carries the evidence: no query per item; one for their ServiceNow flags and
# one for the latest ladder version (the moved-on banner)
REVIEW_QUERIES = 18


@pytest.mark.parametrize("n", [10, 200])
def test_builder_query_count_does_not_grow(
    client, org, cycle, ladder_version, many_linked, django_assert_max_num_queries, n
):
    erin = org.engineer
    evidence = many_linked(n)
    packet = _start(erin, cycle)
    codes = _codes(ladder_version)
    services.packet_update(
        packet=packet, actor=erin.user,
        items=[services.ItemSpec(expectation=codes[i % len(codes)], evidence=ev.pk)
               for i, ev in enumerate(evidence)],
    )  # fmt: skip
    _as(client, erin)

    with django_assert_max_num_queries(BUILDER_QUERIES):
        response = client.get(f"/packets/{packet.pk}/")

    assert response.status_code == 200
    assert response.content.decode().count(f'name="{ITEM_PICK}"') == n * len(codes)


@pytest.mark.parametrize("n", [10, 200])
def test_review_query_count_does_not_grow(
    client, org, cycle, ladder_version, many_linked, django_assert_max_num_queries, n
):
    erin = org.engineer
    evidence = many_linked(n)
    packet = _start(erin, cycle)
    codes = _codes(ladder_version)
    services.packet_update(
        packet=packet, actor=erin.user,
        items=[services.ItemSpec(expectation=codes[i % len(codes)], evidence=ev.pk)
               for i, ev in enumerate(evidence)],
    )  # fmt: skip
    services.packet_submit(packet_id=packet.pk, actor=erin.user)
    services.packet_assess(
        packet_id=packet.pk, actor=org.manager.user,
        assessments=[services.AssessmentSpec(expectation=c, rating="meets") for c in codes],
    )  # fmt: skip
    _as(client, org.manager)

    with django_assert_max_num_queries(REVIEW_QUERIES):
        response = client.get(f"/packets/{packet.pk}/review/")

    assert response.status_code == 200
    assert response.content.decode().count('class="packet-evidence"') == n


def test_a_person_without_a_profile_has_no_packets(client, db):
    user = PersonFactory().user
    user.person.delete()
    assert _as(client, user).get("/packets/").status_code == 404
