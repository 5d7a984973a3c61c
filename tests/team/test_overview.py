"""The team overview (GET /api/v1/team/, /team/) and a person of the team (/team/<id>/)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework import serializers

from apps.evidence.models import Evidence
from apps.evidence.services import LinkSpec
from apps.ladders.selectors import ladder_version_published
from apps.packets.selectors import packet_coverage
from apps.people.models import LevelChange, Person
from apps.people.selectors import person_report_ids, person_reports_subquery
from apps.team.selectors import team_person
from ladder_tracker.errors import NotFoundError
from tests.factories import (
    EvidenceFactory,
    PacketFactory,
    PersonFactory,
    PromotionCycleFactory,
    api_client,
    level_codes,
)

pytestmark = pytest.mark.django_db


def rows_of(person, **params):
    response = api_client(person).get("/api/v1/team/", params)
    assert response.status_code == 200, response.content
    return response.json()


def by_name(rows):
    return {r["name"]: r for r in rows}


def linked(person, codes, **kw):
    return EvidenceFactory(person=person, links=[LinkSpec(expectation=c) for c in codes], **kw)


def test_each_role_gets_the_people_it_oversees(org):
    assert set(by_name(rows_of(org.manager))) == {"Erin", "Pete"}
    assert set(by_name(rows_of(org.director))) == {"Omar", "Erin", "Pete"}
    assert set(by_name(rows_of(org.other_manager))) == {"Otto"}
    assert rows_of(org.engineer) == []
    assert rows_of(org.committee) == []
    everyone = by_name(rows_of(org.admin))
    assert {"Maria", "Omar", "Erin", "Pete", "Nina", "Otto", "Cora", "Ada"} <= set(everyone)


def test_a_row_says_where_the_person_stands(org):
    version = ladder_version_published(ladder_id=org.engineer.ladder_id)
    codes = level_codes(version, 3)
    linked(org.engineer, codes[:2], occurred_on=timezone.localdate() - timedelta(days=10))
    linked(org.engineer, codes[2:3], occurred_on=timezone.localdate() - timedelta(days=200))
    # A private item counts for nobody but its owner (and admins): not even as a number.
    linked(org.engineer, codes[3:5], visibility=Evidence.Visibility.PRIVATE)
    candidate = EvidenceFactory(person=org.engineer, title="Imported")
    Evidence.objects.filter(pk=candidate.pk).update(status=Evidence.Status.CANDIDATE)

    erin = by_name(rows_of(org.manager))["Erin"]
    assert erin["person"] == org.engineer.pk
    assert erin["manager"] == {"id": org.manager.pk, "name": "Omar"}
    assert (erin["level"], erin["next_level"]) == (2, 3)
    assert erin["coverage"] == round(3 / len(codes), 4)
    assert erin["packet"] is None
    assert erin["candidates_waiting"] == 1
    assert erin["evidence_90d"] == 1
    # written out by hand (apps/team/api.py): what DRF's DateTimeField would write
    newest = Evidence.objects.filter(person=org.engineer, status="accepted").exclude(
        visibility="private"
    )
    newest = max(newest.values_list("updated_at", flat=True))
    assert erin["last_activity"] == serializers.DateTimeField().to_representation(newest)
    assert erin["last_activity"].endswith("Z")
    pete = by_name(rows_of(org.manager))["Pete"]
    assert (pete["coverage"], pete["candidates_waiting"], pete["evidence_90d"]) == (0, 0, 0)
    assert pete["last_activity"] is None

    as_admin = by_name(rows_of(org.admin))["Erin"]
    assert as_admin["coverage"] == round(5 / len(codes), 4)


def test_with_a_packet_the_coverage_is_the_builders(org):
    cycle = PromotionCycleFactory()
    version = ladder_version_published(ladder_id=org.engineer.ladder_id)
    codes = level_codes(version, 3)
    linked(org.engineer, codes)  # all linked, but the packet offers what it offers
    packet = PacketFactory(person=org.engineer, cycle=cycle, state="submitted")
    packet.items.filter(position__gte=2).delete()

    erin = by_name(rows_of(org.manager))["Erin"]
    assert erin["packet"] == {"id": packet.pk, "state": "submitted"}
    assert erin["coverage"] == round(packet_coverage(packet=packet).overall, 4)
    assert 0 < erin["coverage"] < 1


def test_filters_and_sort(org):
    version = ladder_version_published(ladder_id=org.engineer.ladder_id)
    linked(org.peer, level_codes(version, 3)[:3])
    cycle = PromotionCycleFactory()
    PacketFactory(person=org.engineer, cycle=cycle, state="draft")

    names = lambda **p: [r["name"] for r in rows_of(org.director, **p)]  # noqa: E731
    assert names() == ["Erin", "Omar", "Pete"]
    assert names(sort="-name") == ["Pete", "Omar", "Erin"]
    assert names(sort="-coverage")[0] in {"Erin", "Pete"}
    assert names(sort="level") == ["Erin", "Pete", "Omar"]
    assert names(manager=org.manager.pk) == ["Erin", "Pete"]
    assert names(level=4) == ["Omar"]
    assert names(packet_state="draft") == ["Erin"]
    assert names(packet_state="none") == ["Omar", "Pete"]
    assert names(q="PE") == ["Pete"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sort": "salary"}, "sort"),
        ({"level": "high"}, "level"),
        ({"packet_state": "lost"}, "packet_state"),
        ({"manager": "0"}, "manager"),
    ],
)
def test_bad_query_is_a_400_naming_the_field(org, params, field):
    response = api_client(org.manager).get("/api/v1/team/", params)
    assert response.status_code == 400
    assert field in str(response.json())


def test_anonymous_is_refused(client, org):
    assert client.get("/api/v1/team/").status_code in (401, 403)


def _team(manager, n, cycle):
    leads = PersonFactory.create_batch(2, manager=manager, ladder=manager.ladder, level=3)
    people = [PersonFactory(manager=leads[i % 2], ladder=manager.ladder, level=2) for i in range(n)]
    version = ladder_version_published(ladder_id=manager.ladder_id)
    codes = level_codes(version, 3)
    for i, person in enumerate(people[:4]):
        linked(person, codes[: i + 1])
    PacketFactory(person=people[0], cycle=cycle, state="submitted", reviewer=leads[0])
    return people


def test_query_count_does_not_grow_with_the_team(ladder):
    small_boss = PersonFactory(user__username="small", ladder=ladder, level=5)
    big_boss = PersonFactory(user__username="big", ladder=ladder, level=5)
    cycle = PromotionCycleFactory()  # the current cycle: both teams have a packet in it
    _team(small_boss, 20, cycle)
    _team(big_boss, 200, cycle)
    counts = []
    for boss, expected in ((small_boss, 22), (big_boss, 202)):
        client = api_client(boss)
        with CaptureQueriesContext(connection) as ctx:
            response = client.get("/api/v1/team/")
        assert len(response.json()) == expected
        counts.append(len(ctx.captured_queries))
    # the team (the org walk is one recursive statement inside it, whatever the depth);
    # versions, cycle, packets, expectations, links, packet items, counts
    assert counts[0] == counts[1] == 8, counts


def test_the_org_walk_is_the_same_set_at_any_depth_and_survives_a_cycle(org, ladder):
    top = PersonFactory(ladder=ladder, level=5)
    chain = [top]
    for _ in range(6):  # six levels below the top
        chain.append(PersonFactory(manager=chain[-1], ladder=ladder, level=2))
    Person.objects.filter(pk=top.pk).update(manager=chain[-1])  # a loop back to the top
    for person in (top, chain[2], org.director, org.manager, org.engineer):
        person.refresh_from_db()
        walked = person_report_ids(person=person)
        one_statement = set(
            Person.objects.filter(pk__in=person_reports_subquery(person=person)).values_list(
                "pk", flat=True
            )
        )
        by_user = set(
            Person.objects.filter(pk__in=person_reports_subquery(user=person.user)).values_list(
                "pk", flat=True
            )
        )
        assert one_statement == by_user == walked
    assert walked == set()  # the engineer has no reports
    assert person_report_ids(person=top) == {p.pk for p in chain[1:]}


def test_person_page_query_count_does_not_grow_with_the_team(ladder):
    small_boss = PersonFactory(user__username="small", ladder=ladder, level=5)
    big_boss = PersonFactory(user__username="big", ladder=ladder, level=5)
    cycle = PromotionCycleFactory()
    small = _team(small_boss, 20, cycle)
    big = _team(big_boss, 200, cycle)
    counts = []
    for boss, person in ((small_boss, small[0]), (big_boss, big[0])):
        with CaptureQueriesContext(connection) as ctx:
            overview = team_person(viewer=boss.user, person_id=person.pk)
        assert overview.person == person and overview.packets
        counts.append(len(ctx.captured_queries))
    # the person (the membership test too), version, expectations, links, packets, history
    assert counts[0] == counts[1] == 6, counts
    with pytest.raises(NotFoundError):
        team_person(viewer=small_boss.user, person_id=big[0].pk)  # not in that team
    Person.objects.filter(pk=small[1].pk).update(is_active=False)
    with pytest.raises(NotFoundError):
        team_person(viewer=small_boss.user, person_id=small[1].pk)  # left: not listed either


# --- pages ---------------------------------------------------------------------------------


def login(client, person):
    client.force_login(person.user)
    return client


def test_page_groups_people_by_manager(client, org):
    html = login(client, org.director).get("/team/").content.decode()
    assert "Reporting to Maria" in html and "Reporting to Omar" in html
    assert html.index("Reporting to Maria") < html.index("Omar</a>")
    assert f'href="/team/{org.engineer.pk}/"' in html
    assert "3 of 3 people" in html


def test_page_sorts_and_filters_and_shows_form_errors(client, org):
    login(client, org.director)
    html = client.get("/team/?sort=-name").content.decode()
    assert html.index("Pete</a>") < html.index("Erin</a>")
    assert 'aria-sort="descending"' in html
    filtered = client.get(f"/team/?manager={org.manager.pk}").content.decode()
    assert "2 of 3 people" in filtered
    broken = client.get("/team/?level=high&sort=salary")
    assert broken.status_code == 200
    assert "Enter a whole number" in broken.content.decode()


def test_page_is_a_404_for_someone_without_reports(client, org):
    assert login(client, org.engineer).get("/team/").status_code == 404
    assert login(client, org.admin).get("/team/").status_code == 200


def test_person_page_shows_position_coverage_packets_and_history(client, org):
    version = ladder_version_published(ladder_id=org.engineer.ladder_id)
    codes = level_codes(version, 3)
    linked(org.engineer, codes[:1], title="Shipped the model registry")
    linked(org.engineer, codes[1:2], title="Secret side project", visibility="private")
    packet = PacketFactory(person=org.engineer, cycle=PromotionCycleFactory(), state="draft")
    LevelChange.objects.create(
        person=org.engineer, from_level=1, to_level=2, effective_on="2025-01-01", reason="Promoted"
    )
    html = login(client, org.director).get(f"/team/{org.engineer.pk}/").content.decode()
    assert "working towards level 3" in html
    assert "Shipped the model registry" in html
    assert "Secret side project" not in html
    assert codes[0] in html and codes[1] in html
    assert f'href="/packets/{packet.pk}/"' in html
    assert "1 → 2" in html and "Promoted" in html


def test_person_page_is_a_404_outside_your_team(client, org):
    login(client, org.manager)
    assert client.get(f"/team/{org.other_engineer.pk}/").status_code == 404
    assert client.get(f"/team/{org.director.pk}/").status_code == 404
    assert client.get("/team/999999/").status_code == 404


def test_a_manager_id_beyond_a_database_integer_is_a_400(org):
    response = api_client(org.manager).get("/api/v1/team/", {"manager": 2**70})
    assert response.status_code == 400 and "manager" in response.json()["error"]["detail"]


def test_a_filtered_page_reads_the_team_once(client, org):
    login(client, org.director)
    unfiltered = CaptureQueriesContext(connection)
    with unfiltered:
        client.get("/team/")
    filtered = CaptureQueriesContext(connection)
    with filtered:
        client.get(f"/team/?manager={org.manager.pk}&sort=-coverage")
    assert len(filtered.captured_queries) == len(unfiltered.captured_queries)
