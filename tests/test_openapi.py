"""The OpenAPI document generates and validates as OpenAPI 3."""

import pytest
import yaml
from openapi_spec_validator import validate


@pytest.mark.django_db
def test_schema_is_valid_openapi_3(engineer_api):
    response = engineer_api.get("/api/schema/")

    assert response.status_code == 200
    spec = yaml.safe_load(response.content)
    validate(spec)
    assert spec["openapi"].startswith("3.")
    for path in (
        "/api/v1/ladders/",
        "/api/v1/ladders/{slug}/",
        "/api/v1/ladders/{slug}/diff/",
        "/api/v1/ladders/{slug}/versions/",
        "/api/v1/people/me/",
    ):
        assert path in spec["paths"], path


@pytest.mark.django_db
def test_docs_page_renders(engineer_client):
    response = engineer_client.get("/api/docs/")

    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


ERROR_REF = "#/components/schemas/Error"
WRITES = {"post", "put", "patch", "delete"}


def operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method, operation


def error_schema(operation: dict, code: str) -> str | None:
    response = operation["responses"].get(code)
    if response is None:
        return None
    return response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")


def test_the_error_envelope_is_a_component(spec):
    error = spec["components"]["schemas"]["Error"]
    detail = spec["components"]["schemas"]["ErrorDetail"]

    assert error["properties"]["error"]["allOf"][0]["$ref"] == "#/components/schemas/ErrorDetail"
    assert set(detail["properties"]) == {"code", "message", "detail"}


def test_every_operation_declares_the_errors_it_can_answer(spec):
    """401 everywhere (all of the API needs a login), 403 on writes, 404 where the path names
    a record or the list pages, 400 where there is a body or a query: each with the envelope,
    unless the view documents that status with a body of its own."""
    missing = []
    count = 0
    for path, method, operation in operations(spec):
        count += 1
        where = f"{method.upper()} {path}"
        params = operation.get("parameters", [])
        wanted = {"401"}
        if method in WRITES:
            wanted.add("403")
        if any(p["in"] == "path" for p in params) or "page" in {p["name"] for p in params}:
            wanted.add("404")
        if "requestBody" in operation or any(p["in"] == "query" for p in params):
            wanted.add("400")
        for code in sorted(wanted):
            if code not in operation["responses"]:
                missing.append(f"{where}: {code}")
            elif code != "400" and error_schema(operation, code) != ERROR_REF:
                missing.append(f"{where}: {code} without the error envelope")

    assert count >= 73
    assert missing == []


def test_admin_only_reads_declare_403_and_conflicts_keep_their_409(spec):
    connections = spec["paths"]["/api/v1/servicenow/connections/"]["get"]
    me = spec["paths"]["/api/v1/people/me/"]["get"]
    submit = spec["paths"]["/api/v1/packets/{id}/submit/"]["post"]

    assert error_schema(connections, "403") == ERROR_REF
    assert "403" not in me["responses"]  # any signed-in person may read it
    assert set(submit["responses"]) >= {"200", "400", "401", "403", "404", "409"}
    assert error_schema(submit, "409") == ERROR_REF


def test_diff_queries_document_their_minimum(spec):
    for path in ("/api/v1/packets/{id}/diff/", "/api/v1/ladders/{slug}/diff/"):
        params = {p["name"]: p for p in spec["paths"][path]["get"]["parameters"]}
        assert params["from"]["schema"]["minimum"] == 1, path
        assert params["to"]["schema"]["minimum"] == 1, path


@pytest.mark.django_db
def test_real_errors_match_the_declared_envelope(spec, engineer_api, api, cycle):
    """A 401, 403s (a permission class, a rule in the view) and 404s as the API really
    sends them validate against the schema."""
    from tests.test_openapi_responses import assert_documented

    anonymous = api.get("/api/v1/people/me/")
    forbidden = engineer_api.get("/api/v1/servicenow/connections/")
    missing = engineer_api.get("/api/v1/evidence/999999/")
    page_past_end = engineer_api.get("/api/v1/evidence/?page=99")
    report = engineer_api.get(f"/api/v1/cycles/{cycle.pk}/report/")
    bad_format = engineer_api.get(f"/api/v1/cycles/{cycle.pk}/report/?format=xml")

    assert_documented(spec, "/api/v1/people/me/", "get", anonymous)
    assert_documented(spec, "/api/v1/servicenow/connections/", "get", forbidden)
    assert_documented(spec, "/api/v1/evidence/{id}/", "get", missing)
    assert_documented(spec, "/api/v1/evidence/", "get", page_past_end)
    assert_documented(spec, "/api/v1/cycles/{id}/report/", "get", report)
    answers = (anonymous, forbidden, missing, page_past_end, report)
    assert [r.status_code for r in answers] == [401, 403, 404, 404, 403]
    assert bad_format.status_code == 403  # refused before the format is read


@pytest.mark.django_db
def test_a_cycle_report_in_an_unknown_format_is_a_400(spec, admin_api, cycle):
    response = admin_api.get(f"/api/v1/cycles/{cycle.pk}/report/?format=xml")

    from tests.test_openapi_responses import assert_documented

    assert_documented(spec, "/api/v1/cycles/{id}/report/", "get", response)
    assert response.status_code == 400
    assert response.json()["error"]["detail"]["format"] == "json or csv"


@pytest.mark.django_db
def test_docs_page_serves_swagger_ui_from_this_origin(engineer_client):
    page = engineer_client.get("/api/docs/").content.decode()

    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css" in page
    assert "cdn.jsdelivr.net" not in page and "unpkg.com" not in page
