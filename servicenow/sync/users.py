"""Users: pages of sys_user handed to `apps.people` as plain data."""

from __future__ import annotations

from apps.people.services import ServiceNowUser, people_managers_resolve, people_sync_servicenow

from ..client import field_value
from ..models import Source
from .fields import USER_FIELDS
from .paging import PreparedPage, newest_per_sys_id
from .progress import Counters


def servicenow_user(sys_id: str, updated_on, mod_count: int, row: dict) -> ServiceNowUser:
    email = field_value(row.get("email")).strip()
    first_last = (field_value(row.get("first_name")), field_value(row.get("last_name")))
    name = (
        field_value(row.get("name"))
        or " ".join(x for x in first_last if x)
        or field_value(row.get("user_name"))
        or email
    )
    return ServiceNowUser(
        sys_id=sys_id,
        updated_on=updated_on,
        mod_count=mod_count,
        email=email,
        name=name,
        title=field_value(row.get("title")),
        manager_sys_id=field_value(row.get("manager")),
        active=field_value(row.get("active")).lower() != "false",
    )


class UserWriter:
    """Stores pages of a users source; managers are resolved once every page is in."""

    fields = list(USER_FIELDS)

    def __init__(self, *, source: Source, counters: Counters):
        self.source = source
        self.counters = counters

    def begin(self, client, note, *, cursor, full: bool) -> str:
        """Before the first page: users need no labels, pages come as raw values."""
        return "false"

    def prepare(self, rows: list[dict]) -> PreparedPage:
        return PreparedPage(count=len(rows), newest=newest_per_sys_id(rows))

    def store(self, page: PreparedPage) -> None:
        self.counters.rows_seen += page.count
        result = people_sync_servicenow(
            users=[servicenow_user(sys_id, *version) for sys_id, version in page.newest.items()]
        )
        self.counters.created += result.created
        self.counters.updated += result.updated
        self.counters.skipped_stale += result.skipped_stale

    def finish(self) -> None:
        people_managers_resolve()
