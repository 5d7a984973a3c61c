"""Learned suggestions (issue 14, points 1–4): a model trained on the organisation's triage,
the similarity fallback, rules first, the person's level, the API's `suggestions`, the job
(command and beat task), model versions, the inbox's ticks, and query counts.

erin (the `org` fixture's engineer) is on level 2: her next level is 3.
"""

from __future__ import annotations

import itertools
import re
from datetime import date

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from apps.evidence import suggestions as learned
from apps.evidence.candidates import (
    CandidateData,
    SuggestedLink,
    candidates_import,
    candidates_suggestions_refresh,
    suggestions_train,
)
from apps.evidence.models import Evidence, EvidenceLink, SuggestionModel
from apps.ladders.models import Expectation
from ladder_tracker.celery import app as celery_app
from servicenow.models import Connection, Source, WorkItem
from tests.factories import PASSWORD, api_client

pytestmark = pytest.mark.django_db

_n = itertools.count(1)

# What erin's tickets say when they are each kind of work (none of the ladder's words).
KINDS = {
    "TE-3.3": ["drift alert on churn scoring", "grafana panel red, prediction skew", "pager"],
    "CC-3.1": ["api contract with backend squad", "joint release with crm team", "interface"],
    "PSI-3.1": ["stack trace in worker", "segfault after upgrade", "bisect flaky test"],
}


@pytest.fixture
def erin(org):
    assert org.engineer.level == 2
    return org.engineer


@pytest.fixture(autouse=True)
def few_labels_suffice(settings):
    settings.SUGGESTIONS_MIN_LABELS = 12
    learned._CACHE.clear()


def work_item(person, *, text: str, table="incident", **raw) -> WorkItem:
    conn, _ = Connection.objects.get_or_create(
        name="acme", defaults={"instance_url": "https://acme.service-now.com"}
    )
    source, _ = Source.objects.get_or_create(connection=conn, table=table, defaults={"name": table})
    n = next(_n)
    return WorkItem.objects.create(
        connection=conn, source=source, table=table, sys_id=f"{n:032x}",
        number=f"INC{n:07d}", short_description=text, sys_updated_on=timezone.now(),
        person=person, raw={"short_description": text, "category": "software", **raw},
    )  # fmt: skip


def triaged(person, code: str | None, *, text: str, status="accepted", offered=()) -> Evidence:
    """An imported item the engineer triaged: accepted and linked to `code`, or dismissed;
    `offered` are the suggestions it had (a removed one is a negative)."""
    item = work_item(person, text=text)
    evidence = Evidence.objects.create(
        person=person, title=text, source=Evidence.Source.SERVICENOW, status=status,
        work_item=item, snapshot={"number": item.number},
        suggestions=[{"code": c, "score": 0.5, "origin": "learned", "reason": ""} for c in offered],
    )  # fmt: skip
    if code:
        EvidenceLink.objects.create(
            evidence=evidence, expectation=Expectation.objects.get(code=code),
            origin=EvidenceLink.Origin.ENGINEER,
        )  # fmt: skip
    return evidence


def history(person, per_kind: int = 6) -> dict[str, list[Evidence]]:
    made = {}
    for code, texts in KINDS.items():
        made[code] = [
            triaged(person, code, text=f"{texts[i % len(texts)]} {texts[(i + 1) % len(texts)]}")
            for i in range(per_kind)
        ]
    return made


def imported(person, text: str, *, rules=()) -> Evidence:
    item = work_item(person, text=text)
    candidates_import(
        candidates=[
            CandidateData(
                person_id=person.pk, work_item_id=item.pk, title=text,
                occurred_on=date(2026, 3, 1), url=item.record_url,
                snapshot={"number": item.number, "url": item.record_url, "table": item.table},
                links=tuple(SuggestedLink(c, f"rule says {c}") for c in rules),
                text=learned.work_item_text(table=item.table, raw=item.raw),
            )
        ]
    )  # fmt: skip
    return Evidence.objects.get(work_item=item)


# --- the text the models read ---------------------------------------------------------------


def test_work_item_text_reads_prose_and_fields_but_not_who_or_when():
    text = learned.work_item_text(
        table="change_request",
        raw={
            "short_description": "Canary release of ranking",
            "close_notes": "Rolled out",
            "category": "Network Ops",
            "assignment_group": "ml-platform",
            "assigned_to": "6816f79cc0a8016401c5a33be04be441",
            "sys_id": "abc",
            "opened_at": "2026-01-01 10:00:00",
            "number": "CHG0001",
        },
    )

    assert text == (
        "table__change_request assignment_group__ml_platform category__network_ops "
        "Rolled out Canary release of ranking"
    )


# --- training and refresh --------------------------------------------------------------------


def test_training_learns_from_links_and_refreshes_open_candidates(erin):
    made = history(erin)
    waiting = imported(erin, "drift alert again: grafana shows prediction skew")
    assert waiting.suggestions == [] or waiting.suggestions[0]["origin"] == "similar"

    [result] = suggestions_train()

    model = SuggestionModel.objects.get()
    assert result.model == model and result.refreshed == 1
    assert (model.version, model.training_size, model.codes) == (1, 18, 3)
    assert model.held_out == 3 and 0 <= model.accuracy_top1 <= model.accuracy_top3 <= 1
    waiting.refresh_from_db()
    first = waiting.suggestions[0]
    assert (first["code"], first["origin"]) == ("TE-3.3", "learned")
    numbers = {e.work_item.number for e in made["TE-3.3"]}
    linked = re.fullmatch(r"like (INC\d+) you linked to TE-3\.3", first["reason"])
    assert linked and linked.group(1) in numbers
    assert first["score"] > max(s["score"] for s in waiting.suggestions[1:])


def test_a_new_candidate_after_training_is_suggested_by_the_model_at_import(erin):
    history(erin)
    suggestions_train()

    evidence = imported(erin, "segfault in worker, stack trace attached")

    assert evidence.suggestions[0]["code"] == "PSI-3.1"
    assert evidence.suggestions[0]["origin"] == "learned"


def test_too_few_labels_fall_back_to_similarity_with_the_expectations(erin):
    history(erin, per_kind=1)  # 3 labelled items, fewer than 12
    waiting = imported(erin, "model deployment and monitoring broke")

    [result] = suggestions_train()

    assert result.model is None and "3 labelled items, fewer than 12" in result.skipped
    assert not SuggestionModel.objects.exists()
    waiting.refresh_from_db()
    first = waiting.suggestions[0]
    # TE-3.3 "Experience with model deployment and monitoring", erin's next level
    assert (first["code"], first["origin"]) == ("TE-3.3", "similar")
    assert first["reason"].startswith("words in common with TE-3.3: ")
    assert {"deployment", "monitoring"} <= set(first["reason"].split(": ")[1].split(", "))


def test_another_engineers_item_is_never_named_in_a_reason(erin, org):
    history(org.peer)  # pete's triage teaches the model; erin has none of her own
    suggestions_train()

    evidence = imported(erin, "drift alert: grafana prediction skew")

    first = evidence.suggestions[0]
    assert first["code"] == "TE-3.3"
    assert first["reason"] == "like 6 items linked to TE-3.3 in your organisation"


def test_dismissed_items_and_removed_suggestions_are_negatives(erin):
    triaged(erin, "CC-3.1", text="api contract", offered=["TE-3.3", "CC-3.1"])
    triaged(erin, None, text="printer jam", status="dismissed", offered=["PSI-3.1"])
    triaged(erin, None, text="accepted, no link")  # says nothing about which expectation

    ts = learned.training_set(ladder_id=erin.ladder_id, codes=["TE-3.3", "CC-3.1", "PSI-3.1"])

    assert ts.positives == [{"CC-3.1"}, set()]
    assert ts.negatives == [{"TE-3.3"}, {"PSI-3.1"}]
    assert ts.labelled == [0]


def test_a_removed_suggestion_lowers_its_score(erin):
    history(erin)
    suggestions_train()
    before = imported(erin, "pager for the crm team release").suggestions
    score = {s["code"]: s["score"] for s in before}
    for _ in range(4):  # erin keeps removing TE-3.3 from such items
        triaged(erin, "CC-3.1", text="pager for the crm team release", offered=["TE-3.3"])

    suggestions_train()
    after = {s["code"]: s["score"] for s in imported(erin, "pager for the crm team").suggestions}

    assert after.get("TE-3.3", 0) < score.get("TE-3.3", 0)
    assert after["CC-3.1"] > after.get("TE-3.3", 0)


# --- rules and levels ------------------------------------------------------------------------


def test_rules_win_where_they_match_and_are_not_repeated(erin):
    history(erin)
    suggestions_train()

    evidence = imported(erin, "drift alert on grafana", rules=["CC-3.1", "TE-3.3"])

    head = evidence.suggestions[:2]
    assert head == [
        {"code": "CC-3.1", "score": 1.0, "origin": "rule", "reason": "rule says CC-3.1"},
        {"code": "TE-3.3", "score": 1.0, "origin": "rule", "reason": "rule says TE-3.3"},
    ]
    codes = [s["code"] for s in evidence.suggestions]
    assert len(codes) == len(set(codes))
    assert {s["origin"] for s in evidence.suggestions[2:]} <= {"learned"}
    # the rules' links stay suggested links, as before
    assert list(evidence.links.order_by("id").values_list("expectation__code", "origin")) == [
        ("CC-3.1", "suggested"),
        ("TE-3.3", "suggested"),
    ]


def test_a_refresh_keeps_the_rules_first(erin):
    evidence = imported(erin, "drift alert", rules=["CC-3.1"])
    history(erin)
    suggestions_train()

    evidence.refresh_from_db()

    assert evidence.suggestions[0] == {
        "code": "CC-3.1", "score": 1.0, "origin": "rule", "reason": "rule says CC-3.1",
    }  # fmt: skip


LEVELS = {"A-1": 1, "A-2": 2, "A-3": 3, "B-3": 3, "A-4": 4}


@pytest.mark.parametrize(
    ("scored", "expected"),
    [
        # plausible (≥ half the best): next level first, then above, then own; rest by score
        ([("A-4", 0.9), ("A-3", 0.6), ("A-2", 0.8), ("B-3", 0.1)], ["A-3", "A-4", "A-2", "B-3"]),
        # a confident suggestion stays first whatever its level
        ([("A-2", 0.9), ("A-3", 0.2), ("A-4", 0.1)], ["A-2", "A-3", "A-4"]),
        # below the person's own level: dropped while anything else fits
        ([("A-1", 0.9), ("A-3", 0.2)], ["A-3"]),
        ([("A-1", 0.9)], ["A-1"]),
    ],
    ids=["next-above-own", "confident-first", "below-dropped", "only-below"],
)
def test_the_persons_level_orders_the_plausible_suggestions(scored, expected):
    ordered = learned.order_for_level(scored, level=2, levels=LEVELS)

    assert [code for code, _ in ordered] == expected


def test_learned_suggestions_skip_levels_below_the_persons(erin, org):
    history(erin)
    triaged(erin, "TE-1.1", text="onboarding curriculum lecture notes")  # level 1
    for _ in range(5):
        triaged(erin, "TE-1.1", text="onboarding curriculum lecture notes")
    suggestions_train()

    evidence = imported(erin, "onboarding curriculum lecture notes")

    assert "TE-1.1" not in [s["code"] for s in evidence.suggestions]
    assert evidence.suggestions  # something else fits


# --- the API ---------------------------------------------------------------------------------


def test_the_evidence_api_carries_the_suggestions_best_first(erin):
    history(erin)
    suggestions_train()
    evidence = imported(erin, "stack trace in worker", rules=["CC-3.1"])

    body = api_client(erin).get(f"/api/v1/evidence/{evidence.pk}/").json()
    listed = api_client(erin).get("/api/v1/evidence/?status=candidate").json()["results"]

    assert body["suggestions"] == evidence.suggestions
    assert [item["suggestions"] for item in listed] == [evidence.suggestions]
    assert [s["origin"] for s in body["suggestions"]][:2] == ["rule", "learned"]
    for s in body["suggestions"]:
        assert set(s) == {"code", "score", "origin", "reason"}
        assert isinstance(s["score"], float) and s["reason"]
    assert body["suggestions"][1]["code"] == "PSI-3.1"
    assert body["expectations"] == ["CC-3.1"]  # advice is not a link
    scores = [s["score"] for s in body["suggestions"][1:]]
    assert scores[0] == max(scores)


# --- the job ---------------------------------------------------------------------------------


def test_the_beat_task_is_registered_nightly():
    entry = settings.CELERY_BEAT_SCHEDULE["evidence-suggestions-train"]

    assert entry["task"] == "evidence.suggestions_train"
    assert entry["schedule"].hour == {2}
    celery_app.loader.import_default_modules()
    assert "evidence.suggestions_train" in celery_app.tasks


def test_the_beat_task_trains_and_reports(erin):
    history(erin)
    imported(erin, "drift alert")
    from apps.evidence.tasks import suggestions_train as task

    [report] = task.apply().get()

    assert report == {
        "ladder": erin.ladder_id, "labelled": 18, "version": 1, "skipped": "", "refreshed": 1,
    }  # fmt: skip


def test_the_command_trains_and_says_what_it_did(erin, capsys):
    history(erin)

    call_command("suggestions_train", "--ladder", "ai-ml-engineer")

    out = capsys.readouterr().out
    assert re.match(
        r"ai-ml-engineer: version 1 from 18 labelled items in [\d.]+ s; held-out top-1 [\d.]+, "
        r"top-3 [\d.]+ \(3 items\); 0 open candidates refreshed",
        out,
    )
    with pytest.raises(CommandError, match="No ladder 'nope'"):
        call_command("suggestions_train", "--ladder", "nope")


def test_the_command_says_when_there_are_too_few_labels(erin, capsys):
    call_command("suggestions_train")

    assert "ai-ml-engineer: no model (0 labelled items, fewer than 12)" in capsys.readouterr().out


# --- storage and versions ----------------------------------------------------------------------


def test_each_training_is_a_new_version_and_old_ones_are_pruned(erin, settings):
    settings.SUGGESTIONS_MODELS_KEPT = 2
    history(erin)

    for _ in range(3):
        suggestions_train()

    assert list(SuggestionModel.objects.values_list("version", flat=True)) == [3, 2]
    newest = SuggestionModel.objects.get(version=3)
    model = learned.model_loads(bytes(newest.blob), newest.sha256)
    assert sorted(model.codes) == ["CC-3.1", "PSI-3.1", "TE-3.3"]


def test_a_stored_model_that_does_not_match_its_checksum_is_refused(erin):
    history(erin)
    suggestions_train()
    row = SuggestionModel.objects.get()

    with pytest.raises(ValueError, match="checksum"):
        learned.model_loads(bytes(row.blob) + b"x", row.sha256)


def test_the_loaded_model_is_cached_per_process_by_version(erin, django_assert_num_queries):
    history(erin)
    suggestions_train()
    learned._CACHE.clear()

    with django_assert_num_queries(2):  # which version is newest, then its blob
        first = learned.learned_model_for(erin.ladder_id)
    with django_assert_num_queries(1):  # only which version is newest
        assert learned.learned_model_for(erin.ladder_id) is first
    suggestions_train()
    assert learned.learned_model_for(erin.ladder_id) is not first  # a new version is loaded


# --- the inbox -------------------------------------------------------------------------------


def stored(evidence: Evidence, suggestions: list[dict]) -> Evidence:
    Evidence.objects.filter(pk=evidence.pk).update(suggestions=suggestions)
    return evidence


def row_html(html: str, pk: int) -> str:
    start = html.index(f'id="candidate-{pk}"')
    return html[start : html.index("</article>", start)]


def test_the_inbox_ticks_confident_suggestions_and_shows_why(erin, client, settings):
    settings.SUGGESTIONS_PRESELECT_SCORE = 0.5
    evidence = stored(
        imported(erin, "drift alert"),
        [
            {"code": "TE-3.3", "score": 0.81, "origin": "learned",
             "reason": "like INC0000012 you linked to TE-3.3"},
            {"code": "CC-3.1", "score": 0.2, "origin": "learned",
             "reason": "like 4 items linked to CC-3.1 in your organisation"},
        ],
    )  # fmt: skip
    assert client.login(username="erin", password=PASSWORD)

    html = row_html(client.get("/evidence/inbox/").content.decode(), evidence.pk)

    assert 'value="TE-3.3" checked' in html
    assert 'value="CC-3.1">' in html  # offered, not ticked
    assert '<code class="code">TE-3.3</code> (ticked) · like INC0000012 you linked to TE-3.3' in (
        html
    )
    assert "CC-3.1</code> · like 4 items linked to CC-3.1 in your organisation" in html
    assert "(1 chosen)" in html
    evidence.refresh_from_db()
    assert evidence.status == "candidate" and not evidence.links.exists()  # nothing accepted


def test_accepting_from_the_inbox_links_what_the_engineer_kept_ticked(erin, client):
    evidence = stored(
        imported(erin, "drift alert"),
        [{"code": "TE-3.3", "score": 0.9, "origin": "learned", "reason": "r"}],
    )
    assert client.login(username="erin", password=PASSWORD)

    client.post(
        f"/evidence/{evidence.pk}/accept/", {"links_chosen": "1", "expectations": ["TE-3.3"]}
    )

    evidence.refresh_from_db()
    assert evidence.status == "accepted"
    assert list(evidence.links.values_list("expectation__code", "origin")) == [
        ("TE-3.3", "engineer")
    ]


# --- query counts ----------------------------------------------------------------------------


def _queries(client, path) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(path).status_code == 200
    return len(ctx.captured_queries)


def test_suggestions_add_no_query_to_the_inbox_api_or_page(erin, client):
    api = api_client(erin)
    assert client.login(username="erin", password=PASSWORD)
    path = "/api/v1/evidence/?status=candidate"
    plain = [imported(erin, f"drift alert {i}") for i in range(3)]
    for evidence in plain:
        stored(evidence, [])
    _queries(client, "/evidence/inbox/")  # warm the per-process picker cache (views._PICKERS)
    without = (_queries(api, path), _queries(client, "/evidence/inbox/"))

    history(erin)
    suggestions_train()  # every open candidate now carries suggestions
    for i in range(40):
        imported(erin, f"stack trace {i}")
    assert all(e.suggestions for e in Evidence.objects.filter(status="candidate"))

    assert (_queries(api, path), _queries(client, "/evidence/inbox/")) == without


def test_a_refresh_reads_in_batches_whatever_the_candidates(erin, django_assert_max_num_queries):
    history(erin)
    suggestions_train()
    for i in range(30):
        imported(erin, f"api contract {i}")
    learned._CACHE.clear()

    # ids; per batch: rows, rule links, the update; the index: versions, expectations,
    # skills; the model: its version and blob
    with django_assert_max_num_queries(10):
        assert candidates_suggestions_refresh(ladder_id=erin.ladder_id) == 30


def test_a_candidates_page_lists_its_suggestions_with_their_reasons(erin, client):
    evidence = stored(
        imported(erin, "drift alert"),
        [{"code": "TE-3.3", "score": 0.9, "origin": "learned", "reason": "like INC9 you linked"}],
    )
    assert client.login(username="erin", password=PASSWORD)

    html = client.get(f"/evidence/{evidence.pk}/").content.decode()

    assert (
        '<code class="code">TE-3.3</code> <span class="muted">· learned · like INC9 you linked'
        in (html)
    )


def test_the_sync_hands_over_the_records_text_and_the_candidate_gets_suggestions(erin):
    from servicenow.sync.workitems import work_item_candidate, work_item_snapshot

    item = work_item(erin, text="model deployment and monitoring broke")
    snapshot = work_item_snapshot(
        instance_url="https://acme.service-now.com", table="incident", sys_id=item.sys_id,
        raw=item.raw, updated_on=item.sys_updated_on,
    )  # fmt: skip
    candidate = work_item_candidate(
        work_item_id=item.pk, person_id=erin.pk, snapshot=snapshot, raw=item.raw,
        occurred=item.sys_updated_on, rules=[],
    )  # fmt: skip

    assert candidate.text == learned.work_item_text(table="incident", raw=item.raw)
    candidates_import(candidates=[candidate])
    assert Evidence.objects.get(work_item=item).suggestions[0]["code"] == "TE-3.3"


def _order_for_level_reference(scored, *, level, levels, ratio):
    """order_for_level as first written (two sorts with key functions): the faster one must
    give the same order, ties included."""
    if not scored:
        return []
    by_score = sorted(scored, key=lambda cs: -cs[1])
    floor = by_score[0][1] * ratio
    plausible = [cs for cs in by_score if cs[1] >= floor]
    rest = [cs for cs in by_score if cs[1] < floor]

    def rank(cs):
        return learned.level_rank(levels.get(cs[0]), level)

    ordered = sorted(plausible, key=lambda cs: (rank(cs), -cs[1])) + rest
    kept = [cs for cs in ordered if rank(cs) < 4]
    return kept or ordered


@given(
    scores=st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.5, 0.9, 1.0]), max_size=12),
    level=st.one_of(st.none(), st.integers(1, 5)),
    ratio=st.sampled_from([0.0, 0.5, 0.8, 1.0]),
)
@hypothesis_settings(max_examples=300, deadline=None)
def test_the_level_order_matches_its_first_definition(scores, level, ratio):
    codes = [f"X-{n % 5 + 1}.{n}" for n in range(len(scores))]
    levels = {code: int(code[2]) for code in codes[::2]}  # some codes of no known level
    scored = list(zip(codes, scores, strict=True))
    with override_settings(SUGGESTIONS_PLAUSIBLE_RATIO=ratio):
        assert learned.order_for_level(scored, level=level, levels=levels) == (
            _order_for_level_reference(scored, level=level, levels=levels, ratio=ratio)
        )
