"""manage.py servicenow_demo: wire the demo org to the local ServiceNow emulator.

--write-dataset PATH writes an emulator dataset whose users carry the demo people's emails;
--url URL creates (or updates) the demo connection, its sources and a few suggestion rules.
Idempotent.
"""

import json
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.people.models import Person
from servicenow.emulator.generate import demo_dataset
from servicenow.models import Connection, Source, SuggestionRule
from servicenow.services import connection_save, source_save

DEMO_USER, DEMO_PASSWORD = "integration", "integration-pass"  # the emulator's demo login

SOURCES = [
    # name, table, kind, base query
    ("People (sys_user)", "sys_user", Source.Kind.USERS, "active=true"),
    ("Incidents", "incident", Source.Kind.WORK_ITEMS, ""),
    ("Changes", "change_request", Source.Kind.WORK_ITEMS, ""),
    ("Problems", "problem", Source.Kind.WORK_ITEMS, ""),
    ("Stories", "rm_story", Source.Kind.WORK_ITEMS, ""),
    ("Requested items", "sc_req_item", Source.Kind.WORK_ITEMS, ""),
]
RULES = [
    # name, table, conditions, expectation codes, skills
    (
        "ML model incidents",
        "incident",
        [{"field": "category", "op": "=", "value": "ml_model"}],
        ["TE-3.3", "PSI-2.1"],
        ["MLflow"],
    ),
    (
        "Database incidents",
        "incident",
        [{"field": "category", "op": "=", "value": "database"}],
        ["PSI-1.2"],
        ["SQL"],
    ),
    ("Changes shipped", "change_request", [], ["TE-3.2"], ["CI/CD"]),
    ("Problems solved", "problem", [], ["PSI-2.1"], []),
    ("Stories delivered", "rm_story", [], ["CC-2.2"], ["Git"]),
]


class Command(BaseCommand):
    help = "Prepare the ServiceNow emulator dataset and connection for the demo."

    def add_arguments(self, parser):
        parser.add_argument("--write-dataset", metavar="PATH")
        parser.add_argument("--url", help="the emulator's URL, e.g. http://127.0.0.1:8001")

    def handle(self, *args, write_dataset, url, **options):
        if write_dataset:
            emails = list(
                Person.objects.exclude(email="")
                .filter(ladder__isnull=False)
                .order_by("pk")
                .values_list("email", flat=True)
            )
            dataset = _org_chart_as_here(demo_dataset(emails))
            Path(write_dataset).write_text(json.dumps(dataset), encoding="utf-8")
            self.stdout.write(f"emulator dataset for {len(emails)} people: {write_dataset}")
        if url:
            self._connect(url)

    def _connect(self, url: str) -> None:
        connection = Connection.objects.filter(name="Demo instance (emulator)").first()
        connection = connection or Connection(name="Demo instance (emulator)")
        connection.instance_url = url
        connection.auth_type = Connection.AuthType.BASIC
        connection.username = DEMO_USER
        connection.page_size = 200
        try:
            connection_save(connection=connection, password=DEMO_PASSWORD)
        except ValidationError as exc:  # e.g. a loopback URL with local instances off
            lines = [f"{field}: {m}" for field, ms in exc.message_dict.items() for m in ms]
            raise CommandError("; ".join(lines)) from None
        for name, table, kind, query in SOURCES:
            source = Source.objects.filter(connection=connection, table=table).first()
            source = source or Source(connection=connection, table=table)
            source.name, source.kind, source.query = name, kind, query
            source.interval_minutes = 15
            source_save(source=source)
        for name, table, conditions, codes, skills in RULES:
            SuggestionRule.objects.update_or_create(
                name=name,
                defaults={
                    "table": table,
                    "conditions": conditions,
                    "expectation_codes": codes,
                    "skills": skills,
                    "rationale": f"Suggested: {name.lower()}",
                },
            )
        self.stdout.write(f"demo connection to {url} with {len(SOURCES)} sources")


def _org_chart_as_here(dataset: dict) -> dict:
    """The users source is the org chart's source of truth, so the demo instance must agree
    with the demo org: its people's managers are the ones here, and nobody else in the
    instance reports to them. Changed rows get a fresh sys_updated_on, so an existing demo
    database picks them up."""
    users = dataset["tables"]["sys_user"]
    by_email = {u.get("email", "").lower(): u for u in users}
    ours = {}
    for email, manager_email in Person.objects.exclude(email="").values_list(
        "email", "manager__email"
    ):
        if email.lower() in by_email:
            ours[by_email[email.lower()]["sys_id"]] = (manager_email or "").lower()
    now = timezone.now().strftime("%Y-%m-%d %H:%M:%S")
    for user in users:
        if user["sys_id"] in ours:
            boss = by_email.get(ours[user["sys_id"]])
            wanted = boss["sys_id"] if boss else ""
        else:
            wanted = "" if user.get("manager") in ours else user.get("manager", "")
        if user.get("manager", "") != wanted:
            user["manager"] = wanted
            user["sys_updated_on"] = now
            user["sys_mod_count"] = str(int(user.get("sys_mod_count") or 0) + 1)
    return dataset
