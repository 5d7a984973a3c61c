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
