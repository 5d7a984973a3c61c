"""manage.py demo_packets: an open cycle and packets in several states for the demo org, so
every role finds work waiting (idempotent).

- "2026 H2", open now, minimum coverage 0.5;
- ken: a draft (his to finish and submit);
- erin: submitted, waiting for her manager omar;
- sam: endorsed by maria, waiting for the committee — maria is sam's manager and so does
  not decide it: cora does;
- lena: changes requested by maria, back with lena.

Everything goes through the services (create, items, narratives, submit, review), with the
person's own accepted evidence linked to expectations of the target level; anyone with too
little gets a couple of accepted items linked to the uncovered expectations first. A person
who already has a packet in the cycle is left alone, so a second run changes nothing.
Transition emails are not sent for this seed data (pass --send-mail to send them).
"""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone

from apps.evidence.models import Evidence, EvidenceLink, evidence_usable_q
from apps.evidence.services import LinkSpec, evidence_create
from apps.packets.models import Packet, PromotionCycle
from apps.packets.selectors import packet_target_expectations
from apps.packets.services import (
    AssessmentSpec,
    ItemSpec,
    cycle_is_open,
    cycle_save,
    packet_create,
    packet_endorse,
    packet_request_changes,
    packet_submit,
    packet_update,
)
from apps.people.models import Person

CYCLE = "2026 H2"
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
        if send_mail:
            self._run()
        else:
            with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"):
                self._run()

    @transaction.atomic
    def _run(self):
        needed = {u for u, _s, _r in PLAN} | {r for _u, _s, r in PLAN if r}
        people = {
            p.user.username: p
            for p in Person.objects.filter(user__username__in=needed).select_related("user")
        }
        missing = sorted(needed - set(people))
        if missing:
            raise CommandError(f"Run demo_org first (missing: {', '.join(missing)}).")
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
        linked = self._linked(person, expectations)
        uncovered = [c for c in codes if c not in linked]
        if uncovered:
            for n, (title, description) in enumerate(EXTRA_EVIDENCE):
                picked = uncovered[n :: len(EXTRA_EVIDENCE)]
                if picked:
                    evidence_create(
                        person=person,
                        actor=user,
                        title=title,
                        description=description,
                        links=[
                            LinkSpec(expectation=c, rationale="Shows this at the next level.")
                            for c in picked
                        ],
                    )
            linked = self._linked(person, expectations)
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

    @staticmethod
    def _linked(person: Person, expectations) -> dict[str, list[int]]:
        """The person's accepted, live evidence linked to each expectation, newest first;
        not their private items (putting one in a packet would share it)."""
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
