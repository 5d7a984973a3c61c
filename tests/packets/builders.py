"""Put a packet straight into any state, with the rows it would have by then.

Used by the state-machine, rules, concurrency and query tests: a packet in state X is the
Packet row with state X plus what the services would have written on the way there (items
covering every expectation of the target level, narratives, a snapshot from the first
submission on, the reviewer's assessments from a review on, the committee's Decision for a
decided packet, and the PacketEvent timeline).
"""

from __future__ import annotations

import hashlib
import json

from django.utils import timezone

from apps.evidence.markdown import markdown_render
from apps.ladders.models import Expectation
from apps.packets.models import (
    Assessment,
    Decision,
    Packet,
    PacketEvent,
    PacketItem,
    PacketSnapshot,
)
from apps.packets.services import packet_snapshot_data

STATES = [
    "draft",
    "submitted",
    "changes_requested",
    "endorsed",
    "declined",
    "promoted",
    "not_promoted",
    "withdrawn",
]
SUBMITTED_ONCE = {
    "submitted", "changes_requested", "endorsed", "declined", "promoted", "not_promoted",
}  # fmt: skip
REVIEWED = {"endorsed", "declined", "promoted", "not_promoted"}
DECIDED = {"promoted", "not_promoted"}
NARRATIVES = {"Technical Expertise": "I *built* the retraining pipeline."}


def level_codes(ladder_version, level: int) -> list[str]:
    return list(
        Expectation.objects.filter(version=ladder_version, level__number=level)
        .order_by("competency__position", "position")
        .values_list("code", flat=True)
    )


def canonical_sha256(data: dict) -> str:
    """The snapshot hash as DESIGN.md defines it: sha256 of the canonical JSON."""
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def packet_in_state(
    *,
    person,
    cycle,
    ladder_version,
    state: str,
    evidence: list,
    reviewer=None,
    decider=None,
    target_level: int | None = None,
) -> Packet:
    """A packet of `person` in `state`; its items cover every expectation of the target
    level with `evidence` (round robin). `reviewer` (a manager) wrote the assessments,
    `decider` (a committee member) the decision."""
    target = target_level or (person.level or 0) + 1
    packet = Packet.objects.create(
        person=person, cycle=cycle, ladder_version=ladder_version, from_level=person.level,
        target_level=target, state="draft", narratives=dict(NARRATIVES),
        narratives_html={k: markdown_render(v) for k, v in NARRATIVES.items()},
    )  # fmt: skip
    expectations = list(
        Expectation.objects.filter(version=ladder_version, level__number=target).order_by(
            "competency__position", "position"
        )
    )
    PacketItem.objects.bulk_create(
        PacketItem(packet=packet, expectation=exp, evidence=evidence[i % len(evidence)],
                   note=f"note {i}", position=i)
        for i, exp in enumerate(expectations)
    )  # fmt: skip
    events = [("create", "", "draft", None)]
    if state in SUBMITTED_ONCE:
        data = packet_snapshot_data(packet=packet)
        PacketSnapshot.objects.create(packet=packet, number=1, data=data,
                                      sha256=canonical_sha256(data))  # fmt: skip
        packet.submitted_at = timezone.now()
        events.append(("submit", "draft", "submitted", person.user))
    if state == "changes_requested":
        events.append(("request-changes", "submitted", "changes_requested", reviewer.user))
    if state in REVIEWED:
        rating = "below" if state == "declined" else "meets"
        Assessment.objects.bulk_create(
            Assessment(packet=packet, reviewer=reviewer, expectation=exp, rating=rating)
            for exp in expectations
        )
        to = "declined" if state == "declined" else "endorsed"
        events.append(("decline" if to == "declined" else "endorse", "submitted", to,
                       reviewer.user))  # fmt: skip
    if state in DECIDED:
        Decision.objects.create(packet=packet, outcome=state, rationale="Decided earlier",
                                decided_by=decider)  # fmt: skip
        events.append(("decide", "endorsed", state, decider.user))
    if state == "withdrawn":
        events.append(("withdraw", "draft", "withdrawn", person.user))
    for action, before, after, actor in events:
        PacketEvent.objects.create(packet=packet, actor=actor or person.user, action=action,
                                   from_state=before, to_state=after)  # fmt: skip
    packet.state = state
    packet.save()
    return packet
