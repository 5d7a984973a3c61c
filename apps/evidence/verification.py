"""Verify imported evidence against ServiceNow, and keep each item's last verification.

`evidence_verify` checks one item's snapshot against its live record; packets verify their
items through `verifications_run` with the copies their snapshot froze
(apps/packets/services.packet_verify). Either way the live records are read by
servicenow/verify.py (one batched request per connection and table) and each item's answer
is stored in EvidenceVerification (its last one: time, result, diff, actor, and the hash of
the snapshot compared), the only writer of that table. Who may verify is who may see: the
caller found the item or packet in the viewer's scope first (evidence_get / packet_get).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from django.utils import timezone

from ladder_tracker.canonical import canonical_sha256
from ladder_tracker.errors import InvalidError
from servicenow.models import WorkItem
from servicenow.verify import (
    RecordCheck,
    VerifyUnavailable,
    records_verify,
    work_item_unavailable,
)

from .models import Evidence, EvidenceVerification


class NotImported(InvalidError):
    """Manual evidence has no ServiceNow record to verify. 400."""


class VerifyItem(NamedTuple):
    """One item to verify: the evidence, and the snapshot to compare (the item's own, or a
    packet snapshot's copy of it)."""

    evidence_id: int
    work_item_id: int | None
    snapshot: dict


def _work_items(ids) -> dict[int, WorkItem]:
    return {
        wi.pk: wi
        for wi in WorkItem.objects.filter(pk__in=set(ids)).select_related("connection", "source")
    }


def verifications_run(*, items: Sequence[VerifyItem], actor) -> list[dict]:
    """Check every item against ServiceNow and store each one's answer as its last
    verification. All or nothing: when any item's record cannot be re-read (its connection
    gone or its source disabled) nothing is sent or stored and VerifyUnavailable (409) names
    those items. A fixed number of queries (three) besides the requests."""
    work_items = _work_items(i.work_item_id for i in items if i.work_item_id)
    gone = {}
    for item in items:
        problem = work_item_unavailable(work_items.get(item.work_item_id))
        if problem:
            gone[item.evidence_id] = problem
    if gone:
        first = next(iter(gone.values()))
        raise VerifyUnavailable(
            f"Cannot verify against ServiceNow: {first}.",
            {"items": [{"evidence": pk, "reason": why} for pk, why in gone.items()]},
        )
    checks = records_verify(pairs=[(work_items[i.work_item_id], i.snapshot) for i in items])
    now = timezone.now()
    rows = [
        EvidenceVerification(
            evidence_id=item.evidence_id,
            result=check.result,
            diff=check.diff,
            compared_sha256=canonical_sha256(item.snapshot or {}),
            verified_by=actor if actor.is_authenticated else None,
            verified_at=now,
        )
        for item, check in zip(items, checks, strict=True)
    ]
    EvidenceVerification.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["evidence"],
        update_fields=["result", "diff", "compared_sha256", "verified_by", "verified_at"],
    )
    return [_answer(item, check, now, actor) for item, check in zip(items, checks, strict=True)]


def _answer(item: VerifyItem, check: RecordCheck, now, actor) -> dict:
    return {
        "evidence": item.evidence_id,
        "result": check.result,
        "diff": check.diff,
        "compared_sha256": canonical_sha256(item.snapshot or {}),
        "verified_at": now,
        "verified_by": actor.get_username() if actor.is_authenticated else None,
    }


def evidence_verify(*, evidence: Evidence, actor) -> dict:
    """One imported item's snapshot against its live record: {evidence, result, diff, …}.
    NotImported (400) for manual evidence; VerifyUnavailable (409) when its connection is
    gone or disabled; VerifyFailed (502) when ServiceNow does not answer."""
    if evidence.source != Evidence.Source.SERVICENOW or not evidence.snapshot:
        raise NotImported("This item was not imported from ServiceNow: there is nothing to verify.")
    item = VerifyItem(evidence.pk, evidence.work_item_id, evidence.snapshot)
    return verifications_run(items=[item], actor=actor)[0]


def verification_shown(answer: dict | None) -> dict | None:
    """A verification as pages show it ({result, diff, at, by}), from a verify answer."""
    if not answer:
        return None
    return {
        "result": answer["result"],
        "diff": answer.get("diff") or [],
        "at": answer["verified_at"],
        "by": answer.get("verified_by"),
    }


def evidence_last_verification(*, evidence: Evidence) -> dict | None:
    """The item's last verification as pages show it ({result, diff, at, by}), or None.
    One query."""
    row = (
        EvidenceVerification.objects.filter(evidence=evidence)
        .values("result", "diff", "verified_at", "verified_by__username")
        .first()
    )
    if row is None:
        return None
    return {
        "result": row["result"],
        "diff": row["diff"] or [],
        "at": row["verified_at"],
        "by": row["verified_by__username"],
    }
