"""A packet's items say when their ServiceNow record was deleted, or changed after the
packet's snapshot froze a copy of it — in the builder, the review page, the committee's
table and decision page, and the JSON, Markdown and PDF exports — and a packet snapshot
carries each item's record hash (old snapshots without them still read and verify)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.evidence.candidates import candidates_import
from apps.evidence.models import Evidence, EvidenceVerification
from apps.evidence.services import evidence_accept
from apps.packets.exports import packet_data_frozen
from apps.packets.models import PacketSnapshot
from servicenow.models import WorkItem
from servicenow.sync.workitems import work_item_candidate, work_item_snapshot
from tests.factories import (
    PASSWORD,
    EvidenceFactory,
    PacketFactory,
    api_client,
    canonical_sha256,
)
from tests.servicenow.test_api import acme, make_work_items, plain_source

from .test_queries_and_exports import pdf_text

pytestmark = pytest.mark.django_db


def sync_copy(item: WorkItem, person, *, short_description: str | None = None) -> Evidence:
    """What a sync hands over for `item` (its own snapshot builder and the candidates
    writer): the candidate the first time, a refreshed snapshot after."""
    raw = {
        "number": item.number,
        "short_description": short_description or item.short_description,
        "state": "6",
    }
    snapshot = work_item_snapshot(
        instance_url=item.connection.instance_url, table=item.table, sys_id=item.sys_id,
        raw=raw, updated_on=item.sys_updated_on, display={"state": "Resolved"},
    )  # fmt: skip
    candidate = work_item_candidate(
        work_item_id=item.pk, person_id=person.pk, snapshot=snapshot, raw=raw,
        occurred=item.sys_updated_on, rules=[],
    )  # fmt: skip
    candidates_import(candidates=[candidate])
    return Evidence.objects.get(person=person, work_item=item)


def imported_items(org, n: int = 2) -> tuple[list[WorkItem], list[Evidence]]:
    source = plain_source(acme())
    items = make_work_items(source, n, org.engineer)
    evidence = []
    for item in items:
        ev = sync_copy(item, org.engineer)
        evidence_accept(evidence=ev, actor=org.engineer.user)
        evidence.append(Evidence.objects.get(pk=ev.pk))
    return items, evidence


def source_moves_on(org, items: list[WorkItem]) -> None:
    """The first record is deleted in ServiceNow; the second is edited and re-synced."""
    WorkItem.objects.filter(pk=items[0].pk).update(
        deleted_at=timezone.now(), deleted_reason="audit_delete"
    )
    sync_copy(items[1], org.engineer, short_description="Edited after submission")


@pytest.fixture
def world(org, cycle, ladder_version):
    items, (gone, edited) = imported_items(org)
    manual = EvidenceFactory(person=org.engineer, title="Manual work")
    packet = PacketFactory(
        person=org.engineer, cycle=cycle, ladder_version=ladder_version, state="endorsed",
        evidence=[gone, edited, manual], reviewer=org.manager,
    )  # fmt: skip
    source_moves_on(org, items)
    return {"packet": packet, "gone": gone, "edited": edited, "manual": manual, "items": items}


def items_of(data: dict) -> dict[int, dict]:
    return {i["evidence"]: i for e in data["expectations"] for i in e["items"]}


def page(org, role: str) -> Client:
    client = Client()
    assert client.login(username=org[role].user.username, password=PASSWORD)
    return client


def test_a_packet_snapshot_carries_each_items_record_hash(org, cycle, ladder_version):
    _items, evidence = imported_items(org)
    packet = PacketFactory(person=org.engineer, cycle=cycle, ladder_version=ladder_version,
                           state="submitted", evidence=evidence)  # fmt: skip

    data = PacketSnapshot.objects.get(packet=packet).data
    items = items_of(data)

    for ev in evidence:
        ev.refresh_from_db()
        assert items[ev.pk]["snapshot_sha256"] == ev.snapshot_sha256
        assert items[ev.pk]["snapshot_sha256"] == canonical_sha256(items[ev.pk]["work_item"])


def test_json_export_flags_deleted_and_changed_records_for_each_reader(world, org):
    packet = world["packet"]
    for role in ("engineer", "manager", "committee", "admin"):
        response = api_client(org[role]).get(f"/api/v1/packets/{packet.pk}/export/?format=json")
        assert response.status_code == 200
        body = json.loads(response.content)
        items = items_of(body)

        flags = {pk: (i["work_item_deleted"], i["work_item_changed"]) for pk, i in items.items()}
        assert flags == {
            world["gone"].pk: (True, False),
            world["edited"].pk: (False, True),
            world["manual"].pk: (False, False),
        }, role
        assert body["source_changes"] == {"deleted": 1, "changed": 1}
        # the frozen copy is untouched: the export is still the snapshot plus the flags
        stored = PacketSnapshot.objects.get(packet=packet)
        assert packet_data_frozen(body) == stored.data
        assert canonical_sha256(packet_data_frozen(body)) == stored.sha256
        assert items[world["edited"].pk]["work_item"]["short_description"] != (
            "Edited after submission"
        )


def test_markdown_and_pdf_exports_say_which_item_moved_on(world, org, tmp_path):
    packet, api = world["packet"], api_client(org.committee)

    md = api.get(f"/api/v1/packets/{packet.pk}/export/?format=md").content.decode()
    pdf = pdf_text(api.get(f"/api/v1/packets/{packet.pk}/export/?format=pdf").content, tmp_path)

    def block(text: str, title: str) -> str:
        """From the item's title to the next item."""
        start = text.index(title)
        end = text.find("\n- ", start)
        return text[start : end if end != -1 else None]

    gone, edited = world["gone"].title, world["edited"].title
    assert "Deleted in ServiceNow" in block(md, gone)
    assert "Changed in ServiceNow" not in block(md, gone)
    assert "Changed in ServiceNow since this snapshot" in block(md, edited)
    assert "Deleted in ServiceNow" not in block(md, edited)
    assert "ServiceNow since this snapshot: 1 deleted, 1 changed" in md
    flat = " ".join(pdf.split())
    assert "Deleted in ServiceNow" in flat
    assert "Changed in ServiceNow since this snapshot" in flat
    assert "ServiceNow since this snapshot: 1 deleted, 1 changed" in flat


def test_no_flag_while_nothing_moved(org, cycle, ladder_version):
    _items, evidence = imported_items(org)
    packet = PacketFactory(person=org.engineer, cycle=cycle, ladder_version=ladder_version,
                           state="submitted", evidence=evidence)  # fmt: skip
    # a sync that brings the same record again changes nothing
    for ev in evidence:
        sync_copy(ev.work_item, org.engineer)

    body = api_client(org.manager).get(f"/api/v1/packets/{packet.pk}/export/?format=json").json()

    assert body["source_changes"] == {"deleted": 0, "changed": 0}
    md = api_client(org.manager).get(f"/api/v1/packets/{packet.pk}/export/?format=md")
    assert "in ServiceNow" not in md.content.decode()


def test_the_review_page_flags_the_items(org, cycle, ladder_version):
    items, (gone, edited) = imported_items(org)
    packet = PacketFactory(person=org.engineer, cycle=cycle, ladder_version=ladder_version,
                           state="submitted", evidence=[gone, edited])  # fmt: skip
    source_moves_on(org, items)

    html = page(org, "manager").get(f"/packets/{packet.pk}/review/").content.decode()

    assert f'data-testid="deleted-{gone.pk}"' in html
    assert f'data-testid="changed-{edited.pk}"' in html
    assert f'data-testid="deleted-{edited.pk}"' not in html
    assert f'data-testid="changed-{gone.pk}"' not in html


def test_the_committee_table_counts_and_the_decision_page_shows_flags_and_verification(world, org):
    packet, edited = world["packet"], world["edited"]
    EvidenceVerification.objects.create(
        evidence=edited, result="changed", diff=[], compared_sha256="0" * 64,
        verified_by=org.committee.user, verified_at=timezone.now() - timedelta(hours=1),
    )  # fmt: skip
    client = page(org, "committee")

    table = client.get(f"/packets/committee/?cycle={packet.cycle_id}").content.decode()
    decide = client.get(f"/packets/{packet.pk}/decide/").content.decode()

    cell = table[table.index(f'data-testid="source-{packet.pk}"') :].split("</td>")[0]
    assert "1 deleted" in cell and "1 changed" in cell
    assert f'data-testid="deleted-{world["gone"].pk}"' in decide
    assert f'data-testid="changed-{edited.pk}"' in decide
    shown = decide[decide.index(f'data-testid="verification-{edited.pk}"') :].split("</span>")[0]
    assert "by cora" in shown and "changed in ServiceNow" in shown
    assert f'data-testid="verification-{world["gone"].pk}"' not in decide


def test_the_committee_table_reads_a_fixed_number_of_queries(
    org, cycle, ladder_version, django_assert_num_queries
):
    def committee_page_queries() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        client = page(org, "committee")
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(f"/packets/committee/?cycle={cycle.pk}").status_code == 200
        return len(ctx.captured_queries)

    items, evidence = imported_items(org, 3)
    PacketFactory(person=org.engineer, cycle=cycle, ladder_version=ladder_version,
                  state="endorsed", evidence=evidence, reviewer=org.manager)  # fmt: skip
    source_moves_on(org, items)
    one = committee_page_queries()
    for person in (org.peer, org.other_engineer):
        source = plain_source(acme(f"Acme {person.pk}"), name=f"incidents {person.pk}")
        theirs = []
        for item in make_work_items(source, 4, person, start=100 * person.pk):
            ev = sync_copy(item, person)
            evidence_accept(evidence=ev, actor=person.user)
            theirs.append(ev)
        reviewer = org.manager if person == org.peer else org.other_manager
        PacketFactory(person=person, cycle=cycle, ladder_version=ladder_version,
                      state="endorsed", evidence=theirs, reviewer=reviewer)  # fmt: skip
        WorkItem.objects.filter(source=source).update(deleted_at=timezone.now())

    three = committee_page_queries()

    assert three == one
    html = page(org, "committee").get(f"/packets/committee/?cycle={cycle.pk}").content.decode()
    assert html.count("4 deleted") == 2


def test_the_builder_flags_items_that_moved_on_since_the_last_submission(
    org, cycle, ladder_version
):
    items, (gone, edited) = imported_items(org)
    packet = PacketFactory(person=org.engineer, cycle=cycle, ladder_version=ladder_version,
                           state="changes_requested", evidence=[gone, edited],
                           reviewer=org.manager)  # fmt: skip
    client = page(org, "engineer")
    before = client.get(f"/packets/{packet.pk}/").content.decode()
    assert 'data-testid="deleted-' not in before and 'data-testid="changed-' not in before

    source_moves_on(org, items)
    html = client.get(f"/packets/{packet.pk}/").content.decode()

    assert f'data-testid="deleted-{gone.pk}"' in html
    assert f'data-testid="changed-{edited.pk}"' in html
    assert f'data-testid="changed-{gone.pk}"' not in html


def test_a_snapshot_from_before_item_hashes_still_reads_and_flags(world, org):
    # given a snapshot frozen before items carried their record's hash
    packet = world["packet"]
    snap = PacketSnapshot.objects.get(packet=packet)
    data = snap.data
    for exp in data["expectations"]:
        for item in exp["items"]:
            item.pop("snapshot_sha256", None)
    PacketSnapshot.objects.filter(pk=snap.pk).update(data=data, sha256=canonical_sha256(data))

    body = api_client(org.committee).get(f"/api/v1/packets/{packet.pk}/export/?format=json")

    # the change is still seen: the copy's hash is computed from the copy itself
    items = items_of(body.json())
    assert items[world["edited"].pk]["work_item_changed"] is True
    assert items[world["gone"].pk]["work_item_deleted"] is True
    assert "snapshot_sha256" not in items[world["edited"].pk]


def test_a_newer_work_item_is_changed_even_when_the_items_snapshot_was_not_refreshed(
    org, cycle, ladder_version
):
    # given a packet item whose record a sync stored again, newer, but attributed to someone
    # else now (so erin's evidence snapshot is not refreshed)
    items, evidence = imported_items(org)
    packet = PacketFactory(person=org.engineer, cycle=cycle, ladder_version=ladder_version,
                           state="submitted", evidence=evidence)  # fmt: skip
    later = items[0].sys_updated_on + timedelta(hours=2)
    WorkItem.objects.filter(pk=items[0].pk).update(sys_updated_on=later, person=org.peer)

    body = api_client(org.manager).get(f"/api/v1/packets/{packet.pk}/export/?format=json").json()

    flags = {pk: i["work_item_changed"] for pk, i in items_of(body).items()}
    assert flags == {evidence[0].pk: True, evidence[1].pk: False}
    assert body["source_changes"] == {"deleted": 0, "changed": 1}
