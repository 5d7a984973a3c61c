"""Who saw a work item, read from the instance when a corroborator list is asked for.

Four Table API reads (the record, its journal, its approvals, then the users they name),
with one retry and short timeouts: a person is waiting on the page. Nothing is stored;
`apps/evidence/corroboration.py` matches the users to people and drops the rest."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from ladder_tracker.errors import ApplicationError

from .client import ServiceNowClient, ServiceNowError, field_value
from .models import WorkItem
from .secrets import SecretUnreadable

RECORD_FIELDS = ("additional_assignee_list", "caller_id", "opened_by")
JOURNAL_ELEMENTS = ("work_notes", "comments")
MAX_ROWS = 500  # journal entries / approvals read per record: more is not a witness list

REASON_CO_ASSIGNEE = "co-assignee"
REASON_WORK_NOTE = "wrote a work note"
REASON_COMMENT = "wrote a comment"
REASON_APPROVER = "approver"  # + " (approved)" etc.
REASON_CALLER = "caller"
REASON_OPENED_BY = "opened it"


class ServiceNowUnavailable(ApplicationError):
    """The instance could not be read (unreachable, refused, bad answer): 502."""

    status_code = 502
    code = "servicenow_unavailable"


class Witness(NamedTuple):
    sys_id: str
    user_name: str
    email: str
    reasons: tuple[str, ...]


def _client(work_item: WorkItem) -> ServiceNowClient:
    from .services import connection_client_config

    config = dataclasses.replace(
        connection_client_config(connection=work_item.connection),
        max_retries=1,
        connect_timeout=3.0,
        read_timeout=10.0,
        backoff_max=1.0,
    )
    return ServiceNowClient(config)


def _ids(value) -> list[str]:
    return [part.strip() for part in field_value(value).split(",") if part.strip()]


def work_item_witnesses(*, work_item: WorkItem) -> list[Witness]:
    """The users the instance says saw this record, each with why, in first-seen order.
    Raises ServiceNowUnavailable (502) when the instance cannot be read."""
    by_id: dict[str, list[str]] = {}  # sys_user sys_id -> reasons
    by_name: dict[str, list[str]] = {}  # user_name -> reasons (journal authors)

    def add(into: dict[str, list[str]], key: str, reason: str) -> None:
        if key and reason not in (reasons := into.setdefault(key, [])):
            reasons.append(reason)

    try:
        client = _client(work_item)
        try:
            record = client.get_record(work_item.table, work_item.sys_id, fields=RECORD_FIELDS)
            if record is not None:
                for sys_id in _ids(record.get("additional_assignee_list")):
                    add(by_id, sys_id, REASON_CO_ASSIGNEE)
                add(by_id, field_value(record.get("caller_id")), REASON_CALLER)
                add(by_id, field_value(record.get("opened_by")), REASON_OPENED_BY)
            journal = client.get_page(
                "sys_journal_field",
                query=f"element_id={work_item.sys_id}^elementIN{','.join(JOURNAL_ELEMENTS)}"
                "^ORDERBYsys_created_on",
                fields=("element", "sys_created_by"),
                limit=MAX_ROWS,
            )
            for row in journal.rows:
                reason = (
                    REASON_WORK_NOTE
                    if field_value(row.get("element")) == "work_notes"
                    else REASON_COMMENT
                )
                add(by_name, field_value(row.get("sys_created_by")), reason)
            approvals = client.get_page(
                "sysapproval_approver",
                query=f"sysapproval={work_item.sys_id}",
                fields=("approver", "state"),
                limit=MAX_ROWS,
            )
            for row in approvals.rows:
                state = field_value(row.get("state"))
                reason = f"{REASON_APPROVER} ({state})" if state else REASON_APPROVER
                add(by_id, field_value(row.get("approver")), reason)
            users: list[dict] = []
            terms = []
            if by_id:
                terms.append(f"sys_idIN{','.join(by_id)}")
            if by_name:
                terms.append(f"user_nameIN{','.join(by_name)}")
            if terms:
                users = client.get_page(
                    "sys_user",
                    query="^OR".join(terms),
                    fields=("sys_id", "user_name", "email"),
                    limit=len(by_id) + len(by_name),
                ).rows
        finally:
            client.close()
    except (ServiceNowError, SecretUnreadable) as exc:
        raise ServiceNowUnavailable(
            f"ServiceNow could not be read for {work_item.number or work_item.sys_id}: {exc}"
        ) from exc
    witnesses = []
    seen: set[str] = set()
    for user in users:
        sys_id, name = field_value(user.get("sys_id")), field_value(user.get("user_name"))
        if not sys_id or sys_id in seen:
            continue
        seen.add(sys_id)
        reasons = list(by_id.get(sys_id, ()))
        for reason in by_name.get(name, ()):
            if reason not in reasons:
                reasons.append(reason)
        witnesses.append(Witness(sys_id, name, field_value(user.get("email")), tuple(reasons)))
    return witnesses
