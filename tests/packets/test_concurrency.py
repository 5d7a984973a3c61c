"""Concurrent double transitions (DESIGN.md: "Every transition is one transaction, guarded
against concurrent double transitions"): two requests released at the same instant by a
barrier, each on its own thread, API client and database connection. Exactly one wins
(200), the other finds the state already moved (409), and only one transition is written.

On PostgreSQL the guard under test is the row lock (SELECT ... FOR UPDATE) the services
take before reading the state. On SQLite it is BEGIN IMMEDIATE (settings: a second writer
waits for the first). The test database there is an in-memory shared-cache database, where
a lock conflict fails at once ("database table is locked") instead of waiting, so
`sqlite_waits_like_a_file` gives it the busy wait the embedded file database has.
"""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from django.db import connection
from rest_framework.test import APIClient

from apps.packets.models import Assessment, Packet, PacketEvent, PacketSnapshot
from tests.factories import PacketFactory, level_codes

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sqlite_waits_like_a_file(monkeypatch):
    """On the in-memory shared-cache SQLite test database, retry a statement that met a
    lock ("database table is locked", SQLITE_LOCKED: it did nothing, and the busy timeout
    does not apply to it) until the lock clears, as the busy handler does for a file
    database. BEGIN IMMEDIATE goes through the same path, so writers queue up. Nothing
    changes on PostgreSQL."""
    if connection.vendor != "sqlite" or not connection.is_in_memory_db():
        return
    from django.db.backends.sqlite3.base import SQLiteCursorWrapper

    def waiting(method):
        def run(self, *args, **kwargs):
            deadline = time.monotonic() + 20
            while True:
                try:
                    return method(self, *args, **kwargs)
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.002)

        return run

    monkeypatch.setattr(SQLiteCursorWrapper, "execute", waiting(SQLiteCursorWrapper.execute))
    monkeypatch.setattr(
        SQLiteCursorWrapper, "executemany", waiting(SQLiteCursorWrapper.executemany)
    )


def race(*calls):
    """Run each (user, path, body) POST on its own thread, all released together."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, user, path, body):
        client = APIClient()
        client.force_authenticate(user)
        try:
            barrier.wait(timeout=10)
            results[i] = client.post(path, body, format="json")
        except BaseException as exc:  # reported by the assertion below, not lost in a thread
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, *call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a request hung"
    for result in results:
        assert not isinstance(result, BaseException), repr(result)
    return results


def _packet(org, cycle, ladder_version, evidence, state):
    return PacketFactory(
        person=org.engineer,
        cycle=cycle,
        ladder_version=ladder_version,
        state=state,
        evidence=evidence,
        reviewer=org.manager,
    )


@pytest.mark.parametrize("reviewers", [("manager", "manager"), ("manager", "director")],
                         ids=["same-manager-twice", "manager-and-skip-level"])  # fmt: skip
def test_two_endorsements_at_once(
    reviewers, sqlite_waits_like_a_file, org, cycle, ladder_version, engineer_evidence
):
    packet = _packet(org, cycle, ladder_version, engineer_evidence, "submitted")
    codes = level_codes(ladder_version, 3)
    body = {"comment": "Ready",
            "assessments": [{"expectation": c, "rating": "meets"} for c in codes]}  # fmt: skip
    path = f"/api/v1/packets/{packet.pk}/endorse/"

    responses = race(*[(org[who].user, path, body) for who in reviewers])

    by_status = sorted(r.status_code for r in responses)
    assert by_status == [200, 409], [r.json() for r in responses]
    assert Packet.objects.get(pk=packet.pk).state == "endorsed"
    assert PacketEvent.objects.filter(packet=packet, action="endorse").count() == 1
    # the loser's assessments went with its rolled-back transaction
    winner = next(r for r in responses if r.status_code == 200)
    winner_reviewer = org[reviewers[responses.index(winner)]]
    assert set(Assessment.objects.filter(packet=packet).values_list("reviewer_id", flat=True)) == {
        winner_reviewer.pk
    }
    loser = next(r for r in responses if r.status_code == 409)
    assert "endorsed" in loser.json()["error"]["message"]


def test_two_submits_at_once(
    sqlite_waits_like_a_file, org, cycle, ladder_version, engineer_evidence
):
    packet = _packet(org, cycle, ladder_version, engineer_evidence, "draft")
    path = f"/api/v1/packets/{packet.pk}/submit/"
    erin = org.engineer.user

    responses = race((erin, path, {}), (erin, path, {"comment": "again"}))

    assert sorted(r.status_code for r in responses) == [200, 409], [r.json() for r in responses]
    assert Packet.objects.get(pk=packet.pk).state == "submitted"
    assert PacketSnapshot.objects.filter(packet=packet).count() == 1
    assert PacketEvent.objects.filter(packet=packet, action="submit").count() == 1


def test_endorse_and_request_changes_at_once(
    sqlite_waits_like_a_file, org, cycle, ladder_version, engineer_evidence
):
    """Two different transitions out of the same state: one wins, the other is a 409."""
    packet = _packet(org, cycle, ladder_version, engineer_evidence, "submitted")
    codes = level_codes(ladder_version, 3)
    endorse = {"assessments": [{"expectation": c, "rating": "meets"} for c in codes]}

    responses = race(
        (org.manager.user, f"/api/v1/packets/{packet.pk}/endorse/", endorse),
        (org.director.user, f"/api/v1/packets/{packet.pk}/request-changes/", {"comment": "No"}),
    )

    assert sorted(r.status_code for r in responses) == [200, 409], [r.json() for r in responses]
    state = Packet.objects.get(pk=packet.pk).state
    winner = "endorsed" if responses[0].status_code == 200 else "changes_requested"
    assert state == winner
    moves = PacketEvent.objects.filter(packet=packet, from_state="submitted").exclude(
        action="submit"
    )
    assert list(moves.values_list("to_state", flat=True)) == [winner]
