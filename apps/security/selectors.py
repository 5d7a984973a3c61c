"""Reads of the security app: a person's tokens, the audit trail and the change history of
configuration (admins only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.apps import apps
from django.db.models import OuterRef, QuerySet, Subquery

from ladder_tracker.errors import ForbiddenError, InvalidError, NotFoundError

from .models import ApiToken, SecurityEvent


def token_list(*, viewer) -> QuerySet[ApiToken]:
    """The viewer's own tokens that are not revoked (expired ones stay, marked, until
    revoked: people should see why a client stopped working)."""
    return ApiToken.objects.filter(user=viewer, revoked_at__isnull=True)


def token_get(*, viewer, token_id: int | str) -> ApiToken:
    try:
        token_id = int(token_id)
    except (TypeError, ValueError):
        raise NotFoundError("No such token.") from None
    if not 0 < token_id < 2**63:  # beyond what the database's integer holds
        raise NotFoundError("No such token.")
    token = ApiToken.objects.select_related("user").filter(pk=token_id).first()
    if token is None or token.revoked_at is not None:
        raise NotFoundError("No such token.")
    if token.user_id != viewer.pk and not viewer.is_staff:
        raise NotFoundError("No such token.")
    return token


def security_event_list(*, viewer) -> QuerySet[SecurityEvent]:
    if not viewer.is_staff:
        raise ForbiddenError("The audit trail is for admins.")
    return SecurityEvent.objects.select_related("actor")


# --- configuration history (django-simple-history, ladder_tracker/history.py) ---------------

# what `GET /api/v1/audit/?model=` accepts: app_label.model_name → the audited model
AUDITED_MODELS = {
    "packets.promotioncycle": "packets.PromotionCycle",
    "people.person": "people.Person",
    "servicenow.suggestionrule": "servicenow.SuggestionRule",
    "servicenow.source": "servicenow.Source",
    "servicenow.connection": "servicenow.Connection",
}
HISTORY_ACTIONS = {"+": "created", "~": "changed", "-": "deleted"}


@dataclass(frozen=True)
class HistoryChange:
    """One audited change: the row as it became, and each field's before and after (the
    first row of an object has before None; a secret shows only that it changed)."""

    id: int
    model: str
    object_id: int
    object_repr: str
    action: str
    at: datetime
    actor: object  # the user, or None: the system (see `reason`)
    reason: str
    changes: list[dict]


def audited_model(name: str):
    label = AUDITED_MODELS.get((name or "").lower())
    if label is None:
        raise InvalidError(
            "Unknown model.", {"model": f"one of {', '.join(sorted(AUDITED_MODELS))}"}
        )
    return apps.get_model(label)


def history_queryset(*, viewer, model: str, object_id: int | None = None) -> QuerySet:
    """The historical rows of one audited model (one object's with `object_id`), newest
    first, with their user. Admins only."""
    if not viewer.is_staff:
        raise ForbiddenError("The change history is for admins.")
    history = audited_model(model).history.model
    rows = history.objects.select_related("history_user").order_by("-history_id")
    if object_id is not None:
        rows = rows.filter(id=object_id)
    previous = history.objects.filter(
        id=OuterRef("id"), history_id__lt=OuterRef("history_id")
    ).order_by("-history_id")
    return rows.annotate(previous_id=Subquery(previous.values("history_id")[:1]))


def history_changes(*, rows: list) -> list[HistoryChange]:
    """Before/after for a page of historical rows of one model: one more query for the rows
    before them, whatever the page holds."""
    if not rows:
        return []
    history = type(rows[0])
    before = {
        r.history_id: r
        for r in history.objects.filter(
            history_id__in=[r.previous_id for r in rows if r.previous_id]
        )
    }
    fields = [f for f in history.tracked_fields if f.name != "id"]
    label = history.instance_type._meta.label_lower
    out = []
    for row in rows:
        old = before.get(row.previous_id)
        changes = []
        if row.history_type != "-":
            for field in fields:
                after = getattr(row, field.attname)
                was = getattr(old, field.attname) if old is not None else None
                if old is None and after in (None, "", [], {}):
                    continue  # a new row's empty fields say nothing
                if old is None or was != after:
                    changes.append(
                        {"field": field.name, "before": _plain(was), "after": _plain(after)}
                    )
        for name, change in (getattr(row, "secrets_changed", None) or {}).items():
            changes.append({"field": name, "before": None, "after": None, "secret": change})
        out.append(
            HistoryChange(
                id=row.history_id,
                model=label,
                object_id=row.id,
                # built from the row itself: simple_history's `instance` reads the live
                # object's unaudited columns, a query per row
                object_repr=str(
                    history.instance_type(
                        **{f.attname: getattr(row, f.attname) for f in history.tracked_fields}
                    )
                ),
                action=HISTORY_ACTIONS.get(row.history_type, row.history_type),
                at=row.history_date,
                actor=row.history_user,
                reason=row.history_change_reason or "",
                changes=changes,
            )
        )
    return out


def _plain(value):
    """A JSON-ready value: dates and decimals as strings, the rest as stored."""
    if isinstance(value, datetime | date | Decimal):
        return str(value) if isinstance(value, Decimal) else value.isoformat()
    return value
