import pytest
from django.core.management import CommandError, call_command

from apps.people.models import Person

pytestmark = pytest.mark.django_db


def test_demo_org_creates_people_once_and_prints_logins(ladder, capsys):
    call_command("demo_org")
    call_command("demo_org")

    out = capsys.readouterr().out
    assert Person.objects.count() == 8
    assert "demo org: 8 people created" in out and "demo org: 0 people created" in out
    assert "password for all: demo-pass-2026" in out
    erin = Person.objects.get(user__username="erin")
    assert (erin.level, erin.manager.user.username, erin.ladder.slug) == (
        2,
        "omar",
        "ai-ml-engineer",
    )
    assert Person.objects.get(user__username="admin").user.is_staff


def test_demo_org_needs_the_ladder(db):
    with pytest.raises(CommandError, match="Load the ladder"):
        call_command("demo_org")
