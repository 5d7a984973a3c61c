"""Query counts that do not grow with the evidence in a packet, and what each export holds.

Sizes: 10 and 2,000 PacketItems (each on its own evidence item, linked to its expectation),
made with bulk_create. Every endpoint is held to one exact number of queries for both sizes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import unicodedata
from datetime import date

import pytest
from rest_framework.test import APIClient

from apps.evidence.models import Evidence
from apps.ladders.models import Expectation
from apps.packets import exports
from apps.packets.models import PacketSnapshot
from apps.packets.services import packet_submit
from tests.factories import PacketFactory, api_client, packet_fill

pytestmark = pytest.mark.django_db

SIZES = [10, 2000]


@pytest.fixture(params=SIZES, ids=[f"{n}-items" for n in SIZES])
def big_draft(request, org, cycle, ladder_version, engineer_evidence):
    packet = PacketFactory(
        person=org.engineer,
        cycle=cycle,
        ladder_version=ladder_version,
        state="draft",
        evidence=engineer_evidence,
    )
    packet_fill(packet, request.param)
    return packet, request.param


# One number per endpoint and viewer, the same for both sizes. Viewer erin (the owner, no
# reports: person_for_user says so, so nothing walks the org chart) and omar (her manager:
# two queries to walk his reports, erin and peer, then nobody below them).
QUERIES = {
    # person_for_user, the packet, its items with their expectation codes (one query of
    # plain rows: packet_item_rows)
    ("detail", "engineer"): 3,
    # person_for_user, the packet (no items: coverage reads them itself), the expectations
    # of the level, the offered evidence, the deliverables
    ("coverage", "engineer"): 5,
    # person_for_user, the packet, looking for a snapshot (none), coverage (3), the items
    # with their evidence and expectation, and the items' ServiceNow side now (deleted,
    # changed, last verification: packet_source_flags)
    ("export-draft", "engineer"): 8,
    # person_for_user, the packet, the latest snapshot, the items' ServiceNow side
    ("export-submitted", "engineer"): 4,
    ("detail", "manager"): 5,
    ("coverage", "manager"): 7,
    # ... and which of the items are private now (withheld from him)
    ("export-submitted", "manager"): 7,
}


@pytest.mark.parametrize(("endpoint", "viewer"), list(QUERIES), ids=[
    f"{e}-as-{v}" for e, v in QUERIES])  # fmt: skip
def test_query_count_does_not_grow_with_the_packet(
    endpoint, viewer, big_draft, org, django_assert_num_queries
):
    packet, size = big_draft
    if endpoint == "export-submitted":
        packet_submit(packet_id=packet.pk, actor=org.engineer.user)
    path = {
        "detail": f"/api/v1/packets/{packet.pk}/",
        "coverage": f"/api/v1/packets/{packet.pk}/coverage/",
        "export-draft": f"/api/v1/packets/{packet.pk}/export/?format=json",
        "export-submitted": f"/api/v1/packets/{packet.pk}/export/?format=json",
    }[endpoint]
    client = api_client(org[viewer])

    with django_assert_num_queries(QUERIES[(endpoint, viewer)]):
        response = client.get(path)

    assert response.status_code == 200
    body = response.json()
    if endpoint == "detail":
        assert len(body["items"]) == size
    elif endpoint == "coverage":
        assert body["overall"] == 1.0
        assert sum(len(e["evidence"]) for e in body["expectations"]) == size
    else:
        assert sum(len(e["items"]) for e in body["expectations"]) == size


@pytest.mark.parametrize(
    "sizes", [[10], [10, 2000]], ids=["one-packet-of-10", "two-packets-of-10-and-2000"]
)
def test_packet_list_reads_the_items_of_all_its_packets_at_once(
    sizes, org, cycle, ladder_version, django_assert_num_queries
):
    """The manager's list of his reports' packets: the same queries for one packet as for
    two, whatever their size (every packet's items in one query, packet_item_rows)."""
    for owner, size in zip([org.engineer, org.peer], sizes, strict=False):
        packet = PacketFactory(person=owner, cycle=cycle, ladder_version=ladder_version)
        packet_fill(packet, size)
    client = api_client(org.manager)

    # person_for_user and his reports (2), the count and the page, the items of the page
    with django_assert_num_queries(6):
        response = client.get("/api/v1/packets/")

    assert response.status_code == 200
    results = response.json()["results"]
    assert sorted(len(p["items"]) for p in results) == sizes


# --- export content ---------------------------------------------------------------------

SN_URL = "https://acme.service-now.com/nav_to.do?uri=incident.do?sys_id=0a1b2c3d"


@pytest.fixture
def exported(org, cycle, ladder_version):
    """erin's packet for level 3, submitted: two manual items (one with a URL) and one
    imported from ServiceNow, every expectation of the level covered."""
    erin = org.engineer
    manual = [
        Evidence.objects.create(person=erin, title="Café churn model — naïve Bayes baseline",
                                occurred_on=date(2026, 3, 1), status="accepted",
                                url="https://git.example.com/churn/pull/42"),
        Evidence.objects.create(person=erin, title="Feature store backfill & drift alerts",
                                occurred_on=date(2026, 4, 2), status="accepted"),
    ]  # fmt: skip
    imported = Evidence.objects.create(
        person=erin, title="Restore the model-serving pods after the GPU node outage",
        source="servicenow", status="accepted", occurred_on=date(2026, 5, 3),
        snapshot={"url": SN_URL, "table": "incident", "number": "INC0012345",
                  "short_description": "Model serving down"},
    )  # fmt: skip
    packet = PacketFactory(
        person=erin,
        cycle=cycle,
        ladder_version=ladder_version,
        state="draft",
        evidence=[*manual, imported],
    )
    packet_submit(packet_id=packet.pk, actor=erin.user)
    snapshot = PacketSnapshot.objects.get(packet=packet)
    return {"packet": packet, "snapshot": snapshot, "titles": [e.title for e in
            [*manual, imported]], "imported": imported}  # fmt: skip


def _expectations(ladder_version):
    return list(
        Expectation.objects.filter(version=ladder_version, level__number=3)
        .values_list("code", "text")
    )  # fmt: skip


def _flat(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split())


def pdf_text(pdf: bytes, tmp_path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.fail("pdftotext is missing: `make browser` installs poppler-utils")
    path = tmp_path / "packet.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True,
                         capture_output=True)  # fmt: skip
    return out.stdout.decode()


def test_pdf_export_holds_every_expectation_and_evidence_title(
    exported, org, ladder_version, tmp_path
):
    packet = exported["packet"]
    response = api_client(org.manager).get(f"/api/v1/packets/{packet.pk}/export/?format=pdf")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert f'filename="packet-{packet.pk}-v1.pdf"' in response["Content-Disposition"]
    assert response.content.startswith(b"%PDF")
    text = _flat(pdf_text(response.content, tmp_path))
    for code, expectation_text in _expectations(ladder_version):
        assert code in text
        assert _flat(expectation_text) in text, expectation_text
    for title in exported["titles"]:
        assert _flat(title) in text, title
    assert "INC0012345" in text
    assert exported["snapshot"].sha256 in text.replace(" ", "")
    assert "Overall" in text and "100%" in text  # the coverage chart's labels


def test_markdown_export_holds_the_same_and_links_back_to_servicenow(exported, org, ladder_version):
    packet = exported["packet"]
    response = api_client(org.engineer).get(f"/api/v1/packets/{packet.pk}/export/?format=md")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/markdown")
    md = response.content.decode()
    for code, expectation_text in _expectations(ladder_version):
        assert f"### {code} {expectation_text}" in md
    for title in exported["titles"]:
        assert title in md
    imported = exported["imported"]
    assert f"[{imported.title}]({SN_URL})" in md
    assert f"ServiceNow incident INC0012345: {SN_URL}" in md
    assert "[Café churn model — naïve Bayes baseline](https://git.example.com/churn/pull/42)" in md


def test_json_export_is_the_snapshot(exported, org):
    packet, snapshot = exported["packet"], exported["snapshot"]
    for who in ("engineer", "manager", "director"):
        response = api_client(org[who]).get(f"/api/v1/packets/{packet.pk}/export/?format=json")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("application/json")
        body = json.loads(response.content)
        # the snapshot as stored, plus what is true of its ServiceNow records now
        assert exports.packet_data_frozen(body) == snapshot.data
        assert body["source_changes"] == {"deleted": 0, "changed": 0}
        items = [i for e in body["expectations"] for i in e["items"]]
        assert all(i["work_item_deleted"] is False and i["work_item_changed"] is False
                   for i in items)  # fmt: skip
    imported_items = [i for e in snapshot.data["expectations"] for i in e["items"]
                      if i["source"] == "servicenow"]  # fmt: skip
    assert imported_items and all(i["work_item"]["number"] == "INC0012345"
                                  for i in imported_items)  # fmt: skip


def test_the_html_behind_the_pdf_carries_the_coverage_chart(exported):
    data, sha = exported["snapshot"].data, exported["snapshot"].sha256
    html = exports.packet_html(data, sha256=sha)
    chart = exports.coverage_svg(data["coverage"])
    assert chart.startswith("<svg") and chart.endswith("</svg>")
    assert chart in html
    bars = len(data["coverage"]["by_competency"]) + 1  # one per competency and overall
    assert chart.count("<rect") == 2 * bars  # track + fill
    for name in data["coverage"]["by_competency"]:
        assert name.replace("&", "&amp;") in chart
    assert sha in html


@pytest.mark.parametrize(("who", "status"), [("peer", 404), ("committee", 404)])
def test_exports_are_scoped_like_the_packet(who, status, exported, org):
    packet = exported["packet"]
    for fmt in ("json", "md", "pdf"):
        response = api_client(org[who]).get(f"/api/v1/packets/{packet.pk}/export/?format={fmt}")
        assert response.status_code == status


def test_anonymous_export_is_401(exported):
    packet = exported["packet"]
    assert APIClient().get(f"/api/v1/packets/{packet.pk}/export/?format=pdf").status_code == 401
