"""Corroborations: people who saw an imported item's work confirm (or decline) it.

- `corroborators_suggest`: who the instance says saw the record (co-assignees, work-note
  and comment authors, approvers, the caller, the opener), only people known here, never
  the owner, each with the reasons (read live, `servicenow/corroborators.py`);
- `corroboration_request`: the owner asks one of them (one request per item and person);
  the corroborator gets a mail after commit;
- `corroboration_answer`: the corroborator confirms or declines, once, while pending.

Visibility: a corroborator reads the item only through their own request
(`corroboration_get`): its title and snapshot, nothing else of the owner's. The evidence
scope (`selectors.evidence_scope`) knows nothing of corroborations, so the evidence API and
pages stay 404 for them."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone

from apps.people.models import Person
from apps.people.selectors import person_for_user
from ladder_tracker.errors import InvalidError, NotFoundError

from .models import Corroboration, Evidence
from .selectors import evidence_scope
from .services import evidence_require_owner

logger = logging.getLogger(__name__)
COMMENT_MAX = 2000


class CorroborationInvalid(InvalidError):
    code = "corroboration_invalid"


@dataclass
class Suggestion:
    person: Person
    reasons: list[str] = field(default_factory=list)
    # the request already made for this item and person, if any
    corroboration: Corroboration | None = None

    def as_dict(self) -> dict:
        c = self.corroboration
        return {
            "person": self.person.pk,
            "name": self.person.name,
            "reasons": self.reasons,
            "corroboration": c.pk if c else None,
            "state": c.state if c else None,
        }


def _imported(evidence: Evidence) -> None:
    if evidence.source != Evidence.Source.SERVICENOW or evidence.work_item_id is None:
        raise CorroborationInvalid(
            "Only an item imported from ServiceNow has corroborators.",
            {"evidence": ["not imported from ServiceNow"]},
        )


def corroborators_suggest(*, viewer, evidence: Evidence) -> list[Suggestion]:
    """The people here who saw the work, with why (owner only). Raises 400 for an item not
    from ServiceNow, 502 (`ServiceNowUnavailable`) when the instance cannot be read."""
    from servicenow.corroborators import work_item_witnesses

    evidence_require_owner(actor=viewer, evidence=evidence)
    _imported(evidence)
    witnesses = work_item_witnesses(work_item=evidence.work_item)
    if not witnesses:
        return []
    sys_ids = {w.sys_id for w in witnesses}
    emails = {w.email.lower() for w in witnesses if w.email}
    people = list(
        Person.objects.annotate(email_ci=Lower("email"))
        .filter(Q(servicenow_sys_id__in=sys_ids) | Q(email_ci__in=emails), is_active=True)
        .exclude(pk=evidence.person_id)
    )
    by_sys_id = {p.servicenow_sys_id: p for p in people if p.servicenow_sys_id}
    by_email = {p.email.lower(): p for p in people if p.email}
    found: dict[int, Suggestion] = {}
    for w in witnesses:
        person = by_sys_id.get(w.sys_id) or (by_email.get(w.email.lower()) if w.email else None)
        if person is None:
            continue
        suggestion = found.setdefault(person.pk, Suggestion(person=person))
        suggestion.reasons += [r for r in w.reasons if r not in suggestion.reasons]
    asked = {
        c.person_id: c
        for c in Corroboration.objects.filter(evidence=evidence, person_id__in=list(found))
    }
    for pk, suggestion in found.items():
        suggestion.corroboration = asked.get(pk)
    return sorted(found.values(), key=lambda s: (s.person.name.lower(), s.person.pk))


@transaction.atomic
def corroboration_request(
    *, actor, evidence: Evidence, person_id: int, reasons: list[str] | None = None
) -> Corroboration:
    """The owner asks `person_id` to confirm the item. 400 for yourself, someone unknown or
    inactive, an item not from ServiceNow, or a second request for the same item and
    person (pending or answered)."""
    evidence_require_owner(actor=actor, evidence=evidence)
    _imported(evidence)
    if person_id == evidence.person_id:
        raise CorroborationInvalid(
            "You cannot corroborate your own work.", {"person": ["that is you"]}
        )
    person = Person.objects.filter(pk=person_id, is_active=True).first()
    if person is None:
        raise CorroborationInvalid("No such person.", {"person": ["unknown person"]})
    if Corroboration.objects.filter(evidence=evidence, person=person).exists():
        raise CorroborationInvalid(
            f"{person.name} was already asked about this item.",
            {"person": ["already asked"]},
        )
    try:
        with transaction.atomic():
            corroboration = Corroboration.objects.create(
                evidence=evidence,
                person=person,
                asked_by=evidence.person,
                reasons=[str(r)[:100] for r in (reasons or [])][:10],
            )
    except IntegrityError as exc:  # a concurrent identical request
        raise CorroborationInvalid(
            f"{person.name} was already asked about this item.",
            {"person": ["already asked"]},
        ) from exc
    pk = corroboration.pk
    transaction.on_commit(lambda: corroboration_request_mail(corroboration_id=pk))
    return corroboration


def corroboration_request_mail(*, corroboration_id: int) -> bool:
    """Mail the corroborator their request (a direct ask: no preference turns it off).
    Mail trouble is logged; the request stands."""
    from apps.notifications.mail import mail_send, site_url

    c = (
        Corroboration.objects.select_related("evidence", "person", "asked_by")
        .filter(pk=corroboration_id)
        .first()
    )
    if c is None:
        return False
    try:
        return mail_send(
            person=c.person,
            subject=f"{c.asked_by.name} asks you to confirm: {c.evidence.title}"[:200],
            template="corroboration_request",
            context={
                "evidence": c.evidence,
                "asked_by": c.asked_by,
                "number": (c.evidence.snapshot or {}).get("number", ""),
                "reasons": c.reasons,
                "request_url": site_url(reverse("corroborations:detail", args=[c.pk])),
            },
        )
    except Exception:
        logger.exception("corroboration %s: mail failed", corroboration_id)
        return False


@transaction.atomic
def corroboration_answer(
    *, actor, corroboration: Corroboration, confirm: bool, comment: str = ""
) -> Corroboration:
    """The corroborator confirms or declines, once, while the request is pending."""
    me = person_for_user(user=actor)
    if me is None or me.pk != corroboration.person_id:
        raise NotFoundError("No such corroboration request.")
    comment = (comment or "").strip()
    if len(comment) > COMMENT_MAX:
        raise CorroborationInvalid(
            f"The comment is longer than {COMMENT_MAX} characters.",
            {"comment": [f"at most {COMMENT_MAX} characters"]},
        )
    locked = Corroboration.objects.select_for_update().get(pk=corroboration.pk)
    if locked.state != Corroboration.State.PENDING:
        raise CorroborationInvalid(
            f"This request was already answered ({locked.state}).",
            {"state": [locked.state]},
        )
    locked.state = Corroboration.State.CONFIRMED if confirm else Corroboration.State.DECLINED
    locked.comment = comment
    locked.answered_at = timezone.now()
    locked.save(update_fields=["state", "comment", "answered_at"])
    return locked


# --- reads ----------------------------------------------------------------------------------


def corroboration_list(*, viewer, role: str | None = None) -> QuerySet[Corroboration]:
    """Requests to the viewer (`to_me`), the ones they asked (`asked`), or both."""
    me = person_for_user(user=viewer)
    if me is None:
        return Corroboration.objects.none()
    qs = Corroboration.objects.select_related("evidence", "person", "asked_by")
    if role == "to_me":
        qs = qs.filter(person=me)
    elif role == "asked":
        qs = qs.filter(asked_by=me)
    else:
        qs = qs.filter(Q(person=me) | Q(asked_by=me))
    return qs.filter(evidence__deleted_at__isnull=True)


def corroboration_get(*, viewer, pk: int) -> Corroboration:
    """One request the viewer may read: the one asked of them, or one on an item they may
    read (its owner, their managers, admins). Else 404."""
    me = person_for_user(user=viewer)
    c = (
        Corroboration.objects.select_related("evidence", "person", "asked_by")
        .filter(pk=pk, evidence__deleted_at__isnull=True)
        .first()
    )
    if c is None:
        raise NotFoundError("No such corroboration request.")
    if me is not None and c.person_id == me.pk:
        return c
    if evidence_scope(viewer=viewer).filter(pk=c.evidence_id).exists():
        return c
    raise NotFoundError("No such corroboration request.")


def corroborations_for_evidence(
    *, evidence_ids: list[int], answered_only: bool = False
) -> dict[int, list[dict]]:
    """{evidence id: [{person, name, state, comment, answered_at}]} in one query, for the
    evidence page, the packet, the committee view and the exports (answered_at as an ISO
    string, so packet data stays JSON)."""
    out: dict[int, list[dict]] = {}
    if not evidence_ids:
        return out
    qs = Corroboration.objects.filter(evidence_id__in=evidence_ids)
    if answered_only:
        qs = qs.exclude(state=Corroboration.State.PENDING)
    rows = qs.order_by("evidence_id", "created_at", "id").values(
        "evidence_id", "person_id", "person__name", "state", "comment", "answered_at"
    )
    for r in rows:
        out.setdefault(r["evidence_id"], []).append(
            {
                "person": r["person_id"],
                "name": r["person__name"],
                "state": r["state"],
                "comment": r["comment"],
                "answered_at": r["answered_at"].isoformat().replace("+00:00", "Z")
                if r["answered_at"]
                else None,
            }
        )
    return out
