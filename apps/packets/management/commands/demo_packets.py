"""manage.py demo_packets: an open cycle and packets in several states for the demo org, so
every role finds work waiting (idempotent).

- "2026 H2", open now, minimum coverage 0.5;
- ken: a draft (his to finish and submit);
- erin: submitted, waiting for her manager omar;
- sam: endorsed by maria, waiting for the committee — maria is sam's manager and so does
  not decide it: cora does;
- lena: changes requested by maria, back with lena.

Before it, a decided past cycle, "2026 H1", so that a cycle's analytics page
(/packets/cycles/{id}/analytics/) has outcomes, ratings and times to show: ken promoted
(1 → 2; omar rated him high), erin declined by omar (rated low), lena endorsed by maria after
one round of changes and not promoted, sam's draft withdrawn. It is made through the same
services while the cycle is open, then the cycle is closed and its timeline moved back to
the weeks in its plan (the services stamp "now"; history needs its own dates). It is made
only into a demo with no packets yet (ken's promotion would withdraw a later draft of his),
and never mails anyone.

Everything goes through the services (create, items, narratives, submit, review), with the
person's own accepted evidence linked to expectations of the target level; anyone with too
little gets a couple of accepted items linked to the uncovered expectations first. A person
who already has a packet in the cycle is left alone, so a second run changes nothing.
Transition emails are not sent for this seed data (pass --send-mail to send them).
"""

import math
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone

from apps.evidence.models import Evidence, EvidenceLink, evidence_usable_q
from apps.evidence.services import LinkSpec, evidence_create
from apps.packets.models import Decision, Packet, PacketEvent, PacketSnapshot, PromotionCycle
from apps.packets.selectors import packet_target_expectations
from apps.packets.services import (
    AssessmentSpec,
    ItemSpec,
    cycle_is_open,
    cycle_save,
    packet_create,
    packet_decide,
    packet_decline,
    packet_endorse,
    packet_request_changes,
    packet_submit,
    packet_update,
    packet_withdraw,
)
from apps.people.models import Person

CYCLE = "2026 H2"
PAST_CYCLE = "2026 H1"
PAST_OPENED_DAYS_AGO = 200  # H1 opened this long before today; its plan's days count from it
MIN_COVERAGE = 0.5
MAX_ITEMS_PER_EXPECTATION = 3

# username, the state the packet ends in, who moved it there (after the owner submitted)
PLAN = [
    ("ken", Packet.State.DRAFT, None),
    ("erin", Packet.State.SUBMITTED, None),
    ("sam", Packet.State.ENDORSED, "maria"),
    ("lena", Packet.State.CHANGES_REQUESTED, "maria"),
]

EXTRA_EVIDENCE = [
    (
        "Model monitoring dashboard for the ticket router",
        "Built latency, drift and accuracy panels for the **ticket-routing model**; the on-call "
        "team now sees a bad deploy within minutes.",
    ),
    (
        "Design review: moving batch scoring to a streaming service",
        "Wrote the design doc, ran the review with the platform and data teams, and split the "
        "migration into three shippable steps.",
    ),
]

# The past cycle: who, the share of their next level's expectations they offer evidence for
# at each submission, and the timeline as (day after the cycle opened, action, who acts,
# extra): a review's extra is its ratings by expectation position ("e" exceeds, "m" meets,
# "b" below, the last letter repeating), a decision's its outcome. Omar rates high, maria
# lower: the calibration chart has something to say.
PAST_PLAN = [
    (
        "ken",
        (1.0,),
        [
            (3, "create", "ken", ""),
            (20, "submit", "ken", ""),
            (26, "endorse", "omar", "eeeem"),
            (80, "decide", "cora", "promoted"),
        ],
    ),
    (
        "erin",
        (0.6,),
        [(5, "create", "erin", ""), (30, "submit", "erin", ""), (41, "decline", "omar", "bbm")],
    ),
    (
        "lena",
        (0.6, 1.0),
        [
            (2, "create", "lena", ""),
            (15, "submit", "lena", ""),
            (19, "request-changes", "maria", ""),
            (28, "submit", "lena", ""),
            (33, "endorse", "maria", "bmm"),
            (82, "decide", "cora", "not_promoted"),
        ],
    ),
    ("sam", (), [(10, "create", "sam", ""), (24, "withdraw", "sam", "")]),
]
PAST_COMMENTS = {
    "submit": "Ready for review.",
    "request-changes": "Add the evidence of leading the migration across teams.",
    "endorse": "Working at the next level.",
    "decline": "Not yet: the design and mentoring expectations need more evidence.",
    "promoted": "Consistent next-level work, strongly endorsed.",
    "not_promoted": "Close; the committee wants to see the cross-team leadership land first.",
    "withdraw": "Not this cycle.",
}
PAST_EVIDENCE = [
    (
        "Feature store backfill for the churn model",
        "Backfilled two years of features and added checks that stop a bad partition "
        "from reaching training.",
    ),
    (
        "On-call runbook for the scoring service",
        "Wrote the runbook and walked the team through it; pages for the service halved.",
    ),
]
RATING_LETTERS = {"e": "exceeds", "m": "meets", "b": "below"}

NARRATIVES = {
    "Technical Expertise": "What I built this half, and how it runs in production.",
    "Problem Solving & Innovation": "The hardest problems I took on and how I approached them.",
    "Collaboration & Communication": "Who I worked with and what changed because of it.",
}


class Command(BaseCommand):
    help = "Create an open promotion cycle and demo packets in several states."

    def add_arguments(self, parser):
        parser.add_argument(
            "--send-mail", action="store_true", help="send the transition emails (default: not)"
        )

    def handle(self, *args, send_mail=False, **options):
        # the past cycle mails nobody: its news is months old
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"):
            self._history()
        if send_mail:
            self._run()
        else:
            with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"):
                self._run()

    def _people(self, usernames: set[str]) -> dict[str, Person]:
        people = {
            p.user.username: p
            for p in Person.objects.filter(user__username__in=usernames).select_related("user")
        }
        missing = sorted(usernames - set(people))
        if missing:
            raise CommandError(f"Run demo_org first (missing: {', '.join(missing)}).")
        return people

    @transaction.atomic
    def _history(self):
        needed = {who for _u, _c, plan in PAST_PLAN for _d, _a, who, _x in plan}
        people = self._people(needed)
        engineers = [people[u] for u, _c, _p in PAST_PLAN]
        if (
            PromotionCycle.objects.filter(name=PAST_CYCLE).exists()
            or Packet.objects.filter(person__in=engineers).exists()
        ):
            return
        today = timezone.localdate()
        opened = timezone.now() - timedelta(days=PAST_OPENED_DAYS_AGO)
        # open while the services run (they refuse a submission after the deadline) ...
        cycle = cycle_save(
            cycle=PromotionCycle(
                name=PAST_CYCLE,
                min_coverage=MIN_COVERAGE,
                opens_on=opened.date(),
                submission_deadline=timezone.now() + timedelta(days=1),
                decision_on=today + timedelta(days=1),
            )
        )
        for username, coverages, plan in PAST_PLAN:
            self._past_packet(people[username], cycle, coverages, plan, people)
        # ... then closed: submissions ended 150 days ago, decisions 115 days ago
        cycle.submission_deadline = opened + timedelta(days=50)
        cycle.decision_on = (opened + timedelta(days=85)).date()
        cycle_save(cycle=cycle)
        self.stdout.write(f"demo packets: {PAST_CYCLE} decided (past cycle, for its analytics)")

    def _past_packet(self, person, cycle, coverages, plan, people):
        user = person.user
        packet = packet_create(person=person, actor=user, cycle=cycle)
        codes = [e.code for e in packet_target_expectations(packet=packet)]
        linked = self._linked(person, packet_target_expectations(packet=packet), PAST_EVIDENCE)
        submissions = iter(coverages)
        for _day, action, username, extra in plan[1:]:
            actor = people[username].user
            comment = PAST_COMMENTS.get(extra if action == "decide" else action, "")
            if action == "submit":
                share = math.ceil(next(submissions) * len(codes))
                items = [
                    ItemSpec(expectation=code, evidence=linked[code][0], note="")
                    for code in codes[:share]
                ]
                packet_update(packet=packet, actor=user, items=items, narratives=NARRATIVES)
                packet_submit(packet_id=packet.pk, actor=actor, comment=comment)
            elif action in ("endorse", "decline"):
                letters = [RATING_LETTERS[c] for c in extra]
                assessments = [
                    AssessmentSpec(expectation=c, rating=letters[min(i, len(letters) - 1)])
                    for i, c in enumerate(codes)
                ]
                review = packet_endorse if action == "endorse" else packet_decline
                review(packet_id=packet.pk, actor=actor, comment=comment, assessments=assessments)
            elif action == "request-changes":
                packet_request_changes(packet_id=packet.pk, actor=actor, comment=comment)
            elif action == "decide":
                packet_decide(packet_id=packet.pk, actor=actor, outcome=extra, rationale=comment)
            elif action == "withdraw":
                packet_withdraw(packet_id=packet.pk, actor=actor, comment=comment)
        self._backdate(packet, [day for day, *_rest in plan])

    @staticmethod
    def _backdate(packet: Packet, days: list[int]) -> None:
        """Move the packet's timeline to the days of its plan: one event per step, in order
        (the services wrote them now, and these rows are the packets app's own)."""
        start = timezone.now() - timedelta(days=PAST_OPENED_DAYS_AGO)
        events = list(PacketEvent.objects.filter(packet=packet).order_by("id"))
        if len(events) != len(days):
            raise CommandError(f"{packet}: {len(events)} events for {len(days)} planned steps")
        submits = []
        for event, day in zip(events, days, strict=True):
            at = start + timedelta(days=day, hours=10)
            PacketEvent.objects.filter(pk=event.pk).update(at=at)
            if event.action == "submit":
                submits.append(at)
            if event.action == "decide":
                Decision.objects.filter(packet=packet).update(decided_at=at)
        for number, at in enumerate(submits, start=1):
            PacketSnapshot.objects.filter(packet=packet, number=number).update(created_at=at)
        if submits:
            Packet.objects.filter(pk=packet.pk).update(submitted_at=submits[-1])

    @transaction.atomic
    def _run(self):
        needed = {u for u, _s, _r in PLAN} | {r for _u, _s, r in PLAN if r}
        people = self._people(needed)
        cycle = self._cycle()
        made = []
        for username, state, reviewer in PLAN:
            person = people[username]
            if Packet.objects.filter(person=person, cycle=cycle).exists():
                continue
            self._packet(person, cycle, state, people.get(reviewer) if reviewer else None)
            made.append(f"{username} ({state.label.lower()})")
        self.stdout.write(
            f"demo packets: {CYCLE} open until {cycle.submission_deadline:%Y-%m-%d}; "
            + (f"created {', '.join(made)}" if made else "nothing new")
        )

    def _cycle(self) -> PromotionCycle:
        today = timezone.localdate()
        cycle = PromotionCycle.objects.filter(name=CYCLE).first()
        if cycle is not None and cycle_is_open(cycle=cycle):
            return cycle
        # new, or a demo database from long ago: open now, deadline a month out
        cycle = cycle or PromotionCycle(name=CYCLE, min_coverage=MIN_COVERAGE)
        cycle.opens_on = min(cycle.opens_on or today, today - timedelta(days=14))
        cycle.submission_deadline = timezone.now() + timedelta(days=30)
        cycle.decision_on = today + timedelta(days=45)
        return cycle_save(cycle=cycle)

    def _packet(self, person: Person, cycle: PromotionCycle, state, reviewer: Person | None):
        user = person.user
        packet = packet_create(person=person, actor=user, cycle=cycle)
        expectations = packet_target_expectations(packet=packet)
        codes = [e.code for e in expectations]
        linked = self._linked(person, expectations, EXTRA_EVIDENCE)
        items = [
            ItemSpec(expectation=code, evidence=ev_id, note="")
            for code in codes
            for ev_id in linked.get(code, [])[:MAX_ITEMS_PER_EXPECTATION]
        ]
        packet_update(packet=packet, actor=user, items=items, narratives=NARRATIVES)
        if state == Packet.State.DRAFT:
            return packet
        packet_submit(packet_id=packet.pk, actor=user, comment="Ready for review.")
        if state == Packet.State.ENDORSED:
            packet_endorse(
                packet_id=packet.pk,
                actor=reviewer.user,
                comment="Consistently working at the next level; ready for the committee.",
                assessments=[AssessmentSpec(expectation=c, rating="meets") for c in codes],
            )
        elif state == Packet.State.CHANGES_REQUESTED:
            packet_request_changes(
                packet_id=packet.pk,
                actor=reviewer.user,
                comment="Strong start. Add evidence of leading work across teams, and say more "
                "about the impact in the narratives.",
            )
        return packet

    def _linked(self, person: Person, expectations, extra) -> dict[str, list[int]]:
        """The person's accepted, live evidence linked to each expectation, newest first;
        not their private items (putting one in a packet would share it). Expectations with
        none get one of the `extra` (title, description) items first, linked to them."""
        linked = self._linked_now(person, expectations)
        uncovered = [e.code for e in expectations if e.code not in linked]
        if not uncovered:
            return linked
        for n, (title, description) in enumerate(extra):
            picked = uncovered[n :: len(extra)]
            if picked:
                evidence_create(
                    person=person,
                    actor=person.user,
                    title=title,
                    description=description,
                    links=[
                        LinkSpec(expectation=c, rationale="Shows this at the next level.")
                        for c in picked
                    ],
                )
        return self._linked_now(person, expectations)

    @staticmethod
    def _linked_now(person: Person, expectations) -> dict[str, list[int]]:
        rows = (
            EvidenceLink.objects.filter(
                evidence_usable_q("evidence__"),
                evidence__person=person,
                expectation__in=[e.pk for e in expectations],
            )
            .exclude(evidence__visibility=Evidence.Visibility.PRIVATE)
            .order_by("-evidence__occurred_on", "-evidence_id")
            .values_list("expectation__code", "evidence_id")
        )
        out: dict[str, list[int]] = {}
        for code, ev_id in rows:
            out.setdefault(code, []).append(ev_id)
        return out
