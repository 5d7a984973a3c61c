"""CSV import of people: a dry run reports every bad row before anything is written.

Columns: username, email, name, title, ladder, level, manager, is_committee (header row
required; title, ladder, level, manager, is_committee may be empty). `manager` is a username
or an email, of someone already here or in the same file. Rows upsert by username.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from apps.ladders.models import Ladder, Level

from .models import Person
from .selectors import person_would_cycle_ids
from .services import person_create, person_update

COLUMNS = ["username", "email", "name", "title", "ladder", "level", "manager", "is_committee"]
REQUIRED = ["username", "email", "name"]
MAX_ROWS = 10_000


@dataclass
class ImportError_:
    row: int  # 1-based line number in the file (the header is line 1)
    field: str
    message: str


@dataclass
class ImportReport:
    dry_run: bool
    rows: int = 0
    created: int = 0
    updated: int = 0
    errors: list[ImportError_] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _truthy(value: str) -> bool | None:
    v = value.strip().lower()
    if v in ("", "0", "false", "no", "n"):
        return False
    if v in ("1", "true", "yes", "y"):
        return True
    return None


def people_import(*, text: str, dry_run: bool = True, actor=None) -> ImportReport:
    report = ImportReport(dry_run=dry_run)
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    if missing or unknown:
        if missing:
            report.errors.append(ImportError_(1, ",".join(missing), "missing column(s)"))
        if unknown:
            report.errors.append(ImportError_(1, ",".join(unknown), "unknown column(s)"))
        return report
    rows = []
    for line, raw in enumerate(reader, start=2):
        if len(rows) >= MAX_ROWS:
            report.errors.append(ImportError_(line, "", f"more than {MAX_ROWS} rows"))
            break
        rows.append((line, {k.strip(): (v or "").strip() for k, v in raw.items() if k}))
    report.rows = len(rows)
    ladders = {lad.slug: lad for lad in Ladder.objects.all()}
    levels = set(Level.objects.values_list("version__ladder__slug", "number"))
    users = {u.username: u for u in get_user_model().objects.all()}
    people = list(Person.objects.select_related("user"))
    by_username = {p.user.username: p for p in people if p.user_id}
    by_email = {p.email.lower(): p for p in people if p.email}
    file_usernames: dict[str, int] = {}
    file_emails: dict[str, int] = {}
    planned = []
    for line, row in rows:
        err = lambda f, m, line=line: report.errors.append(ImportError_(line, f, m))  # noqa: E731
        username, email = row.get("username", ""), row.get("email", "")
        for col in REQUIRED:
            if not row.get(col):
                err(col, "required")
        if email:
            try:
                validate_email(email)
            except ValidationError:
                err("email", f"{email!r} is not an email address")
        if username in file_usernames:
            err("username", f"also on line {file_usernames[username]}")
        file_usernames.setdefault(username, line)
        if email.lower() in file_emails:
            err("email", f"also on line {file_emails[email.lower()]}")
        file_emails.setdefault(email.lower(), line)
        existing = by_username.get(username)
        owner = by_email.get(email.lower())
        if owner is not None and owner is not existing:
            err("email", f"{email} belongs to {owner}")
        if existing is None and username in users:
            err("username", f"{username} is a login without a person; link it in the admin")
        ladder = row.get("ladder", "")
        if ladder and ladder not in ladders:
            err("ladder", f"unknown ladder {ladder!r}")
        level = row.get("level", "")
        if level:
            if not level.isdigit():
                err("level", f"{level!r} is not a number")
            elif not ladder:
                err("level", "a level needs a ladder")
            elif ladder in ladders and (ladder, int(level)) not in levels:
                err("level", f"{ladder} has no level {level}")
        committee = _truthy(row.get("is_committee", ""))
        if committee is None:
            err("is_committee", "use true/false")
        planned.append((line, row, existing))
    # managers: someone here already, or in this file; no cycles in the resulting chart
    usernames_in_file = {row["username"] for _, row, _ in planned}
    emails_in_file = {row["email"].lower() for _, row, _ in planned}
    for line, row, _existing in planned:
        manager = row.get("manager", "")
        if (
            manager
            and manager not in usernames_in_file
            and manager.lower() not in emails_in_file  # emails match case-insensitively
            and manager not in by_username
            and (manager.lower() not in by_email)
        ):
            report.errors.append(ImportError_(line, "manager", f"unknown person {manager!r}"))
    # even when other rows are bad: a dry run reports every problem at once
    _check_cycles(planned, by_username, by_email, people, report)
    if report.errors or dry_run:
        report.created = sum(1 for _, _, e in planned if e is None)
        report.updated = len(planned) - report.created
        return report
    with transaction.atomic():
        _apply(planned, ladders, actor, report)
    return report


def _key_for(
    ref: str, file_rows: dict[str, str], file_emails: dict[str, str], by_username, by_email
) -> str | None:
    """Resolve a manager reference to a username key (file or database), in the order _apply
    resolves it: a username in the file, an email in the file, then the database."""
    if ref in file_rows:
        return file_rows[ref]
    if ref.lower() in file_emails:
        return file_emails[ref.lower()]
    if ref in by_username:
        return ref
    person = by_email.get(ref.lower())
    if person is not None and person.user_id:
        return person.user.username
    return f"pk:{person.pk}" if person else None


def _check_cycles(planned, by_username, by_email, people, report) -> None:
    file_rows = {row["username"]: row["username"] for _, row, _ in planned}
    file_emails = {row["email"].lower(): row["username"] for _, row, _ in planned}
    chart: dict[str, str | None] = {}
    for p in people:
        key = p.user.username if p.user_id else f"pk:{p.pk}"
        manager = p.manager
        chart[key] = (
            (manager.user.username if manager and manager.user_id else f"pk:{manager.pk}")
            if manager
            else None
        )
    keys = {key: i for i, key in enumerate(chart)}
    lines = {}
    for line, row, _ in planned:
        lines[row["username"]] = line
        if "manager" not in row:  # no manager column: the chart keeps what it has
            chart.setdefault(row["username"], None)
            continue
        ref = row["manager"]
        chart[row["username"]] = (
            _key_for(ref, file_rows, file_emails, by_username, by_email) if ref else None
        )
    for key in chart:
        keys.setdefault(key, len(keys))
    numeric = {keys[k]: keys.get(v) for k, v in chart.items()}
    for username, line in lines.items():
        manager_key = chart[username]
        if manager_key is None:
            continue
        if person_would_cycle_ids(
            person_id=keys[username], manager_id=keys[manager_key], managers=numeric
        ):
            report.errors.append(ImportError_(line, "manager", "this would make a cycle"))


def _apply(planned, ladders, actor, report) -> None:
    resolved: dict[str, Person] = {}
    for _line, row, existing in planned:
        fields = dict(
            email=row["email"],
            name=row["name"],
            title=row.get("title", ""),
            ladder=ladders.get(row.get("ladder", "")) if row.get("ladder") else None,
            level=int(row["level"]) if row.get("level") else None,
            is_committee=bool(_truthy(row.get("is_committee", ""))),
        )
        if existing is not None:  # a column the file lacks leaves that field alone
            fields = {k: v for k, v in fields.items() if k in row}
        if existing is None:
            resolved[row["username"]] = person_create(
                username=row["username"], actor=actor, **fields
            )
            report.created += 1
        else:
            resolved[row["username"]] = person_update(
                person=existing, actor=actor, reason="CSV import", **fields
            )
            report.updated += 1
    for _line, row, _existing in planned:
        if "manager" not in row:
            continue
        ref = row.get("manager", "")
        manager = None
        if ref:
            manager = (
                resolved.get(ref)
                or next((p for p in resolved.values() if p.email.lower() == ref.lower()), None)
                or Person.objects.filter(user__username=ref).first()
                or (Person.objects.filter(email__iexact=ref).first())
            )
        person = resolved[row["username"]]
        if person.manager_id != (manager.pk if manager else None):
            person_update(person=person, actor=actor, manager=manager)
