"""The packet state machine as one table (DESIGN.md "Packet states").

Each action says the states it may start from, who may take it and where it leads. The
services read it to refuse (apps/packets/services.py), the pages read it to offer only what
the viewer may do now (selectors.packet_actions_allowed), and the state-machine tests read
it next to their own, hand-written expectation.

Who may act is checked before the state: a person who may never do this to the packet is
refused (403) whatever its state; the one who may is told the state does not allow it
(409).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from apps.people.models import Person

from .models import Packet

S = Packet.State


class Role(StrEnum):
    OWNER = "owner"  # the engineer whose packet it is
    REVIEWER = "reviewer"  # one of the owner's managers, at any depth
    COMMITTEE = "committee"  # a committee member outside the owner's management chain


@dataclass(frozen=True)
class Transition:
    action: str  # as in the API: POST packets/{id}/{action}/
    sources: frozenset[str]  # the states it may start from
    role: Role
    targets: tuple[str, ...]  # where it leads; () when the packet stays where it is
    forbidden: str  # the refusal when the actor does not hold the role
    conflict: str  # the refusal in any other state; {state} is the packet's

    def conflict_message(self, packet: Packet) -> str:
        return self.conflict.format(state=packet.get_state_display().lower())


def _t(action, sources, role, targets, *, forbidden, conflict=None) -> Transition:
    conflict = conflict or f"Cannot {action} a packet that is {{state}}."
    return Transition(action, frozenset(sources), role, tuple(targets), forbidden, conflict)


_MANAGERS_ONLY = "Only the engineer's managers review this packet."

TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in (
        _t(
            "edit",
            Packet.EDITABLE_STATES,
            Role.OWNER,
            (),
            forbidden="Only the engineer edits their packet.",
            conflict="A {state} packet cannot be edited.",
        ),
        _t(
            "submit",
            (S.DRAFT, S.CHANGES_REQUESTED),
            Role.OWNER,
            (S.SUBMITTED,),
            forbidden="Only the engineer submits their packet.",
        ),
        _t(
            "withdraw",
            (S.DRAFT, S.SUBMITTED, S.CHANGES_REQUESTED),
            Role.OWNER,
            (S.WITHDRAWN,),
            forbidden="Only the engineer withdraws their packet.",
        ),
        # A newer ladder version: only a draft moves to it (items carried by code). Once
        # submitted, reviewers assess against the pinned version and a snapshot holds it;
        # decided packets never change.
        _t(
            "move-to-latest",
            (S.DRAFT,),
            Role.OWNER,
            (),
            forbidden="Only the engineer moves their packet to a new ladder version.",
            conflict="A {state} packet stays on the ladder version it was made against; "
            "only a draft moves to a newer one.",
        ),
        _t("assess", (S.SUBMITTED,), Role.REVIEWER, (), forbidden=_MANAGERS_ONLY),
        _t(
            "request-changes",
            (S.SUBMITTED,),
            Role.REVIEWER,
            (S.CHANGES_REQUESTED,),
            forbidden=_MANAGERS_ONLY,
            conflict="Cannot request changes on a packet that is {state}.",
        ),
        _t("endorse", (S.SUBMITTED,), Role.REVIEWER, (S.ENDORSED,), forbidden=_MANAGERS_ONLY),
        _t("decline", (S.SUBMITTED,), Role.REVIEWER, (S.DECLINED,), forbidden=_MANAGERS_ONLY),
        _t(
            "decide",
            (S.ENDORSED,),
            Role.COMMITTEE,
            (S.PROMOTED, S.NOT_PROMOTED),
            forbidden="Only committee members decide.",
        ),
    )
}
# The actions that move a packet (and are API transitions); "edit" and "assess" leave it
# where it is.
MOVES = [action for action, t in TRANSITIONS.items() if t.targets]


def role_refusal(
    transition: Transition, *, packet: Packet, person: Person | None, report_ids
) -> str | None:
    """Why `person` may not take `transition` on `packet` whatever its state (None: they
    may). `report_ids()` gives the ids below the person in the org chart; it is only called
    when the answer depends on it (a walk of the chart costs queries)."""
    if person is None:
        return "You have no person profile."
    own = packet.person_id == person.pk
    if transition.role == Role.OWNER:
        return None if own else transition.forbidden
    if transition.role == Role.REVIEWER:
        if own:
            return "Nobody reviews their own packet."
        return None if packet.person_id in report_ids() else transition.forbidden
    if not person.is_committee:
        return transition.forbidden
    if own:
        return "Nobody decides their own packet."
    if packet.person_id in report_ids():
        return "A committee member does not decide for their own reports."
    return None
