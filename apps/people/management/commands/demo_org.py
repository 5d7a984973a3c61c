"""manage.py demo_org: a small demo organisation with printed logins (idempotent)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.ladders.models import Ladder
from apps.people.models import Person
from apps.people.services import person_create

DEMO_PASSWORD = "demo-pass-2026"  # demo only; printed on purpose

# username, name, title, level, manager username, committee, admin
DEMO_PEOPLE = [
    ("admin", "Ada Admin", "Platform admin", None, None, False, True),
    ("maria", "Maria Manager", "Engineering Manager, ML Platform", 5, None, True, False),
    ("omar", "Omar Okafor", "Engineering Manager, Applied ML", 4, "maria", False, False),
    ("erin", "Erin Engineer", "AI/ML Engineer", 2, "omar", False, False),
    ("ken", "Ken Kowalski", "AI/ML Engineer", 1, "omar", False, False),
    ("lena", "Lena Li", "Senior AI/ML Engineer", 3, "maria", False, False),
    ("sam", "Sam Singh", "AI/ML Engineer", 2, "maria", False, False),
    ("cora", "Cora Committee", "Principal Engineer", 5, None, True, False),
]


class Command(BaseCommand):
    help = "Create the demo organisation (admin, two managers, engineers, a committee member)."

    def add_arguments(self, parser):
        parser.add_argument("--ladder", default="ai-ml-engineer")

    @transaction.atomic
    def handle(self, *args, ladder, **options):
        ladder_obj = Ladder.objects.filter(slug=ladder).first()
        if ladder_obj is None:
            raise CommandError(f"Load the ladder {ladder!r} first (manage.py load_ladder).")
        users = get_user_model().objects
        created = 0
        for username, name, title, level, manager, committee, is_admin in DEMO_PEOPLE:
            if users.filter(username=username).exists():
                continue
            person_create(
                username=username,
                email=f"{username}@example.com",
                name=name,
                title=title,
                password=DEMO_PASSWORD,
                ladder=None if is_admin else ladder_obj,
                level=level,
                manager=Person.objects.get(user__username=manager) if manager else None,
                is_committee=committee,
                is_admin=is_admin,
            )
            created += 1
        self.stdout.write(self.style.SUCCESS(f"demo org: {created} people created"))
        self.stdout.write(f"\nLogins (password for all: {DEMO_PASSWORD})")
        managers = {p[4] for p in DEMO_PEOPLE if p[4]}
        # Levels as they are now (a promotion in the demo changes them), not as first created.
        current = dict(
            Person.objects.filter(user__username__in=[p[0] for p in DEMO_PEOPLE]).values_list(
                "user__username", "level"
            )
        )
        for username, name, _title, _level, _manager, committee, is_admin in DEMO_PEOPLE:
            level = current.get(username)
            flags = (
                ("admin", is_admin),
                ("manager", username in managers),
                ("committee", committee),
            )
            role = "+".join(label for label, has in flags if has) or "engineer"
            lvl = f"level {level}" if level else ""
            self.stdout.write(f"  {username:<8} {role:<18} {lvl:<8} {name}")
