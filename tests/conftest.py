from pathlib import Path

import pytest
from rest_framework.test import APIClient

from apps.ladders.services import ladder_load_file

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
