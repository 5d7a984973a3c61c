"""Reads of people, scoped to what the viewer may see (DESIGN.md "Who sees what").

Self, reports at any depth, and for admins everyone. Anything else is a 404 upstream.
Every walk of the org chart lives here: down (reports), up (the manager chain) and the
cycle check a new manager must pass.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import Exists, OuterRef, QuerySet
from django.db.models.expressions import RawSQL

from .models import Person


def person_for_user(*, user: AbstractBaseUser) -> Person | None:
    if not user.is_authenticated:
        return None
    # has_reports rides along so scoped lists skip the org-chart walk for non-managers. It
    # holds as of this read: code that changes the chart and then asks about reports in
    # the same request must read the person again.
    reports = Person.objects.filter(manager=OuterRef("pk"))
    try:
        return (
            Person.objects.select_related("ladder", "manager")
            .annotate(has_reports=Exists(reports))
            .get(user=user)
        )
    except Person.DoesNotExist:
        return None


def person_report_ids(*, person: Person) -> set[int]:
    """Ids of everyone below `person` in the org chart, any depth (one query per level;
    none when the person came from person_for_user and has no reports)."""
    if getattr(person, "has_reports", True) is False:
        return set()
    found: set[int] = set()
    frontier = {person.pk}
    while frontier:
        below = set(Person.objects.filter(manager_id__in=frontier).values_list("pk", flat=True))
        frontier = below - found - {person.pk}  # a cycle must not loop forever
        found |= frontier
    return found


def person_reports_subquery(
    *, person: Person | None = None, user: AbstractBaseUser | None = None
) -> RawSQL:
    """Everyone below `person` (or below the person of `user`) in the org chart, any depth,
    as a subquery of ids for `pk__in=` / `person_id__in=`: a recursive CTE, so one statement
    whatever the depth and no list of ids for the ORM to bind into every read that uses
    it; given a user, not even a read of the person first. UNION, not UNION ALL, stops a
    cycle; nobody is their own report. The same set as person_report_ids."""
    # Only the table's own quoted name is spliced in; the ids are parameters.
    table = connection.ops.quote_name(Person._meta.db_table)
    if person is not None:
        root, params = "%s", [person.pk]
    else:
        root, params = f"(SELECT id FROM {table} WHERE user_id = %s)", [user.pk]  # noqa: S608
    sql = (
        f"WITH RECURSIVE below(id) AS (SELECT id FROM {table} WHERE manager_id = {root}"  # noqa: S608
        f" UNION SELECT p.id FROM {table} p INNER JOIN below ON p.manager_id = below.id)"
        f" SELECT id FROM below WHERE id <> {root}"
    )
    return RawSQL(sql, (*params, *params))  # noqa: S611


def manager_chain_ids(*, person: Person) -> list[int]:
    """The person's managers, nearest first (one query per level; cycles stop the walk)."""
    chain: list[int] = []
    current = person.manager_id
    while current is not None and current not in chain and current != person.pk:
        chain.append(current)
        current = Person.objects.filter(pk=current).values_list("manager_id", flat=True).first()
    return chain


def person_would_cycle(*, person: Person, manager: Person | None) -> bool:
    """Would `manager` managing `person` close a loop? Walks up from the manager, reading
    one manager id per level from the database."""
    if manager is None:
        return False
    return person_would_cycle_ids(
        person_id=person.pk, manager_id=manager.pk, managers=_ManagerIds()
    )


class _ManagerIds:
    """{person id: manager id}, read on demand (the `.get` person_would_cycle_ids uses)."""

    def get(self, person_id: int) -> int | None:
        return Person.objects.filter(pk=person_id).values_list("manager_id", flat=True).first()


def person_would_cycle_ids(*, person_id: int, manager_id: int, managers) -> bool:
    """The same check over a {person: manager} map: in memory for bulk org-chart updates,
    or read on demand (anything with `.get(person_id)`)."""
    seen: set[int] = set()
    current: int | None = manager_id
    while current is not None:
        if current == person_id or current in seen:
            return True
        seen.add(current)
        current = managers.get(current)
    return False


def person_has_reports(*, person: Person) -> bool:
    known = getattr(person, "has_reports", None)  # annotated by person_for_user
    if known is not None:
        return known
    return Person.objects.filter(manager=person).exists()


def person_list(*, viewer: AbstractBaseUser) -> QuerySet[Person]:
    qs = Person.objects.select_related("user", "ladder")
    if viewer.is_staff:
        return qs
    me = person_for_user(user=viewer)
    if me is None:
        return qs.none()
    return qs.filter(pk__in={me.pk} | person_report_ids(person=me))


def people_by_servicenow_sys_id() -> dict[str, tuple[int, int | None, int | None]]:
    """{ServiceNow user sys_id: (person id, ladder id, level)} of every synced person."""
    return {
        sys_id: (pk, ladder_id, level)
        for sys_id, pk, ladder_id, level in Person.objects.exclude(
            servicenow_sys_id=""
        ).values_list("servicenow_sys_id", "pk", "ladder_id", "level")
    }


def person_ids_by_servicenow_sys_id(*, sys_ids: set[str] | None) -> dict[str, int]:
    """{ServiceNow user sys_id: person id} for these sys_ids (None: every synced person)."""
    qs = Person.objects.exclude(servicenow_sys_id="")
    if sys_ids is not None:
        sys_ids = sys_ids - {""}
        if not sys_ids:
            return {}
        qs = qs.filter(servicenow_sys_id__in=sys_ids)
    return dict(qs.values_list("servicenow_sys_id", "pk"))
