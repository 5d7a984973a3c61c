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


def test_demo_org_prints_levels_as_they_are_now(ladder, capsys):
    call_command("demo_org")
    # erin was promoted in the demo (a decided packet sets the level the same way)
    Person.objects.filter(user__username="erin").update(level=3)
    capsys.readouterr()

    call_command("demo_org")

    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[3:] if line}
    assert "level 3" in lines["erin"] and "level 2" not in lines["erin"]
    assert "level 1" in lines["ken"]
    assert "level" not in lines["admin"]
