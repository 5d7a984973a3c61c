"""A small hand-written ServiceNow instance (the emulator, real HTTP) where erin's incident
and change were seen by others, and the org's people mapped to its users."""

from __future__ import annotations

from apps.evidence.models import Evidence
from apps.people.models import Person
from servicenow.emulator import Emulator
from tests.servicenow.conftest import make_connection, make_source, run_sync


def sid(n: int) -> str:
    return f"{n:032x}"


U_ERIN, U_OMAR, U_PETE, U_CORA, U_OTTO, U_STRANGER, U_NINA = (sid(i) for i in range(1, 8))
INC, CHG = sid(100), sid(200)
STAMP = "2026-10-01 10:00:00"


def user(sys_id: str, name: str, email: str) -> dict:
    return {
        "sys_id": sys_id,
        "user_name": name,
        "email": email,
        "name": name.title(),
        "active": "true",
        "sys_updated_on": STAMP,
    }


def dataset() -> dict:
    item = {"state": "6", "priority": "2", "sys_updated_on": STAMP, "opened_at": STAMP}
    return {
        "tables": {
            "sys_user": [
                user(U_ERIN, "erin", "erin@example.com"),
                # omar is known here by his email only (no ServiceNow sys_id on his person)
                user(U_OMAR, "omar.s", "Omar@Example.com"),
                user(U_PETE, "pete", "pete@example.com"),
                user(U_CORA, "cora", "cora@example.com"),
                user(U_OTTO, "otto", "otto@example.com"),
                user(U_STRANGER, "stranger", "stranger@elsewhere.com"),
                user(U_NINA, "nina", "nina@example.com"),
            ],
            "incident": [
                {
                    **item,
                    "sys_id": INC,
                    "number": "INC0000100",
                    "short_description": "Fix the model server's memory leak",
                    "assigned_to": U_ERIN,
                    "additional_assignee_list": f"{U_PETE},{U_STRANGER}",
                    "caller_id": U_CORA,
                    "opened_by": U_ERIN,  # the owner: never suggested
                },
            ],
            "change_request": [
                {
                    **item,
                    "sys_id": CHG,
                    "number": "CHG0000200",
                    "short_description": "Roll out the new GPU pool",
                    "assigned_to": U_ERIN,
                    "additional_assignee_list": "",
                    "opened_by": U_STRANGER,
                },
            ],
            "sys_journal_field": [
                {"sys_id": sid(300), "element_id": INC, "name": "incident",
                 "element": "work_notes", "value": "heap dump attached",
                 "sys_created_by": "omar.s", "sys_created_on": STAMP},
                {"sys_id": sid(301), "element_id": INC, "name": "incident",
                 "element": "comments", "value": "works for me now",
                 "sys_created_by": "pete", "sys_created_on": STAMP},
                {"sys_id": sid(302), "element_id": INC, "name": "incident",
                 "element": "work_notes", "value": "me too", "sys_created_by": "stranger",
                 "sys_created_on": STAMP},
                # another record's note and another field: not a witness of INC
                {"sys_id": sid(303), "element_id": CHG, "name": "change_request",
                 "element": "work_notes", "value": "x", "sys_created_by": "nina",
                 "sys_created_on": STAMP},
                {"sys_id": sid(304), "element_id": INC, "name": "incident",
                 "element": "close_notes", "value": "x", "sys_created_by": "otto",
                 "sys_created_on": STAMP},
            ],
            "sysapproval_approver": [
                {"sys_id": sid(400), "sysapproval": CHG, "source_table": "change_request",
                 "approver": U_OTTO, "state": "approved", "sys_created_on": STAMP},
                {"sys_id": sid(401), "sysapproval": CHG, "source_table": "change_request",
                 "approver": U_STRANGER, "state": "rejected", "sys_created_on": STAMP},
                {"sys_id": sid(402), "sysapproval": CHG, "source_table": "change_request",
                 "approver": U_ERIN, "state": "approved", "sys_created_on": STAMP},
            ],
        }
    }  # fmt: skip


def map_people(org) -> None:
    for person, sys_id in [
        (org.engineer, U_ERIN),
        (org.peer, U_PETE),
        (org.committee, U_CORA),
        (org.other_engineer, U_OTTO),
        (org.other_manager, U_NINA),
    ]:
        Person.objects.filter(pk=person.pk).update(servicenow_sys_id=sys_id)
    # omar: matched by email (case-insensitive), no sys_id
    Person.objects.filter(pk=org.manager.pk).update(email="omar@example.com")


def sync_items(emu: Emulator, org) -> tuple[Evidence, Evidence]:
    """Erin's imported incident and change (candidates made by a real sync)."""
    map_people(org)
    connection = make_connection(emu)
    for table in ("incident", "change_request"):
        run = run_sync(make_source(connection, table), "full")
        assert run.status == "succeeded", run.error
    incident = Evidence.objects.get(person=org.engineer, work_item__sys_id=INC)
    change = Evidence.objects.get(person=org.engineer, work_item__sys_id=CHG)
    return incident, change
