"""Real responses answer with a status code their operation documents, and their bodies
validate against the schema documented for that code.

One request per case, through the API client, across the apps: the evidence history (a plain
list, not a page), attachment removal (204, no body), bulk triage (`{"updated": n}`), the
other plain lists that actions return (level history, packet assessments, events,
snapshots), bodies built from dicts (coverage, snapshots, diffs, the cycle report, connection
checks), the 409s (packets, ladder drafts, ServiceNow deletes and syncs), 202 for a sync
request, and the import's two kinds of 400.
"""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker
from rest_framework.test import APIClient

from apps.evidence import services as evidence_services
from apps.evidence.models import Evidence, EvidenceEvent
from apps.ladders.services import ladder_load
from apps.people.models import LevelChange
from servicenow.emulator import Emulator
from servicenow.models import Connection, Source, SyncRun, WorkItem
from servicenow.services import connection_save, source_save
from tests.factories import PacketFactory, PersonFactory, api_client
from tests.servicenow.conftest import make_connection, make_dataset

EVIDENCE = "/api/v1/evidence/"
PEOPLE = "/api/v1/people/"
PACKETS = "/api/v1/packets/"
CYCLES = "/api/v1/cycles/"
SN = "/api/v1/servicenow/"


def _body(response) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def assert_documented(spec: dict, path: str, method: str, response) -> None:
    """The status code is one `method path` documents; a body has a documented media type
    and, for JSON, validates against the schema documented for that code."""
    where = f"{method.upper()} {path}"
    responses = spec["paths"][path][method]["responses"]
    code = str(response.status_code)
    assert code in responses, f"{where} answered {code}; documented: {sorted(responses)}"
    content = responses[code].get("content") or {}
    body = _body(response)
    if not content:
        assert body == b"", f"{where} {code}: a body, but none documented"
        return
    media = response["Content-Type"].split(";")[0].strip()
    assert media in content or "*/*" in content, f"{where} {code}: {media} not in {list(content)}"
    if media == "application/json":
        document = {**content[media]["schema"], "components": spec["components"]}
        validator = OAS30ReadValidator(document, format_checker=oas30_format_checker)
        validator.validate(json.loads(body))


def call(spec: dict, client, method: str, path: str, url: str, *args, **kwargs):
    """Make the request to `url` (an instance of the `path` template) and check it."""
    response = getattr(client, method)(url, *args, **kwargs)
    assert_documented(spec, path, method, response)
    return response


@pytest.fixture
def loginless(db):
    """A person with no login (and no ladder, no level)."""
    return PersonFactory(user=None, email="", name="No Login", ladder=None, level=None)


def _accepted(person, count: int) -> list[Evidence]:
    return [
        evidence_services.evidence_create(person=person, actor=person.user, title=f"Work {i}")
        for i in range(count)
    ]


# --- evidence ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_evidence_history_is_a_plain_list(spec, org):
    eng = org.engineer
    api = api_client(eng)
    pk = api.post(EVIDENCE, {"title": "Draft"}, format="json").json()["id"]
    api.patch(f"{EVIDENCE}{pk}/", {"title": "Renamed"}, format="json")
    # an event whose actor is gone: the actor is null
    EvidenceEvent.objects.create(evidence_id=pk, actor=None, action=EvidenceEvent.Action.UPDATED)

    response = call(spec, api, "get", EVIDENCE + "{id}/history/", f"{EVIDENCE}{pk}/history/")

    assert response.status_code == 200
    assert isinstance(response.json(), list) and len(response.json()) == 3


@pytest.mark.django_db
def test_attachment_download_and_removal(spec, org, media):
    api = api_client(org.engineer)
    pk = api.post(EVIDENCE, {"title": "With a file"}, format="json").json()["id"]
    upload = SimpleUploadedFile("notes.txt", b"hello\n", content_type="text/plain")
    attachment = call(
        spec, api, "post", EVIDENCE + "{id}/attachments/", f"{EVIDENCE}{pk}/attachments/",
        {"file": upload}, format="multipart",
    ).json()  # fmt: skip
    path = EVIDENCE + "{id}/attachments/{attachment_id}/"
    url = f"{EVIDENCE}{pk}/attachments/{attachment['id']}/"

    download = call(spec, api, "get", path, url)
    removed = call(spec, api, "delete", path, url)

    assert download.status_code == 200
    assert removed.status_code == 204


@pytest.mark.django_db
def test_bulk_triage_says_how_many_it_updated(spec, org):
    eng = org.engineer
    items = _accepted(eng, 2)
    Evidence.objects.filter(pk__in=[e.pk for e in items]).update(status=Evidence.Status.CANDIDATE)

    response = call(
        spec, api_client(eng), "post", EVIDENCE + "bulk/", EVIDENCE + "bulk/",
        {"ids": [e.pk for e in items], "action": "dismiss"}, format="json",
    )  # fmt: skip

    assert response.json() == {"updated": 2}


# --- people --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_people_bodies_with_nulls_validate(spec, org, loginless, admin_api):
    eng, director = org.engineer, org.director
    call(spec, admin_api, "patch", PEOPLE + "{id}/", f"{PEOPLE}{eng.pk}/", {"level": 3},
         format="json")  # fmt: skip
    LevelChange.objects.create(person=eng, from_level=3, to_level=4,
                               effective_on=timezone.localdate(), changed_by=None)  # fmt: skip

    listed = call(spec, admin_api, "get", PEOPLE, PEOPLE)
    history = call(spec, admin_api, "get", PEOPLE + "{id}/level-history/",
                   f"{PEOPLE}{eng.pk}/level-history/")  # fmt: skip
    me = call(spec, api_client(director), "get", PEOPLE + "me/", PEOPLE + "me/")

    loginless = next(p for p in listed.json()["results"] if p["name"] == "No Login")
    assert (loginless["username"], loginless["ladder"], loginless["email"]) == (None, None, "")
    assert [c["changed_by"] for c in history.json()] == ["root", None]
    assert me.json()["manager"] is None


@pytest.mark.django_db
def test_people_import_answers(spec, org, admin_api):
    def post(text: str | None):
        data = {"dry_run": True}
        if text is not None:
            data["file"] = SimpleUploadedFile("p.csv", text.encode(), content_type="text/csv")
        return call(spec, admin_api, "post", PEOPLE + "import/", PEOPLE + "import/", data,
                    format="multipart")  # fmt: skip

    good = post("username,email,name\nann,ann@example.com,Ann\n")
    bad_rows = post("username,email,name\nbob,not-an-email,Bob\n")
    no_file = post(None)

    assert good.status_code == 200 and good.json()["rows"] == 1
    assert bad_rows.status_code == 400 and bad_rows.json()["errors"]
    assert no_file.status_code == 400 and no_file.json()["error"]["code"] == "invalid"


# --- packets -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_packet_reads(spec, org, cycle, ladder_version, admin_api):
    eng, peer, manager = org.engineer, org.peer, org.manager
    endorsed = PacketFactory(
        person=peer,
        cycle=cycle,
        ladder_version=ladder_version,
        state="endorsed",
        evidence=_accepted(peer, 2),
        reviewer=manager,
    )
    again = PacketFactory(
        person=eng,
        cycle=cycle,
        ladder_version=ladder_version,
        state="changes_requested",
        evidence=_accepted(eng, 2),
        reviewer=manager,
    )
    api, manager_api = api_client(eng), api_client(manager)
    call(spec, api, "post", PACKETS + "{id}/submit/", f"{PACKETS}{again.pk}/submit/", {},
         format="json")  # fmt: skip

    def get(client, suffix: str, url_suffix: str | None = None, pk: int = again.pk):
        template = PACKETS + "{id}/" + suffix
        return call(spec, client, "get", template, f"{PACKETS}{pk}/{url_suffix or suffix}")

    coverage = get(api, "coverage/")
    assessments = get(manager_api, "assessments/", pk=endorsed.pk)
    events = get(api, "events/")
    snapshots = get(api, "snapshots/")
    snapshot = get(api, "snapshots/{number}/", "snapshots/1/")
    diff = get(manager_api, "diff/", "diff/?from=1&to=2")
    exports = [get(api, "export/", f"export/?format={f}") for f in ("json", "md", "pdf")]
    report = call(spec, admin_api, "get", CYCLES + "{id}/report/", f"{CYCLES}{cycle.pk}/report/")
    csv = call(spec, admin_api, "get", CYCLES + "{id}/report/",
               f"{CYCLES}{cycle.pk}/report/?format=csv")  # fmt: skip

    assert coverage.json()["overall"] == 1.0
    assert isinstance(assessments.json(), list) and assessments.json()
    assert [e["to_state"] for e in events.json()][-1] == "submitted"
    assert [s["number"] for s in snapshots.json()] == [1, 2]
    assert snapshot.json()["number"] == 1
    assert set(diff.json()) == {"added", "removed", "notes_changed", "narratives_changed",
                                "coverage"}  # fmt: skip
    assert [e.status_code for e in exports] == [200, 200, 200]
    assert report.json()["by_state"] == {"endorsed": 1, "submitted": 1}
    assert csv["Content-Type"].startswith("text/csv")


@pytest.mark.django_db
def test_packet_writes_and_their_conflicts(spec, org, cycle, ladder_version):
    eng = org.engineer
    _accepted(eng, 1)
    api = api_client(eng)

    created = call(spec, api, "post", PACKETS, PACKETS, {"cycle": cycle.pk}, format="json")
    second = call(spec, api, "post", PACKETS, PACKETS, {"cycle": cycle.pk}, format="json")
    pk = created.json()["id"]
    edited = call(spec, api, "patch", PACKETS + "{id}/", f"{PACKETS}{pk}/",
                  {"narratives": {"Technical Expertise": "Did it"}}, format="json")  # fmt: skip
    withdrawn = call(spec, api, "post", PACKETS + "{id}/withdraw/", f"{PACKETS}{pk}/withdraw/",
                     {}, format="json")  # fmt: skip
    again = {"narratives": {"Technical Expertise": "Again"}}
    blocked_edit = call(spec, api, "patch", PACKETS + "{id}/", f"{PACKETS}{pk}/", again,
                        format="json")  # fmt: skip
    blocked_move = call(spec, api, "post", PACKETS + "{id}/submit/", f"{PACKETS}{pk}/submit/",
                        {}, format="json")  # fmt: skip

    assert (created.status_code, second.status_code) == (201, 409)
    assert (edited.status_code, withdrawn.status_code) == (200, 200)
    assert (blocked_edit.status_code, blocked_move.status_code) == (409, 409)


# --- ladders -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_expectation_edits_on_drafts_and_published_versions(spec, admin_api, ladder, ladder_text):
    ladder_load(text=ladder_text.replace("Codes in Python/R", "Codes in Python or R"))
    path = "/api/v1/ladders/{slug}/versions/{number}/expectations/{code}/"

    def patch(number: int):
        url = f"/api/v1/ladders/{ladder.slug}/versions/{number}/expectations/TE-1.1/"
        return call(spec, admin_api, "patch", path, url, {"text": "Knows ML"}, format="json")

    assert (patch(2).status_code, patch(1).status_code) == (200, 409)


# --- ServiceNow ----------------------------------------------------------------------------


def _acme(name: str = "Acme") -> Connection:
    connection = Connection(name=name, instance_url="https://acme.service-now.com",
                            username="integration")  # fmt: skip
    return connection_save(connection=connection, password="s3cr3t-Pa55")


def _source(connection: Connection, **fields) -> Source:
    return source_save(source=Source(connection=connection, name="incident", table="incident",
                                     **fields))  # fmt: skip


@pytest.mark.django_db
def test_sync_requests_are_202_or_409(spec, admin_api):
    source = _source(_acme())
    disabled = _source(_acme("Other"), enabled=False)
    path = SN + "sources/{id}/sync/"

    accepted = call(spec, admin_api, "post", path, f"{SN}sources/{source.pk}/sync/", {},
                    format="json")  # fmt: skip
    SyncRun.objects.filter(pk=accepted.json()["run"]).update(heartbeat_at=timezone.now())
    busy = call(spec, admin_api, "post", path, f"{SN}sources/{source.pk}/sync/", {},
                format="json")  # fmt: skip
    off = call(spec, admin_api, "post", path, f"{SN}sources/{disabled.pk}/sync/", {},
               format="json")  # fmt: skip
    runs = call(spec, admin_api, "get", SN + "runs/", SN + "runs/")
    run = call(spec, admin_api, "get", SN + "runs/{id}/", f"{SN}runs/{accepted.json()['run']}/")

    assert [r.status_code for r in (accepted, busy, off)] == [202, 409, 409]
    assert runs.json()["count"] == 1 and run.json()["status"] == "queued"


@pytest.mark.django_db
def test_deletes_in_use_are_409_and_the_rest_204(spec, admin_api):
    used = _acme()
    source = _source(used)
    WorkItem.objects.create(
        connection=used, source=source, table="incident", sys_id="a" * 32, number="INC0000001",
        sys_updated_on=timezone.now(), person=None,
    )  # fmt: skip
    unused = _acme("Unused")

    items = call(spec, admin_api, "get", SN + "work-items/", SN + "work-items/")
    blocked_source = call(spec, admin_api, "delete", SN + "sources/{id}/",
                          f"{SN}sources/{source.pk}/")  # fmt: skip
    blocked_connection = call(spec, admin_api, "delete", SN + "connections/{id}/",
                              f"{SN}connections/{used.pk}/")  # fmt: skip
    deleted = call(spec, admin_api, "delete", SN + "connections/{id}/",
                   f"{SN}connections/{unused.pk}/")  # fmt: skip

    assert items.json()["results"][0]["person"] is None
    assert (blocked_source.status_code, blocked_connection.status_code) == (409, 409)
    assert deleted.status_code == 204


@pytest.fixture
def emulator():
    emu = Emulator(make_dataset(incidents=5, users=3)).start()
    yield emu
    emu.stop()


@pytest.mark.django_db
def test_connection_checks_validate_whether_they_pass_or_fail(spec, admin_api, emulator):
    good = make_connection(emulator)
    bad = connection_save(connection=make_connection(emulator, name="Bad"), password="wrong")
    path = SN + "connections/{id}/test/"

    passed = call(spec, admin_api, "post", path, f"{SN}connections/{good.pk}/test/")
    failed = call(spec, admin_api, "post", path, f"{SN}connections/{bad.pk}/test/")

    assert passed.json()["ok"] is True and "elapsed_ms" in passed.json()
    assert failed.json()["ok"] is False and failed.json()["error"]
    documented = spec["components"]["schemas"]["ConnectionCheck"]["properties"]
    assert set(passed.json()) | set(failed.json()) <= set(documented)


# --- the error answers every operation declares (ladder_tracker/schema.py) -----------------


@pytest.mark.django_db
def test_refusals_validate_against_the_declared_error_envelope(spec, org, cycle):
    eng, api = org.engineer, api_client(org.engineer)
    anonymous = APIClient()

    unauthenticated = call(spec, anonymous, "post", EVIDENCE, EVIDENCE, {"title": "x"},
                           format="json")  # fmt: skip
    not_admin = call(spec, api, "post", CYCLES, CYCLES, {"name": "H9"}, format="json")
    out_of_scope = call(spec, api, "get", PACKETS + "{id}/coverage/",
                        f"{PACKETS}999999/coverage/")  # fmt: skip
    bad_body = call(spec, api, "post", EVIDENCE + "bulk/", EVIDENCE + "bulk/",
                    {"ids": [2**64], "action": "accept"}, format="json")  # fmt: skip

    assert [r.status_code for r in (unauthenticated, not_admin, out_of_scope, bad_body)] == [
        401, 403, 404, 400,
    ]  # fmt: skip
    assert unauthenticated["WWW-Authenticate"].startswith("Token")
    assert bad_body.json()["error"]["detail"]["ids"]
    assert eng.evidence.count() == 0
