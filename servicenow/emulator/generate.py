"""Deterministic synthetic ServiceNow datasets for the emulator (demo, tests, benchmarks).

``generate_dataset`` builds users with a manager tree and incidents (plus a few dozen
change requests, problems, stories and requested items) whose ``sys_updated_on`` values
are spread over the last year with large same-second bursts, the shape that breaks naive
incremental sync. Same arguments and seed give the same dataset. Also a command line:

    python -m servicenow.emulator.generate --incidents N --users U --out PATH
        [--seed S] [--people-emails a@x,b@y] [--no-other-tables]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .server import DEFAULT_CREDENTIALS, DEFAULT_NUMERIC_FIELDS, DEFAULT_REFERENCE_FIELDS

Row = dict[str, str]

DAY = 86_400
YEAR = 365 * DAY
OTHER_TABLE_ROWS = 40  # "a few dozen" rows in each non-incident table

FIRST_NAMES = (
    "Ada",
    "Ben",
    "Chloe",
    "Dev",
    "Elena",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kavya",
    "Liam",
    "Maya",
    "Noah",
    "Olga",
    "Priya",
    "Quentin",
    "Rosa",
    "Sam",
    "Tariq",
    "Uma",
    "Victor",
    "Wen",
    "Ximena",
    "Yusuf",
    "Zoe",
    "Aisha",
    "Bruno",
    "Carmen",
    "Dmitri",
)
LAST_NAMES = (
    "Anders",
    "Banerjee",
    "Castillo",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ito",
    "Jensen",
    "Kowalski",
    "Lopez",
    "Mensah",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Ueda",
    "Varga",
    "Wong",
    "Yilmaz",
    "Zhang",
    "Moreau",
)
TITLES = (
    "ML Engineer",
    "Senior ML Engineer",
    "Staff ML Engineer",
    "Data Scientist",
    "MLOps Engineer",
    "Data Engineer",
    "Engineering Manager",
    "Principal Engineer",
    "Site Reliability Engineer",
    "Software Engineer",
)

SUBJECTS = (
    "feature store",
    "training pipeline",
    "model registry",
    "inference service",
    "Airflow DAG",
    "Spark job",
    "Kafka consumer",
    "embedding index",
    "GPU node pool",
    "MLflow tracking server",
    "batch scoring job",
    "A/B test dashboard",
    "data warehouse",
    "VPN gateway",
    "SSO login",
    "Jupyter hub",
    "PostgreSQL replica",
    "S3 bucket policy",
    "recommendation model",
    "fraud detection model",
    "forecasting model",
    "label queue",
    "CI runner",
    "Kubernetes ingress",
    "vector database",
)
INCIDENT_TEMPLATES = (
    "{s} failing since last deploy",
    "{s} latency above SLO",
    "{s} returns 500 errors",
    "Cannot access {s}",
    "{s} out of memory",
    "Data drift alert on {s}",
    "{s} stuck in pending state",
    "Stale results from {s}",
    "{s} permissions error",
    "Disk full on {s}",
    "{s} accuracy dropped after retrain",
    "Timeouts calling {s}",
    "Schema mismatch in {s}",
    "{s} certificate expired",
    "Intermittent failures in {s}",
    "Request for access to {s}",
    "{s} nightly run missed",
    "High cost alert on {s}",
)
DESCRIPTION_TEMPLATES = (
    "Users report that the {s} stopped working this morning. Logs show repeated retries.",
    "Monitoring flagged the {s}. Suspect a configuration change rolled out yesterday.",
    "The {s} has been degrading for a week; need root cause and a fix before quarter end.",
    "After the upgrade the {s} behaves differently. Rolled back one node to compare.",
    "Alert fired for the {s}. Impact limited to internal analytics for now.",
)
CHANGE_TEMPLATES = (
    "Upgrade {s}",
    "Migrate {s} to new cluster",
    "Roll out new version of {s}",
    "Decommission legacy {s}",
    "Scale out {s}",
    "Patch {s} for CVE",
)
PROBLEM_TEMPLATES = (
    "Recurring outages of {s}",
    "Root cause of {s} slowness",
    "Memory leak in {s}",
    "Flaky behaviour of {s} under load",
)
STORY_TEMPLATES = (
    "As a data scientist I want the {s} to expose metrics",
    "Automate retraining for the {s}",
    "Add monitoring to the {s}",
    "Reduce cost of the {s}",
    "Document the {s} runbook",
)
REQUEST_TEMPLATES = (
    "Access to {s}",
    "New GPU quota for {s}",
    "Service account for {s}",
    "Increase storage for {s}",
)
CATEGORIES = ("software", "network", "database", "inquiry", "ml_model", "hardware")
INCIDENT_STATES = ("1", "2", "3", "6", "7")
INCIDENT_STATE_WEIGHTS = (10, 20, 5, 30, 35)
CLOSE_CODES = ("Solved (Permanently)", "Solved (Work Around)", "Not Solved (Not Reproducible)")


def _timestamp(epoch: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def _default_end() -> datetime:
    # Midnight today (UTC): reproducible within a day, and every generated timestamp is
    # in the past, so rows the emulator edits later always sort after the dataset.
    now = datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _name_from_email(email: str) -> tuple[str, str, str, str]:
    """user_name, first_name, last_name, name from an address like ``erin.hale@x``."""
    local = email.split("@", 1)[0]
    parts = [part.capitalize() for part in re.split(r"[._\-+]+", local) if part]
    if not parts:
        parts = [local.capitalize() or "User"]
    return local, parts[0], " ".join(parts[1:]), " ".join(parts)


class _Generator:
    def __init__(self, seed: int, end: datetime) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - reproducible fake data
        self.end = int(end.timestamp())
        self.start = self.end - YEAR

    def sys_id(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def users(self, count: int, people_emails: Sequence[str]) -> list[Row]:
        rng = self.rng
        rows: list[Row] = []
        for index in range(count):
            if index < len(people_emails):
                email = people_emails[index]
                user_name, first, last, name = _name_from_email(email)
            else:
                first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
                user_name = f"{first}.{last}{index}".lower()
                email = f"{user_name}@example.com"
                name = f"{first} {last}"
            # Each user reports to an earlier one, so the manager links form a tree.
            manager = rows[rng.randrange(max(1, (index + 1) // 3))]["sys_id"] if index else ""
            created = self.start - rng.randrange(2 * YEAR)
            updated = rng.randrange(max(created, self.start), self.end)
            rows.append(
                {
                    "sys_id": self.sys_id(),
                    "user_name": user_name,
                    "email": email,
                    "first_name": first,
                    "last_name": last,
                    "name": name,
                    "title": rng.choice(TITLES),
                    "manager": manager,
                    "active": "true",
                    "sys_created_on": _timestamp(created),
                    "sys_updated_on": _timestamp(updated),
                    "sys_mod_count": str(rng.randrange(0, 6)),
                }
            )
        return rows

    def update_times(self, count: int):
        """Yield (created, updated) epoch pairs; many consecutive rows share one second.

        Mimics bulk updates and imports: roughly two thirds of the rows fall in bursts of
        20-380 rows stamped with the very same sys_updated_on.
        """
        rng = self.rng
        left = 0
        updated = self.end
        for index in range(count):
            if left == 0:
                updated = rng.randrange(self.start + DAY, self.end)
                if index == 0:
                    left = max(2, min(50, count // 20))  # always at least one burst
                elif rng.random() < 0.01:
                    left = rng.randint(20, 380)
                else:
                    left = 1
            left -= 1
            created = max(self.start, updated - rng.randrange(0, 20 * DAY))
            yield created, updated


def _assignee_picker(rng: random.Random, users: list[Row], people_count: int):
    user_ids = [row["sys_id"] for row in users]
    people_ids = user_ids[:people_count]

    def pick() -> str:
        if people_ids and rng.random() < 0.9:
            return rng.choice(people_ids)
        return rng.choice(user_ids)

    return pick


def _incidents(gen: _Generator, count: int, users: list[Row], people_count: int) -> list[Row]:
    rng = gen.rng
    user_ids = [row["sys_id"] for row in users]
    assignee = _assignee_picker(rng, users, people_count)
    short_texts = [t.format(s=s) for t in INCIDENT_TEMPLATES for s in SUBJECTS]
    long_texts = [t.format(s=s) for t in DESCRIPTION_TEMPLATES for s in SUBJECTS]
    stamp_cache: dict[int, str] = {}

    def stamp(epoch: int) -> str:
        # Rows of a burst share one string object: cheaper to build and to hold.
        text = stamp_cache.get(epoch)
        if text is None:
            text = stamp_cache[epoch] = _timestamp(epoch)
        return text

    rows: list[Row] = []
    choice, randrange, choices = rng.choice, rng.randrange, rng.choices
    states = choices(INCIDENT_STATES, weights=INCIDENT_STATE_WEIGHTS, k=count)
    for index, (created, updated) in enumerate(gen.update_times(count)):
        state = states[index]
        impact, urgency = randrange(1, 4), randrange(1, 4)
        assigned = assignee()
        resolved = state in ("6", "7")
        resolved_at = updated - randrange(0, max(1, min(3 * DAY, updated - created)))
        rows.append(
            {
                "sys_id": gen.sys_id(),
                "number": f"INC{10000 + index + 1:07d}",
                "short_description": choice(short_texts),
                "description": choice(long_texts),
                "state": state,
                "active": "false" if resolved else "true",
                "impact": str(impact),
                "urgency": str(urgency),
                # ServiceNow's default priority matrix: impact + urgency - 1.
                "priority": str(impact + urgency - 1),
                "category": choice(CATEGORIES),
                "assigned_to": assigned,
                "opened_by": choice(user_ids),
                "caller_id": choice(user_ids),
                "resolved_by": assigned if resolved else "",
                "opened_at": stamp(created),
                "resolved_at": stamp(resolved_at) if resolved else "",
                "closed_at": stamp(updated) if state == "7" else "",
                "close_code": choice(CLOSE_CODES) if resolved else "",
                "reassignment_count": str(randrange(0, 4)),
                "sys_created_on": stamp(created),
                "sys_updated_on": stamp(updated),
                "sys_mod_count": str(randrange(2, 15) if resolved else randrange(0, 6)),
            }
        )
    return rows


def _work_items(
    gen: _Generator,
    users: list[Row],
    people_count: int,
    prefix: str,
    first_number: int,
    templates: Sequence[str],
    states: Sequence[str],
    extra: dict[str, Sequence[str]],
) -> list[Row]:
    rng = gen.rng
    user_ids = [row["sys_id"] for row in users]
    assignee = _assignee_picker(rng, users, people_count)
    rows: list[Row] = []
    for index, (created, updated) in enumerate(gen.update_times(OTHER_TABLE_ROWS)):
        impact, urgency = rng.randrange(1, 4), rng.randrange(1, 4)
        subject = rng.choice(SUBJECTS)
        row = {
            "sys_id": gen.sys_id(),
            "number": f"{prefix}{first_number + index:07d}",
            "short_description": rng.choice(templates).format(s=subject),
            "description": rng.choice(DESCRIPTION_TEMPLATES).format(s=subject),
            "state": rng.choice(states),
            "impact": str(impact),
            "urgency": str(urgency),
            "priority": str(impact + urgency - 1),
            "assigned_to": assignee(),
            "opened_by": rng.choice(user_ids),
            "opened_at": _timestamp(created),
            "sys_created_on": _timestamp(created),
            "sys_updated_on": _timestamp(updated),
            "sys_mod_count": str(rng.randrange(0, 8)),
        }
        for field, values in extra.items():
            row[field] = rng.choice(values)
        rows.append(row)
    return rows


WITNESS_ROWS = 3000  # work items that may get co-assignees, work notes and approvals
NOTE_TEXTS = (
    "Checked the logs, the retry storm started after the deploy.",
    "Reproduced on staging; attaching the trace.",
    "Rolled back the config, watching error rates.",
    "Confirmed fixed with the customer.",
    "Reviewed the change plan, looks safe.",
)
APPROVAL_STATES = ("approved", "approved", "approved", "rejected", "requested")


def _add_witnesses(
    rng: random.Random, tables: dict[str, list[Row]], users: list[Row], people_count: int
) -> None:
    """Co-assignees, journal entries and approvals for the first WITNESS_ROWS incidents and
    every change, by users who are mostly the dataset's people."""
    pick = _assignee_picker(rng, users, people_count)
    names = {row["sys_id"]: row["user_name"] for row in users}
    journal: list[Row] = []
    approvals: list[Row] = []

    def sys_id() -> str:
        return f"{rng.getrandbits(128):032x}"

    def others(owner: str, count: int) -> list[str]:
        chosen: list[str] = []
        for _ in range(count * 3):
            if len(chosen) == count:
                break
            user = pick()
            if user != owner and user not in chosen:
                chosen.append(user)
        return chosen

    for table in ("incident", "change_request"):
        for index, row in enumerate(tables.get(table, ())):
            if index >= WITNESS_ROWS:
                row["additional_assignee_list"] = ""
                continue
            owner = row.get("assigned_to", "")
            co = others(owner, rng.randint(1, 2)) if rng.random() < 0.5 else []
            row["additional_assignee_list"] = ",".join(co)
            stamp = row["sys_updated_on"]
            if rng.random() < 0.7:
                for author in others(owner, rng.randint(1, 3)):
                    journal.append(
                        {
                            "sys_id": sys_id(),
                            "element_id": row["sys_id"],
                            "name": table,
                            "element": "work_notes" if rng.random() < 0.7 else "comments",
                            "value": rng.choice(NOTE_TEXTS),
                            "sys_created_by": names[author],
                            "sys_created_on": stamp,
                            "sys_updated_on": stamp,
                        }
                    )
            if table == "change_request":
                for approver in others(owner, rng.randint(1, 2)):
                    approvals.append(
                        {
                            "sys_id": sys_id(),
                            "sysapproval": row["sys_id"],
                            "source_table": table,
                            "approver": approver,
                            "state": rng.choice(APPROVAL_STATES),
                            "sys_created_on": stamp,
                            "sys_updated_on": stamp,
                        }
                    )
    tables["sys_journal_field"] = journal
    tables["sysapproval_approver"] = approvals


def generate_dataset(
    incidents: int,
    users: int,
    seed: int = 1,
    people_emails: Sequence[str] = (),
    other_tables: bool = True,
    end: datetime | None = None,
    witnesses: bool = True,
) -> dict[str, Any]:
    """Build a dataset dict for :class:`~servicenow.emulator.Emulator`.

    The first ``len(people_emails)`` users carry those addresses and get ~90% of the
    assignments. ``witnesses`` adds who else saw the work (corroborators): co-assignees
    (``additional_assignee_list`` on incidents and changes), work notes and comments
    (``sys_journal_field``) and change approvals (``sysapproval_approver``), mostly by those
    people, from a random stream of their own. ``end`` (default: midnight today, UTC)
    closes the 365-day window of timestamps; pass it explicitly for byte-identical output
    across days.
    """
    people = list(people_emails)
    gen = _Generator(seed, end or _default_end())
    user_rows = gen.users(max(users, len(people), 1), people)
    tables: dict[str, list[Row]] = {
        "sys_user": user_rows,
        "incident": _incidents(gen, incidents, user_rows, len(people)),
    }
    if other_tables:
        common = (gen, user_rows, len(people))
        tables["change_request"] = _work_items(
            *common,
            "CHG",
            30001,
            CHANGE_TEMPLATES,
            ("-5", "-4", "-3", "-2", "-1", "0", "3", "4"),
            {"type": ("normal", "standard", "emergency"), "risk": ("2", "3", "4")},
        )
        tables["problem"] = _work_items(
            *common,
            "PRB",
            40001,
            PROBLEM_TEMPLATES,
            ("101", "102", "103", "104", "106", "107"),
            {"known_error": ("true", "false")},
        )
        tables["rm_story"] = _work_items(
            *common,
            "STRY",
            10001,
            STORY_TEMPLATES,
            ("-6", "1", "2", "3"),
            {"story_points": ("1", "2", "3", "5", "8")},
        )
        tables["sc_req_item"] = _work_items(
            *common,
            "RITM",
            10001,
            REQUEST_TEMPLATES,
            ("1", "2", "3"),
            {"quantity": ("1", "2"), "cat_item": ("Access request", "Cloud resources")},
        )
    if witnesses:
        _add_witnesses(
            random.Random(seed * 7919 + 17),  # noqa: S311 - its own stream: the rows above stay
            tables,
            user_rows,
            len(people),
        )
    return {
        "tables": tables,
        "credentials": json.loads(json.dumps(DEFAULT_CREDENTIALS)),  # a private deep copy
        "reference_fields": dict(DEFAULT_REFERENCE_FIELDS),
        "numeric_fields": list(DEFAULT_NUMERIC_FIELDS),
    }


def demo_dataset(people_emails: Sequence[str]) -> dict[str, Any]:
    """The small dataset the demo syncs: 400 incidents, 30 users, fixed seed."""
    return generate_dataset(incidents=400, users=30, people_emails=people_emails, seed=7)


def write_dataset(dataset: dict[str, Any], path: str | Path) -> None:
    """Write compact JSON one row at a time: the C encoder per row, and no 75 MB string
    for a 100k-row dataset (json.dump would use the slow pure-Python encoder)."""
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    with open(path, "w", encoding="utf-8") as out:
        out.write('{"tables":{')
        for table_index, (name, rows) in enumerate(dataset["tables"].items()):
            out.write(("," if table_index else "") + dumps(name) + ":[")
            for row_index, row in enumerate(rows):
                out.write(("," if row_index else "") + dumps(row))
            out.write("]")
        out.write("}")
        for key, value in dataset.items():
            if key != "tables":
                out.write("," + dumps(key) + ":" + dumps(value))
        out.write("}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m servicenow.emulator.generate",
        description="Write a synthetic ServiceNow dataset for the emulator.",
    )
    parser.add_argument("--incidents", type=int, required=True)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--people-emails", default="", help="comma-separated addresses")
    parser.add_argument("--no-other-tables", action="store_true")
    args = parser.parse_args(argv)
    emails = [e.strip() for e in args.people_emails.split(",") if e.strip()]
    dataset = generate_dataset(
        incidents=args.incidents,
        users=args.users,
        seed=args.seed,
        people_emails=emails,
        other_tables=not args.no_other_tables,
    )
    write_dataset(dataset, args.out)
    counts = ", ".join(f"{name}={len(rows)}" for name, rows in dataset["tables"].items())
    print(f"wrote {args.out}: {counts}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
