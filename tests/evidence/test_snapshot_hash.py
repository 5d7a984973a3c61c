"""Each imported evidence item stores the sha256 of its snapshot's canonical form: defined
once (ladder_tracker.canonical), computed at import and at every refresh, shown by the API,
and backfilled by the migration for rows from before it."""

from __future__ import annotations

import hashlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from ladder_tracker.canonical import canonical_json, canonical_sha256, snapshot_sha256
from tests.factories import EvidenceFactory, api_client
from tests.factories import canonical_sha256 as oracle_sha256
from tests.packets.test_source_flags import sync_copy
from tests.servicenow.test_api import acme, make_work_items, plain_source

SNAPSHOT = {
    "number": "INC0000001",
    "short_description": "Café model — naïve retrain",
    "display": {"state": "Resolved"},
    "state": "6",
}


def test_the_canonical_form_is_sorted_compact_utf8():
    assert (
        canonical_json(SNAPSHOT)
        == (
            '{"display":{"state":"Resolved"},"number":"INC0000001",'
            '"short_description":"Café model — naïve retrain","state":"6"}'
        ).encode()
    )
    assert b"Caf\xc3\xa9" in canonical_json(SNAPSHOT)  # UTF-8 bytes, not a \\u escape
    assert canonical_sha256(SNAPSHOT) == hashlib.sha256(canonical_json(SNAPSHOT)).hexdigest()


def test_the_hash_does_not_depend_on_key_order_or_spacing():
    reordered = {"state": "6", "display": {"state": "Resolved"}, **SNAPSHOT}
    assert list(reordered) != list(SNAPSHOT)
    assert canonical_sha256(reordered) == canonical_sha256(SNAPSHOT)
    # the same as the test suite's own statement of DESIGN.md's rule
    assert canonical_sha256(SNAPSHOT) == oracle_sha256(SNAPSHOT)
    # and a different value is a different hash
    assert canonical_sha256({**SNAPSHOT, "state": "7"}) != canonical_sha256(SNAPSHOT)
    assert snapshot_sha256({}) is None and snapshot_sha256(None) is None


@pytest.mark.django_db
def test_import_and_refresh_store_the_hash_and_the_api_shows_it(org):
    (item,) = make_work_items(plain_source(acme()), 1, org.engineer)

    ev = sync_copy(item, org.engineer)
    first = ev.snapshot_sha256
    assert first == oracle_sha256(ev.snapshot)

    ev = sync_copy(item, org.engineer, short_description="Refreshed")
    assert ev.snapshot["short_description"] == "Refreshed"
    assert ev.snapshot_sha256 == oracle_sha256(ev.snapshot) != first

    body = api_client(org.engineer).get(f"/api/v1/evidence/{ev.pk}/").json()
    assert body["snapshot_sha256"] == ev.snapshot_sha256
    assert oracle_sha256(body["snapshot"]) == body["snapshot_sha256"]
    manual = EvidenceFactory(person=org.engineer)
    assert api_client(org.engineer).get(f"/api/v1/evidence/{manual.pk}/").json()[
        "snapshot_sha256"
    ] is None  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_the_migration_backfills_existing_rows(org):
    # given rows from before the column: the schema as of evidence 0005
    executor = MigrationExecutor(connection)
    before, after = (
        [("evidence", "0005_description_limit_and_shared_event")],
        [("evidence", "0006_snapshot_sha256_verification")],
    )
    executor.migrate(before)
    old = executor.loader.project_state(before).apps.get_model("evidence", "Evidence")
    rows = [
        old.objects.create(person_id=org.engineer.pk, title=f"Imported {i}", source="servicenow",
                           snapshot={**SNAPSHOT, "number": f"INC{i:07d}"})
        for i in range(3)
    ]  # fmt: skip
    manual = old.objects.create(person_id=org.engineer.pk, title="Manual")

    # when the migration runs
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(after)

    # then each imported row has its hash, the manual one none (read with the model as of
    # that migration: later ones add columns the table does not have yet)
    new = executor.loader.project_state(after).apps.get_model("evidence", "Evidence")
    for row in rows:
        ev = new.objects.get(pk=row.pk)
        assert ev.snapshot_sha256 == oracle_sha256(ev.snapshot)
    assert new.objects.get(pk=manual.pk).snapshot_sha256 is None
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db
def test_the_admin_shows_the_hash_and_the_last_verification_read_only(org, client):
    from django.utils import timezone

    from apps.evidence.models import EvidenceVerification
    from tests.factories import PASSWORD

    (item,) = make_work_items(plain_source(acme()), 1, org.engineer)
    ev = sync_copy(item, org.engineer)
    EvidenceVerification.objects.create(
        evidence=ev, result="changed", diff=[{"field": "state", "snapshot": "6", "live": "7"}],
        compared_sha256=ev.snapshot_sha256, verified_by=org.manager.user,
        verified_at=timezone.now(),
    )  # fmt: skip
    assert client.login(username="ada", password=PASSWORD)

    html = client.get(f"/admin/evidence/evidence/{ev.pk}/change/").content.decode()

    assert ev.snapshot_sha256 in html
    assert "Changed in ServiceNow" in html
    assert 'name="verification-0-result"' not in html  # shown, not editable
