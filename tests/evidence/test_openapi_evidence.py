"""The OpenAPI schema documents evidence bodies as the API returns them.

Responses are plain dicts built by serializers.evidence_bodies from the fields that
EvidenceOutSerializer (component "Evidence") declares. These tests hold the two together: the
component lists every field with its type, every operation that returns evidence points at
it, and real responses carry exactly the documented fields and validate against the schema.
"""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker

from apps.evidence.models import Evidence
from apps.ladders.models import Deliverable
from servicenow.models import Connection, Source, WorkItem

URL = "/api/v1/evidence/"
REF = "#/components/schemas/"


def component(spec: dict, name: str) -> dict:
    return spec["components"]["schemas"][name]


def resolve(spec: dict, schema: dict) -> dict:
    """Follow a $ref, or the single-$ref allOf that drf-spectacular writes for enums."""
    if "$ref" in schema:
        return component(spec, schema["$ref"].removeprefix(REF))
    if len(schema.get("allOf", [])) == 1:
        return resolve(spec, schema["allOf"][0])
    return schema


def validate_as(spec: dict, name: str, instance) -> None:
    """Validate a response body against a component (types, nullables, enums, formats)."""
    schema = {"$ref": f"{REF}{name}", "components": spec["components"]}
    OAS30ReadValidator(schema, format_checker=oas30_format_checker).validate(instance)


def assert_exact_fields(spec: dict, name: str, body: dict) -> None:
    """The body's keys are the component's properties, all of them required."""
    documented = component(spec, name)
    assert set(body) == set(documented["properties"]), name
    assert set(documented.get("required", [])) == set(documented["properties"]), name


# --- the schema ----------------------------------------------------------------------------


def test_the_evidence_component_documents_links_skills_and_attachments(spec):
    props = component(spec, "Evidence")["properties"]

    assert props["expectations"]["type"] == "array"
    assert props["expectations"]["items"] == {"type": "string"}
    assert props["skills"]["type"] == "array"
    assert props["skills"]["items"] == {"type": "string"}
    assert props["links"]["type"] == "array"
    link = resolve(spec, props["links"]["items"])
    assert set(link["properties"]) == {
        "expectation", "deliverable", "rationale", "origin", "ladder_change", "made_against",
    }  # fmt: skip
    assert link["properties"]["made_against"]["nullable"] is True
    assert link["properties"]["expectation"]["type"] == "string"
    assert link["properties"]["expectation"]["nullable"] is True
    assert link["properties"]["deliverable"]["type"] == "integer"
    assert link["properties"]["deliverable"]["nullable"] is True
    assert link["properties"]["rationale"]["type"] == "string"
    assert resolve(spec, link["properties"]["origin"])["enum"] == [
        "suggested",
        "engineer",
        "manager",
    ]
    assert props["attachments"]["type"] == "array"
    attachment = resolve(spec, props["attachments"]["items"])
    assert set(attachment["properties"]) == {
        "id", "name", "size", "content_type", "url", "created_at",
    }  # fmt: skip
    assert attachment["properties"]["size"]["type"] == "integer"
    assert attachment["properties"]["created_at"]["format"] == "date-time"


def test_the_evidence_component_types_the_other_fields(spec):
    props = component(spec, "Evidence")["properties"]

    assert set(props) == {
        "id", "person", "person_name", "title", "description", "description_html",
        "occurred_on", "occurred_until", "url", "source", "status", "visibility",
        "expectations", "links", "ladder_changed", "skills", "work_item", "work_item_deleted",
        "snapshot", "snapshot_sha256", "attachments", "suggestions", "corroborations",
        "deleted_at", "created_at", "updated_at",
    }  # fmt: skip
    suggestion = resolve(spec, props["suggestions"]["items"])
    assert set(suggestion["properties"]) == {"code", "score", "origin", "reason"}
    assert resolve(spec, suggestion["properties"]["origin"])["enum"] == [
        "rule", "learned", "similar",
    ]  # fmt: skip
    for name in ("occurred_on", "occurred_until"):
        assert (props[name]["format"], props[name].get("nullable")) == ("date", True)
    for name in ("created_at", "updated_at"):
        assert (props[name]["format"], props[name].get("nullable")) == ("date-time", None)
    assert props["deleted_at"]["nullable"] is True
    assert (props["work_item"]["type"], props["work_item"]["nullable"]) == ("integer", True)
    assert props["work_item_deleted"]["type"] == "boolean"
    assert props["snapshot"]["type"] == "object"
    assert (props["snapshot_sha256"]["type"], props["snapshot_sha256"]["nullable"]) == (
        "string", True,
    )  # fmt: skip
    assert resolve(spec, props["source"])["enum"] == ["manual", "servicenow"]
    assert resolve(spec, props["status"])["enum"] == ["candidate", "accepted", "dismissed"]
    assert resolve(spec, props["visibility"])["enum"] == ["private", "manager"]
    assert all(p.get("readOnly") for p in props.values())


def _json_schema(operation: dict, code: str) -> dict | None:
    content = operation["responses"][code].get("content") or {}
    return content.get("application/json", {}).get("schema")


@pytest.mark.parametrize(
    ("path", "method", "code"),
    [
        (URL, "post", "201"),
        (URL + "{id}/", "get", "200"),
        (URL + "{id}/", "put", "200"),
        (URL + "{id}/", "patch", "200"),
        (URL + "{id}/restore/", "post", "200"),
        (URL + "{id}/accept/", "post", "200"),
        (URL + "{id}/dismiss/", "post", "200"),
    ],
)
def test_operations_returning_evidence_document_the_evidence_component(spec, path, method, code):
    operation = spec["paths"][path][method]

    # one success answer; the rest are the error answers, each with the envelope
    assert {c for c in operation["responses"] if c.startswith("2")} == {code}
    assert _json_schema(operation, code) == {"$ref": f"{REF}Evidence"}
    errors = {c for c in operation["responses"] if not c.startswith("2")}
    assert {"401", "404"} & errors
    assert all(_json_schema(operation, c) == {"$ref": f"{REF}Error"} for c in errors - {"400"})


def test_the_list_documents_a_page_of_the_evidence_component(spec):
    page = resolve(spec, _json_schema(spec["paths"][URL]["get"], "200"))

    assert {"count", "next", "previous", "results"} <= set(page["properties"])
    assert page["properties"]["results"]["items"] == {"$ref": f"{REF}Evidence"}


def test_requests_keep_the_input_serializer(spec):
    def request_ref(path, method):
        return spec["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]

    assert request_ref(URL, "post") == {"$ref": f"{REF}EvidenceRequest"}
    assert request_ref(URL + "{id}/", "put") == {"$ref": f"{REF}EvidenceRequest"}
    assert request_ref(URL + "{id}/", "patch") == {"$ref": f"{REF}PatchedEvidenceRequest"}
    writable = component(spec, "EvidenceRequest")["properties"]
    assert {"title", "expectations", "links", "skills", "visibility"} <= set(writable)
    assert "LinkInRequest" in writable["links"]["items"]["$ref"]


# --- real responses ------------------------------------------------------------------------


@pytest.fixture
def full_item(engineer_api, ladder_version, media) -> int:
    """An evidence item with every list filled in: expectation and deliverable links,
    skills, an attachment, both dates."""
    deliverable = Deliverable.objects.filter(version=ladder_version).first()
    created = engineer_api.post(
        URL,
        {
            "title": "Shipped the ranker", "description": "**bold**",
            "occurred_on": "2025-02-01", "occurred_until": "2025-02-20",
            "url": "https://example.com/pr/1", "skills": ["Python"],
            "links": [
                {"expectation": "TE-2.1", "rationale": "Trained it."},
                {"deliverable": deliverable.pk, "rationale": "The design doc"},
            ],
        },
        format="json",
    )  # fmt: skip
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    uploaded = engineer_api.post(
        f"{URL}{pk}/attachments/",
        {"file": SimpleUploadedFile("notes.txt", b"hello, evidence\n")},
        format="multipart",
    )
    assert uploaded.status_code == 201, uploaded.json()
    return pk


@pytest.fixture
def imported_item(engineer) -> int:
    """A ServiceNow candidate: work item, snapshot, and a deleted work item (flagged)."""
    conn = Connection.objects.create(name="Test", instance_url="https://acme.service-now.com")
    source = Source.objects.create(connection=conn, name="incidents", table="incident")
    work_item = WorkItem.objects.create(
        connection=conn, source=source, table="incident", sys_id="b" * 32,
        number="INC0010002", sys_updated_on=timezone.now() - timedelta(days=1),
        deleted_at=timezone.now(),
    )  # fmt: skip
    item = Evidence.objects.create(
        person=engineer, title="Imported", source=Evidence.Source.SERVICENOW,
        status=Evidence.Status.CANDIDATE, work_item=work_item,
        snapshot={"number": "INC0010002", "state": "6"},
    )  # fmt: skip
    return item.pk


@pytest.mark.django_db
def test_a_detail_response_has_exactly_the_documented_fields(spec, engineer_api, full_item):
    response = engineer_api.get(f"{URL}{full_item}/")

    assert response.status_code == 200
    body = response.json()
    assert_exact_fields(spec, "Evidence", body)
    assert body["expectations"] == ["TE-2.1"] and body["skills"] == ["Python"]
    assert len(body["links"]) == 2 and len(body["attachments"]) == 1
    link_schema = resolve(spec, component(spec, "Evidence")["properties"]["links"]["items"])
    for link in body["links"]:
        assert set(link) == set(link_schema["properties"]) == set(link_schema["required"])
    att_schema = resolve(spec, component(spec, "Evidence")["properties"]["attachments"]["items"])
    assert set(body["attachments"][0]) == set(att_schema["properties"])
    validate_as(spec, "Evidence", body)


@pytest.mark.django_db
def test_an_imported_item_validates_against_the_schema(spec, engineer_api, imported_item):
    body = engineer_api.get(f"{URL}{imported_item}/").json()

    assert body["work_item"] is not None and body["work_item_deleted"] is True
    assert_exact_fields(spec, "Evidence", body)
    validate_as(spec, "Evidence", body)


@pytest.mark.django_db
def test_every_evidence_response_validates_against_the_schema(
    spec, engineer_api, full_item, imported_item
):
    detail = f"{URL}{full_item}/"
    page = engineer_api.get(URL)
    assert page.status_code == 200
    validate_as(spec, "PaginatedEvidenceList", page.json())
    assert len(page.json()["results"]) == 2
    for item in page.json()["results"]:
        assert_exact_fields(spec, "Evidence", item)

    responses = [
        engineer_api.post(URL, {"title": "Bare"}, format="json"),
        engineer_api.patch(detail, {"title": "Renamed"}, format="json"),
        engineer_api.put(detail, {"title": "Whole", "skills": ["SQL"]}, format="json"),
        engineer_api.post(f"{URL}{imported_item}/accept/", {}, format="json"),
        engineer_api.post(f"{URL}{imported_item}/dismiss/", format="json"),
    ]
    assert engineer_api.delete(detail).status_code == 204
    responses.append(engineer_api.post(f"{detail}restore/", format="json"))

    for response in responses:
        assert response.status_code in (200, 201), response.json()
        assert_exact_fields(spec, "Evidence", response.json())
        validate_as(spec, "Evidence", response.json())
