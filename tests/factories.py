"""factory-boy factories and the one org builder, shared by the test suite and benchmarks/.

- `UserFactory`, `AdminUserFactory`, `PersonFactory`: accounts and people.
- `EvidenceFactory`: evidence written through `evidence_create`, as a person would.
- `PromotionCycleFactory`: a cycle, open by default (dates relative to today).
- `PacketFactory(state=...)`: a packet put straight into any state, with the rows the
  services would have written on the way there.
- `org_build` / `Org`: the role-named org chart (the `org` fixture in tests/conftest.py).
- `evidence_bulk_create`, `packet_fill`: thousands of rows with bulk_create, for query
  counts and benchmarks.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from datetime import date, timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from apps.evidence.markdown import markdown_render
from apps.evidence.models import Evidence, EvidenceLink
from apps.evidence.services import evidence_create
from apps.ladders.models import Expectation
from apps.ladders.selectors import ladder_version_published
from apps.packets.models import (
    Assessment,
    Decision,
    Packet,
    PacketEvent,
    PacketItem,
    PacketSnapshot,
    PromotionCycle,
)
from apps.packets.services import packet_snapshot_data
from apps.people.models import Person

PASSWORD = "test-pass-123"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password(PASSWORD)


class AdminUserFactory(UserFactory):
    is_staff = True
    is_superuser = True


class PersonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Person

    user = factory.SubFactory(UserFactory)
    email = factory.LazyAttribute(lambda p: p.user.email if p.user else "")
    name = factory.Faker("name")
    level = 2
    manager = None


# --- evidence ------------------------------------------------------------------------------


class EvidenceFactory(factory.django.DjangoModelFactory):
    """Accepted manual evidence, created through `evidence_create` (so with its "created"
    event, rendered description, links and skills). `actor` defaults to the owner's user;
    every other keyword is an `evidence_create` argument."""

    class Meta:
        model = Evidence

    person = factory.SubFactory(PersonFactory)
    title = factory.Sequence(lambda n: f"Work {n}")

    @classmethod
    def _create(cls, model_class, *, person, actor=None, **kwargs):
        return evidence_create(person=person, actor=actor or person.user, **kwargs)


def evidence_bulk_create(
    person: Person,
    n: int,
    *,
    title: str = "item {i}",
    description: str = "d",
    description_html: str = "<p>d</p>",
    url: str = "",
    start: date = date(2025, 1, 1),
    spread_days: int = 300,
    status: str = Evidence.Status.ACCEPTED,
) -> list[Evidence]:
    """n evidence items of `person` in one bulk_create, with their ids. The text fields are
    format strings of `i`; `occurred_on` walks `spread_days` days from `start`."""
    made = Evidence.objects.bulk_create(
        Evidence(
            person=person,
            title=title.format(i=i),
            description=description.format(i=i),
            description_html=description_html.format(i=i),
            url=url.format(i=i),
            occurred_on=start + timedelta(days=i % spread_days),
            status=status,
        )
        for i in range(n)
    )
    if any(e.pk is None for e in made):  # backends that do not return ids from bulk_create
        made = list(Evidence.objects.filter(person=person).order_by("-pk")[:n])[::-1]
    return made


def level_expectations(ladder_version, level: int) -> list[Expectation]:
    """The expectations of one level, in the ladder's order."""
    return list(
        Expectation.objects.filter(version=ladder_version, level__number=level).order_by(
            "competency__position", "position"
        )
    )


def level_codes(ladder_version, level: int) -> list[str]:
    return [e.code for e in level_expectations(ladder_version, level)]


# --- cycles and packets --------------------------------------------------------------------


class PromotionCycleFactory(factory.django.DjangoModelFactory):
    """An open cycle: opened five days ago, submissions due in ten days, decisions in twenty,
    coverage minimum 50%. The Params move the dates relative to today."""

    class Meta:
        model = PromotionCycle

    class Params:
        opens_in_days = -5
        deadline_in = timedelta(days=10)
        decision_in_days = 20

    name = factory.Sequence(lambda n: f"Cycle {n}")
    opens_on = factory.LazyAttribute(
        lambda c: timezone.localdate() + timedelta(days=c.opens_in_days)
    )
    submission_deadline = factory.LazyAttribute(lambda c: timezone.now() + c.deadline_in)
    decision_on = factory.LazyAttribute(
        lambda c: timezone.localdate() + timedelta(days=c.decision_in_days)
    )
    min_coverage = 0.5


PACKET_STATES = [
    "draft",
    "submitted",
    "changes_requested",
    "endorsed",
    "declined",
    "promoted",
    "not_promoted",
    "withdrawn",
]
SUBMITTED_ONCE = set(PACKET_STATES) - {"draft", "withdrawn"}
REVIEWED = {"endorsed", "declined", "promoted", "not_promoted"}
DECIDED = {"promoted", "not_promoted"}
NARRATIVES = {"Technical Expertise": "I *built* the retraining pipeline."}


def canonical_sha256(data: dict) -> str:
    """The snapshot hash as DESIGN.md defines it: sha256 of the canonical JSON."""
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class PacketFactory(factory.django.DjangoModelFactory):
    """A packet put straight into `state`, with what the services would have written on the
    way there: items covering every expectation of the target level with `evidence` (round
    robin; three new items of the owner's by default), narratives, the snapshot from the
    first submission on, `reviewer`'s assessments from a review on, `decider`'s Decision for
    a decided packet, and the PacketEvent timeline.

        PacketFactory(person=erin, cycle=cycle, state="endorsed", evidence=items,
                      reviewer=omar, decider=cora)
    """

    class Meta:
        model = Packet

    person = factory.SubFactory(PersonFactory)
    cycle = factory.SubFactory(PromotionCycleFactory)
    ladder_version = factory.LazyAttribute(
        lambda p: ladder_version_published(ladder_id=p.person.ladder_id)
    )
    target_level = factory.LazyAttribute(lambda p: (p.person.level or 0) + 1)
    state = "draft"
    evidence = None
    reviewer = None
    decider = None

    @classmethod
    def _create(
        cls,
        model_class,
        *,
        person,
        cycle,
        ladder_version,
        target_level,
        state,
        evidence,
        reviewer,
        decider,
    ):
        if state not in PACKET_STATES:
            raise ValueError(f"unknown packet state {state!r}")
        if evidence is None:
            evidence = EvidenceFactory.create_batch(3, person=person)
        packet = model_class.objects.create(
            person=person,
            cycle=cycle,
            ladder_version=ladder_version,
            from_level=person.level,
            target_level=target_level,
            state="draft",
            narratives=dict(NARRATIVES),
            narratives_html={k: markdown_render(v) for k, v in NARRATIVES.items()},
        )
        expectations = level_expectations(ladder_version, target_level)
        PacketItem.objects.bulk_create(
            PacketItem(
                packet=packet,
                expectation=exp,
                evidence=evidence[i % len(evidence)],
                note=f"note {i}",
                position=i,
            )
            for i, exp in enumerate(expectations)
        )
        events = [("create", "", "draft", None)]
        if state in SUBMITTED_ONCE:
            data = packet_snapshot_data(packet=packet)
            PacketSnapshot.objects.create(
                packet=packet, number=1, data=data, sha256=canonical_sha256(data)
            )
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
            action = "decline" if to == "declined" else "endorse"
            events.append((action, "submitted", to, reviewer.user))
        if state in DECIDED:
            Decision.objects.create(
                packet=packet, outcome=state, rationale="Decided earlier", decided_by=decider
            )
            events.append(("decide", "endorsed", state, decider.user))
        if state == "withdrawn":
            events.append(("withdraw", "draft", "withdrawn", person.user))
        for action, before, after, actor in events:
            PacketEvent.objects.create(
                packet=packet,
                actor=actor or person.user,
                action=action,
                from_state=before,
                to_state=after,
            )
        packet.state = state
        packet.save()
        return packet


def packet_fill(
    packet: Packet,
    n: int,
    *,
    title: str = "Bulk evidence {i}",
    description: str = "Did thing {i}.",
    description_html: str = "<p>Did thing {i}.</p>",
    url: str = "https://example.com/work/{i}",
    note: str = "why {i}",
    spread_days: int = 365,
) -> list[Evidence]:
    """Replace the packet's items with n new accepted evidence items of its owner, each
    linked to and offered for one expectation of the target level (round robin), all with
    bulk_create. The text fields are format strings of `i`."""
    expectations = level_expectations(packet.ladder_version, packet.target_level)
    made = evidence_bulk_create(
        packet.person,
        n,
        title=title,
        description=description,
        description_html=description_html,
        url=url,
        spread_days=spread_days,
    )
    EvidenceLink.objects.bulk_create(
        EvidenceLink(evidence=ev, expectation=expectations[i % len(expectations)])
        for i, ev in enumerate(made)
    )
    PacketItem.objects.filter(packet=packet).delete()
    PacketItem.objects.bulk_create(
        PacketItem(
            packet=packet,
            expectation=expectations[i % len(expectations)],
            evidence=ev,
            note=note.format(i=i),
            position=i,
        )
        for i, ev in enumerate(made)
    )
    return made


# --- the org -------------------------------------------------------------------------------


@dataclass
class Org:
    """The org chart every test builds (`org_build`), by role:

    director (maria, level 5)
      └─ manager (omar, level 4)
           ├─ engineer (erin, level 2)   ← the person under test
           └─ peer (pete, level 2)
    other_manager (nina, level 4)
      └─ other_engineer (otto, level 2)  ← another team
    committee (cora, level 5, on the promotion committee, reports to nobody)
    admin (ada, is_staff and superuser, a person too)

    Usernames are the lower-case names; everyone's password is PASSWORD.
    """

    engineer: Person
    manager: Person
    director: Person
    peer: Person
    other_manager: Person
    other_engineer: Person
    committee: Person
    admin: Person

    @classmethod
    def roles(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @property
    def people(self) -> dict[str, Person]:
        return {role: getattr(self, role) for role in self.roles()}

    def __getitem__(self, role: str) -> Person:
        return self.people[role]

    def client(self, role: str) -> APIClient:
        """An API client authenticated as `role` ("anonymous": not authenticated)."""
        return APIClient() if role == "anonymous" else api_client(self[role])


def api_client(person_or_user) -> APIClient:
    """An API client authenticated as a person (or a bare user)."""
    client = APIClient()
    client.force_authenticate(getattr(person_or_user, "user", person_or_user))
    return client


def org_build(*, ladder=None) -> Org:
    def person(username: str, level: int = 2, **kw) -> Person:
        return PersonFactory(
            user__username=username, name=username.title(), ladder=ladder, level=level, **kw
        )

    director = person("maria", 5)
    manager = person("omar", 4, manager=director)
    engineer = person("erin", 2, manager=manager)
    peer = person("pete", 2, manager=manager)
    other_manager = person("nina", 4)
    other_engineer = person("otto", 2, manager=other_manager)
    committee = person("cora", 5, is_committee=True)
    admin = PersonFactory(user=AdminUserFactory(username="ada"), name="Ada", ladder=ladder, level=2)
    return Org(
        engineer=engineer,
        manager=manager,
        director=director,
        peer=peer,
        other_manager=other_manager,
        other_engineer=other_engineer,
        committee=committee,
        admin=admin,
    )
