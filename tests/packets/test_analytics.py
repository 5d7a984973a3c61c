"""Cycle analytics (apps/packets/analytics.py, charts.py): the numbers on a hand-built cycle,
the same numbers in the API and on the page, the SVG charts well formed with the bars and
labels they should have, who may read them (as the cycle report), an empty cycle, and a
fixed number of queries whatever the number of packets.

The hand-built cycle (the `org` fixture: maria → omar → erin, pete; nina → otto; cora on
the committee; ike, level 3, reports to nina). Days after T0:

| packet | target | timeline (day: to state) | latest coverage | assessments |
|---|---|---|---|---|
| erin | 3 | 0 draft, 2 submitted, 5 endorsed (omar), 12 promoted | 1.0 | omar: 3 exceeds, 1 meets |
| pete | 3 | 0 draft, 4 submitted, 5 declined (omar) | 0.55 | omar: 2 below |
| otto | 3 | 0 draft, 1 submitted, 3 endorsed (nina), 13 not promoted | 0.8 | nina: 4 meets |
| omar | 5 | 0 draft, 2 submitted, 3 changes req. (maria), 5 submitted | 0.6, 0.95 | maria: 1 below|
| ike | 4 | 0 draft (an event at day 1 that changes no state) | — | — |
| pete | 3 | 0 draft, 6 withdrawn | — | — |
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from apps.packets.analytics import cycle_analytics
from apps.packets.charts import cycle_charts, duration_text
from apps.packets.models import Assessment, Packet, PacketEvent, PacketSnapshot
from tests.factories import (
    PersonFactory,
    PromotionCycleFactory,
    api_client,
    level_expectations,
)

pytestmark = pytest.mark.django_db

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DAY = 86400


def _packet(person, cycle, ladder_version, target, timeline, coverage=(), ratings=()):
    """A packet with its events at T0 + days, its snapshots' coverage and assessments
    (reviewer, rating, how many): rows written directly, so every time is the one given."""
    state = [s for _d, _a, s, _actor in timeline if s][-1]
    packet = Packet.objects.create(
        person=person,
        cycle=cycle,
        ladder_version=ladder_version,
        from_level=person.level,
        target_level=target,
        state=state,
    )
    for days, action, to_state, actor in timeline:
        event = PacketEvent.objects.create(
            packet=packet, actor=(actor or person).user, action=action, to_state=to_state
        )
        PacketEvent.objects.filter(pk=event.pk).update(at=T0 + timedelta(days=days))
    for number, overall in enumerate(coverage, start=1):
        PacketSnapshot.objects.create(
            packet=packet,
            number=number,
            sha256="0" * 64,
            data={"coverage": {"overall": overall, "by_competency": {}}},
        )
    expectations = iter(level_expectations(ladder_version, target))
    for reviewer, rating, n in ratings:
        for _ in range(n):
            Assessment.objects.create(
                packet=packet, reviewer=reviewer, expectation=next(expectations), rating=rating
            )
    return packet


@pytest.fixture
def built(org, ladder_version):
    return hand_built_cycle(org, ladder_version)


def hand_built_cycle(org, ladder_version):
    """The cycle of the module's table (the browser journey reads it too)."""
    cycle = PromotionCycleFactory(name="2026 H1", min_coverage=0.6)
    o = org
    ike = PersonFactory(
        user__username="ike", name="Ike", ladder=o.engineer.ladder, level=3, manager=o.other_manager
    )
    v = ladder_version
    _packet(
        o.engineer,
        cycle,
        v,
        3,
        [
            (0, "create", "draft", None),
            (2, "submit", "submitted", None),
            (5, "endorse", "endorsed", o.manager),
            (12, "decide", "promoted", o.committee),
        ],
        coverage=[1.0],
        ratings=[(o.manager, "exceeds", 3), (o.manager, "meets", 1)],
    )
    _packet(
        o.peer,
        cycle,
        v,
        3,
        [
            (0, "create", "draft", None),
            (4, "submit", "submitted", None),
            (5, "decline", "declined", o.manager),
        ],
        coverage=[0.55],
        ratings=[(o.manager, "below", 2)],
    )
    _packet(
        o.other_engineer,
        cycle,
        v,
        3,
        [
            (0, "create", "draft", None),
            (1, "submit", "submitted", None),
            (3, "endorse", "endorsed", o.other_manager),
            (13, "decide", "not_promoted", o.committee),
        ],
        coverage=[0.8],
        ratings=[(o.other_manager, "meets", 4)],
    )
    _packet(
        o.manager,
        cycle,
        v,
        5,
        [
            (0, "create", "draft", None),
            (2, "submit", "submitted", None),
            (3, "request-changes", "changes_requested", o.director),
            (5, "submit", "submitted", None),
        ],
        coverage=[0.6, 0.95],
        ratings=[(o.director, "below", 1)],
    )
    _packet(ike, cycle, v, 4, [(0, "create", "draft", None), (1, "share", "", None)])
    _packet(o.peer, cycle, v, 3, [(0, "create", "draft", None), (6, "withdraw", "withdrawn", None)])
    PromotionCycleFactory(name="Elsewhere")  # another cycle's rows never count
    return cycle


ZERO = {"promoted": 0, "not_promoted": 0, "declined": 0, "withdrawn": 0, "open": 0}


def test_the_numbers_of_a_hand_built_cycle(built, org):
    data = cycle_analytics(cycle=built).as_dict()

    assert data["packets"] == 6
    cov = data["coverage_at_submission"]
    assert (cov["submitted"], cov["median"], cov["mean"], cov["below_minimum"]) == (
        4,
        0.875,
        0.825,
        1,  # the latest snapshot of each: 1.0, 0.55, 0.8, 0.95
    )
    assert [b["count"] for b in cov["buckets"]] == [0, 0, 0, 0, 0, 1, 0, 0, 1, 2]
    assert cov["buckets"][9]["label"] == "90–100%"

    assert data["outcomes_by_level"] == [
        {
            "target_level": 3,
            "label": "Level 3",
            "total": 4,
            "counts": {**ZERO, "promoted": 1, "not_promoted": 1, "declined": 1, "withdrawn": 1},
        },
        {"target_level": 4, "label": "Level 4", "total": 1, "counts": {**ZERO, "open": 1}},
        {"target_level": 5, "label": "Level 5", "total": 1, "counts": {**ZERO, "open": 1}},
    ]
    # the last reviewer; before any review (ike's draft, pete's withdrawn one) their manager
    assert data["outcomes_by_manager"] == [
        {"manager": org.director.pk, "label": "Maria", "total": 1, "counts": {**ZERO, "open": 1}},
        {
            "manager": org.other_manager.pk,
            "label": "Nina",
            "total": 2,
            "counts": {**ZERO, "not_promoted": 1, "open": 1},
        },
        {
            "manager": org.manager.pk,
            "label": "Omar",
            "total": 3,
            "counts": {**ZERO, "promoted": 1, "declined": 1, "withdrawn": 1},
        },
    ]

    ratings = data["ratings"]
    assert ratings["cycle"] == {
        "counts": {"below": 3, "meets": 5, "exceeds": 3},
        "total": 11,
        "mean": 2.0,
    }
    assert [
        (r["name"], r["counts"], r["mean"], r["difference"]) for r in ratings["by_reviewer"]
    ] == [
        ("Maria", {"below": 1, "meets": 0, "exceeds": 0}, 1.0, -1.0),
        ("Nina", {"below": 0, "meets": 4, "exceeds": 0}, 2.0, 0.0),
        ("Omar", {"below": 2, "meets": 1, "exceeds": 3}, 2.1667, 0.1667),  # (2 + 2 + 9) / 6
    ]

    times = {t["state"]: t for t in data["time_in_state"]}
    assert list(times) == ["draft", "submitted", "changes_requested", "endorsed"]

    def days(t):
        return {
            k: (v / DAY if v is not None else None) for k, v in t.items() if k.endswith("_seconds")
        } | {"count": t["count"], "current": t["current"]}

    # draft stays 2, 4, 1, 2, 6 days; ike is still in draft (his "share" event moves nothing)
    assert days(times["draft"]) == {
        "count": 5,
        "current": 1,
        "p25_seconds": 2,
        "median_seconds": 2,
        "p75_seconds": 4,
        "p90_seconds": 5.2,
        "max_seconds": 6,
    }
    # submitted 3, 1, 2 and 1 (omar's first); omar's second submission is still waiting
    assert days(times["submitted"]) == {
        "count": 4,
        "current": 1,
        "p25_seconds": 1,
        "median_seconds": 1.5,
        "p75_seconds": 2.25,
        "p90_seconds": 2.7,
        "max_seconds": 3,
    }
    assert days(times["endorsed"]) == {
        "count": 2,
        "current": 0,
        "p25_seconds": 7.75,
        "median_seconds": 8.5,
        "p75_seconds": 9.25,
        "p90_seconds": 9.7,
        "max_seconds": 10,
    }
    assert days(times["changes_requested"])["median_seconds"] == 2


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "—"),
        (12.4, "12 s"),
        (90, "2 min"),
        (5400, "1.5 h"),
        (86400, "1.0 d"),
        (9 * DAY, "9.0 d"),
    ],
)
def test_durations_read_in_the_unit_that_fits(seconds, text):
    assert duration_text(seconds) == text


def _svg(text: str) -> ET.Element:
    root = ET.fromstring(text)  # well formed, or this raises
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    chart_id = root.get("id")
    assert root.get("aria-labelledby") == f"{chart_id}-title"
    assert root.get("aria-describedby") == f"{chart_id}-desc"
    assert root.find(f"{SVG}title").text and root.find(f"{SVG}desc").text
    return root


def _bars(root) -> dict[tuple[str | None, str], int]:
    return {
        (r.get("data-row"), r.get("data-key")): int(r.get("data-count"))
        for r in root.iter(f"{SVG}rect")
        if r.get("class") == "bar"
    }


def _texts(root) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def test_the_charts_are_well_formed_svg_with_the_expected_bars(built):
    charts = cycle_charts(cycle_analytics(cycle=built))

    coverage = _svg(charts["coverage"])
    assert {k: n for (_r, k), n in _bars(coverage).items() if n} == {
        "50–60%": 1,
        "80–90%": 1,
        "90–100%": 2,
    }
    assert "minimum 60%" in _texts(coverage) and "median 88% · 4 submitted" in _texts(coverage)

    by_level = _svg(charts["by_level"])
    assert _bars(by_level) == {
        ("Level 3", "promoted"): 1,
        ("Level 3", "not_promoted"): 1,
        ("Level 3", "declined"): 1,
        ("Level 3", "withdrawn"): 1,
        ("Level 4", "open"): 1,
        ("Level 5", "open"): 1,
    }
    assert {
        "Level 3",
        "Level 4",
        "Level 5",
        "Promoted",
        "Declined",
        "4 packets",
        "1 packet",
    } <= set(_texts(by_level))

    by_manager = _svg(charts["by_manager"])
    assert _bars(by_manager)[("Omar", "promoted")] == 1
    assert _bars(by_manager)[("Nina", "not_promoted")] == 1
    assert {"Maria", "Nina", "Omar"} <= set(_texts(by_manager))

    ratings = _svg(charts["ratings"])
    assert _bars(ratings) == {
        ("Whole cycle", "below"): 3,
        ("Whole cycle", "meets"): 5,
        ("Whole cycle", "exceeds"): 3,
        ("Maria", "below"): 1,
        ("Nina", "meets"): 4,
        ("Omar", "below"): 2,
        ("Omar", "meets"): 1,
        ("Omar", "exceeds"): 3,
    }
    texts = _texts(ratings)
    assert "mean 2.00 · n 11" in texts and "mean 2.17 (+0.17) · n 6" in texts
    assert "mean 1.00 (-1.00) · n 1" in texts
    # stacked shares: each reviewer's bar is as long as the cycle's
    widths: dict[str, float] = {}
    for r in ratings.iter(f"{SVG}rect"):
        if r.get("class") == "bar":
            widths[r.get("data-row")] = widths.get(r.get("data-row"), 0) + float(r.get("width"))
    assert {round(w) for w in widths.values()} == {400}

    times = _svg(charts["time_in_state"])
    boxes = {r.get("data-key"): r for r in times.iter(f"{SVG}rect") if r.get("class") == "bar"}
    assert set(boxes) == {"draft", "submitted", "changes_requested", "endorsed"}
    assert float(boxes["endorsed"].get("data-median")) == 8.5 * DAY
    assert "median 8.5 d · n 2" in _texts(times) and "median 2.0 d · n 5" in _texts(times)


@pytest.mark.parametrize("who", ["admin", "committee"])
def test_the_api_and_the_page_show_the_same_numbers(who, built, org, admin_user, client):
    user = admin_user if who == "admin" else org.committee.user
    response = api_client(user).get(f"/api/v1/cycles/{built.pk}/analytics/")
    client.force_login(user)
    page = client.get(f"/packets/cycles/{built.pk}/analytics/")

    assert response.status_code == 200
    assert response.json() == cycle_analytics(cycle=built).as_dict()
    assert page.status_code == 200
    html = page.content.decode()
    for chart_id in (
        "chart-coverage",
        "chart-outcomes-level",
        "chart-outcomes-manager",
        "chart-ratings",
        "chart-time-in-state",
    ):
        assert f'id="{chart_id}"' in html
    assert html.count("<details>") == 5  # a data table beside each chart
    assert "<td>2.17</td><td>0.17</td>" in html  # omar's mean and difference, in his row
    assert '<th scope="row">Endorsed</th><td>2</td><td>7.8 d</td><td>8.5 d</td>' in html
    # the report links here; the CSV stays where it was and says what it said
    report = client.get(f"/packets/cycles/{built.pk}/report/").content.decode()
    assert f"/packets/cycles/{built.pk}/analytics/" in report
    csv_text = client.get(f"/packets/cycles/{built.pk}/report/?format=csv").content.decode()
    assert csv_text.splitlines()[0] == "target_level,state,count"
    assert "3,promoted,1" in csv_text.splitlines()


@pytest.mark.parametrize("who", ["engineer", "manager", "director", "anonymous"])
def test_analytics_are_for_admins_and_the_committee_as_the_report(who, built, org, client):
    api = APIClient()
    if who != "anonymous":
        api = api_client(org[who])
        client.force_login(org[who].user)

    response = api.get(f"/api/v1/cycles/{built.pk}/analytics/")
    report = api.get(f"/api/v1/cycles/{built.pk}/report/")
    page = client.get(f"/packets/cycles/{built.pk}/analytics/")

    assert response.status_code == report.status_code == (401 if who == "anonymous" else 403)
    assert page.status_code == (302 if who == "anonymous" else 404)  # as the report page
    assert "coverage_at_submission" not in response.json()


def test_an_empty_cycle_renders(admin_user, client, db):
    cycle = PromotionCycleFactory(name="Empty")
    client.force_login(admin_user)

    page = client.get(f"/packets/cycles/{cycle.pk}/analytics/")
    data = api_client(admin_user).get(f"/api/v1/cycles/{cycle.pk}/analytics/").json()

    assert page.status_code == 200
    assert "No packet has been submitted in this cycle." in page.content.decode()
    for svg in cycle_charts(cycle_analytics(cycle=cycle)).values():
        _svg(svg)
    assert data["packets"] == 0 and data["outcomes_by_level"] == []
    assert data["coverage_at_submission"]["median"] is None
    assert data["ratings"]["cycle"] == {
        "counts": {"below": 0, "meets": 0, "exceeds": 0},
        "total": 0,
        "mean": None,
    }
    assert all(t["count"] == 0 and t["median_seconds"] is None for t in data["time_in_state"])
    assert api_client(admin_user).get("/api/v1/cycles/999999/analytics/").status_code == 404


@pytest.fixture
def sized(org, ladder_version):
    """A cycle of n copies of the hand-built pattern's busiest packets (reviewed, decided,
    several events and assessments each), for query counts."""

    def make(n: int):
        cycle = PromotionCycleFactory(name=f"Sized {n}")
        for i in range(n):
            person = PersonFactory(
                ladder=org.engineer.ladder,
                level=2,
                manager=org.manager if i % 2 else org.other_manager,
            )
            reviewer = person.manager
            _packet(
                person,
                cycle,
                ladder_version,
                3,
                [
                    (0, "create", "draft", None),
                    (1, "submit", "submitted", None),
                    (2 + i % 3, "endorse", "endorsed", reviewer),
                    (9, "decide", "promoted" if i % 2 else "not_promoted", org.committee),
                ],
                coverage=[0.5 + (i % 5) / 10],
                ratings=[(reviewer, "meets", 2), (reviewer, "exceeds", i % 3)],
            )
        return cycle

    return make


@pytest.mark.parametrize("n", [2, 25])
def test_a_fixed_number_of_queries_whatever_the_size(n, sized, org, django_assert_num_queries):
    cycle = sized(n)

    with django_assert_num_queries(4):
        data = cycle_analytics(cycle=cycle)
        cycle_charts(data)
        data.as_dict()
    client = api_client(org.committee)
    # the cycle, the committee check, the four reads
    with django_assert_num_queries(6):
        response = client.get(f"/api/v1/cycles/{cycle.pk}/analytics/")

    assert response.json()["packets"] == n
    assert sum(r["total"] for r in response.json()["outcomes_by_manager"]) == n
