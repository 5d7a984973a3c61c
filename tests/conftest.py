import json
from pathlib import Path

import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from rest_framework.test import APIClient

from apps.ladders.services import ladder_load_file

from .factories import (
    PASSWORD,
    AdminUserFactory,
    EvidenceFactory,
    Org,
    PersonFactory,
    PromotionCycleFactory,
    org_build,
)

ROOT = Path(__file__).resolve().parent.parent
LADDER_FILE = ROOT / "fixtures" / "ladders" / "ai-ml-engineer.yaml"


@pytest.fixture
def ladder_text() -> str:
    return LADDER_FILE.read_text(encoding="utf-8")


@pytest.fixture
def ladder_version(db):
    """The AI/ML ladder, loaded from its YAML file and published."""
    return ladder_load_file(path=LADDER_FILE, publish=True).version


@pytest.fixture
def ladder(ladder_version):
    return ladder_version.ladder


@pytest.fixture
def engineer(ladder):
    return PersonFactory(user__username="erin", ladder=ladder, level=2)


@pytest.fixture
def admin_user(db):
    return AdminUserFactory(username="root")


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def engineer_api(engineer):
    client = APIClient()
    client.force_authenticate(engineer.user)
    return client


@pytest.fixture
def admin_api(admin_user):
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


@pytest.fixture
def engineer_client(client, engineer):
    assert client.login(username=engineer.user.username, password=PASSWORD)
    return client


@pytest.fixture
def media(settings, tmp_path) -> Path:
    """Uploads go to a fresh folder per test."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return Path(settings.MEDIA_ROOT)


@pytest.fixture
def org(ladder) -> Org:
    """The org chart, by role (tests/factories.py `Org`): engineer erin → manager omar →
    director maria, erin's peer pete; otto → nina on another team; cora on the committee;
    ada an admin. Everyone on the AI/ML ladder."""
    return org_build(ladder=ladder)


@pytest.fixture
def engineer_evidence(org) -> list:
    """Three accepted evidence items of the org's engineer, "Work 0" to "Work 2"."""
    return [EvidenceFactory(person=org.engineer, title=f"Work {i}") for i in range(3)]


@pytest.fixture
def cycle(db):
    """An open promotion cycle: submissions due in ten days, coverage 50%."""
    return PromotionCycleFactory(name="H2")


@pytest.fixture(scope="session")
def spec() -> dict:
    """The public OpenAPI schema as served (rendered to JSON and back: plain dicts)."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(schema, renderer_context={}))


# --- single sign-on: a real OpenID provider in its own process -----------------------------

# Accounts at the provider (password tests.oidc_provider.provider.PROVIDER_PASSWORD). Their
# emails match the `org` fixture's people (erin@example.com...) in another case.
OIDC_PROVIDER_USERS = [
    {"username": "erin.idp", "email": "Erin@Example.COM", "name": "Erin", "email_verified": True},
    {"username": "pete.idp", "email": "pete@example.com", "email_verified": False},
    {"username": "sam.idp", "email": "Sam.Snow@example.com", "name": "Sam Snow"},
    {"username": "ada.idp", "email": "ada@example.com", "name": "Ada"},
    {"username": "newhire.idp", "email": "new.hire@example.com", "name": "Nell Hire"},
]


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory):
    """django-oauth-toolkit's OpenID provider (tests/oidc_provider), started once per run on a
    free port, with OIDC_PROVIDER_USERS and a confidential client whose redirect URIs are
    Django's test client (http://testserver) and the live server (http://localhost, any
    port)."""
    from tests.oidc_provider.provider import provider_start

    provider = provider_start(
        tmp_path_factory.mktemp("oidc-provider"),
        users=OIDC_PROVIDER_USERS,
        rp_urls=["http://testserver", "http://localhost"],
    )
    try:
        yield provider
    finally:
        provider.stop()


@pytest.fixture
def sso(settings, oidc_provider):
    """This project configured as the provider's relying party (discovery, no pinned
    endpoints)."""
    from apps.people.sso import sso_discovery_clear

    settings.OIDC_ISSUER = oidc_provider.issuer
    settings.OIDC_RP_CLIENT_ID = oidc_provider.client_id
    settings.OIDC_RP_CLIENT_SECRET = oidc_provider.client_secret
    sso_discovery_clear()
    yield oidc_provider
    sso_discovery_clear()
