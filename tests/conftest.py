import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from rest_framework.test import APIClient

from apps.ladders.services import ladder_load_file
from apps.packets.models import PromotionCycle

from .factories import PASSWORD, AdminUserFactory, PersonFactory

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
def cycle(db):
    """An open promotion cycle: submissions due in ten days, coverage 50%."""
    today = timezone.localdate()
    return PromotionCycle.objects.create(
        name="H2", opens_on=today - timedelta(days=5),
        submission_deadline=timezone.now() + timedelta(days=10),
        decision_on=today + timedelta(days=20), min_coverage=0.5,
    )  # fmt: skip


@pytest.fixture(scope="session")
def spec() -> dict:
    """The public OpenAPI schema as served (rendered to JSON and back: plain dicts)."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(schema, renderer_context={}))
