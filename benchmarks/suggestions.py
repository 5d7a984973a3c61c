"""Suggestions benchmark: how often the right expectation is among the first 1 and 3
suggestions, learned vs rules-only vs text similarity, on items none of them has seen.

    python benchmarks/suggestions.py [--labelled 20000] [--dismissed 1500] [--held-out 2000]
        [--people 80] [--seed 7] [--database-url URL]

The corpus (benchmarks/suggestions_corpus.py) is generated from per-expectation ticket
vocabularies written apart from the ladder's text, with overlap between classes, noise
words and 5% wrong labels; the share of its words found in the ladder is printed. The
labelled and dismissed items are stored as triaged evidence; the held-out ones are imported
through `candidates_import` as open candidates, with the admin rules below applied as the
sync would. Then:

- rules-only: the codes the rules propose (ordered for the person's level), nothing else;
- similarity: TF-IDF cosine with each expectation's text (the cold start);
- learned: `suggestions_train` (the job, timed: read, held-out fit, final fit, store), and
  the suggestions of the refreshed open candidates, also without the rules' part;
- rules + learned: what the inbox shows (the stored suggestions).

A hit at k: one of the first k suggested codes is one the engineer linked. Per-item latency
is one `LadderSuggester.suggest` call for one item with the trained model (warm cache).
Targets: learned top-3 ≥ similarity top-3 + 0.2; training on 20,000 labelled items < 60 s;
suggesting for one item < 20 ms (p95). Runs against a fresh SQLite file by default.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Rules an admin would write: a category or group that says what the work was.
RULES = [
    ("Security incidents", "incident", [("category", "=", "security")], ["TE-4.2"]),
    ("Docs tasks", "sc_task", [("category", "=", "documentation")], ["TE-2.5", "CC-2.2"]),
    ("MLOps incidents", "incident", [("assignment_group", "=", "mlops")], ["TE-3.3"]),
    ("GPU platform", "change_request", [("assignment_group", "=", "gpu-platform")], ["TE-4.3"]),
    ("Governance", "sc_task", [("category", "=", "governance")], ["TE-5.3"]),
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def hits(ranked: list[list[str]], truth: list[tuple[str, ...]], k: int) -> float:
    return sum(bool(set(r[:k]) & set(t)) for r, t in zip(ranked, truth, strict=True)) / len(truth)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labelled", type=int, default=20000)
    parser.add_argument("--dismissed", type=int, default=1500)
    parser.add_argument("--held-out", type=int, default=2000)
    parser.add_argument("--people", type=int, default=80)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--latency-items", type=int, default=500)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-suggestions-")
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{tmp}/bench.sqlite3"
    os.environ["DJANGO_SETTINGS_MODULE"] = "ladder_tracker.settings.base"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    if args.database_url:
        call_command("flush", "--noinput", verbosity=0)
    call_command("migrate", verbosity=0)

    from apps.evidence import candidates as cand
    from apps.evidence import suggestions as learned
    from apps.evidence.models import Evidence, EvidenceLink
    from apps.ladders.models import Expectation
    from apps.ladders.services import ladder_load_file
    from benchmarks.suggestions_corpus import corpus, ladder_overlap
    from servicenow.models import Connection, Source, SuggestionRule, WorkItem
    from servicenow.sync.rules import rules_suggest
    from tests.factories import PersonFactory

    version = ladder_load_file(
        path=ROOT / "fixtures" / "ladders" / "ai-ml-engineer.yaml", publish=True
    ).version
    ladder = version.ladder
    levels = [1 + (i % 4) for i in range(args.people)]  # levels 1–4: each has a next level
    people = [
        PersonFactory(user__username=f"eng{i}", ladder=ladder, level=lvl)
        for i, lvl in enumerate(levels)
    ]
    conn = Connection.objects.create(name="bench", instance_url="https://bench.service-now.com")
    sources = {
        t: Source.objects.create(connection=conn, name=t, table=t)
        for t in ("incident", "change_request", "sc_task", "problem")
    }
    for pos, (name, table, conds, codes) in enumerate(RULES):
        SuggestionRule.objects.create(
            name=name,
            table=table,
            position=pos,
            conditions=[{"field": f, "op": op, "value": v} for f, op, v in conds],
            expectation_codes=codes,
        )
    rules_by_table = {
        t: list(SuggestionRule.objects.filter(table=t, enabled=True)) for t in sources
    }
    exp_ids = dict(Expectation.objects.filter(version=version).values_list("code", "pk"))
    ladder_texts = list(Expectation.objects.filter(version=version).values_list("text", flat=True))

    total = args.labelled + args.dismissed + args.held_out
    items = corpus(total, people_levels=levels, seed=args.seed)
    labelled = items[: args.labelled]
    dismissed = items[args.labelled : args.labelled + args.dismissed]
    held_out = items[args.labelled + args.dismissed :]

    # --- store the triaged history --------------------------------------------------------
    t0 = time.perf_counter()
    now = timezone.now()

    def store(batch, status):
        work_items = WorkItem.objects.bulk_create(
            [
                WorkItem(
                    connection=conn,
                    source=sources[it.table],
                    table=it.table,
                    sys_id=it.number.lower(),
                    number=it.number,
                    short_description=it.raw["short_description"],
                    sys_updated_on=now,
                    person=people[it.person],
                    raw=it.raw,
                )  # fmt: skip
                for it in batch
            ],
            batch_size=2000,
        )
        return work_items

    def triaged(batch, status):
        wis = store(batch, status)
        evidence = Evidence.objects.bulk_create(
            [
                Evidence(
                    person=people[it.person],
                    title=it.raw["short_description"][:300],
                    occurred_on=date(2026, 1, 1),
                    source=Evidence.Source.SERVICENOW,
                    status=status,
                    work_item=wi,
                    snapshot={"number": it.number},
                )  # fmt: skip
                for it, wi in zip(batch, wis, strict=True)
            ],
            batch_size=2000,
        )
        if status == Evidence.Status.ACCEPTED:
            EvidenceLink.objects.bulk_create(
                [
                    EvidenceLink(
                        evidence=ev, expectation_id=exp_ids[c], origin=EvidenceLink.Origin.ENGINEER
                    )
                    for it, ev in zip(batch, evidence, strict=True)
                    for c in it.codes
                ],
                batch_size=2000,
            )

    triaged(labelled, Evidence.Status.ACCEPTED)
    triaged(dismissed, Evidence.Status.DISMISSED)
    wis = store(held_out, "open")
    index = cand.ExpectationIndex()
    rule_codes = []
    batch = []
    for it, wi in zip(held_out, wis, strict=True):
        links, skills = rules_suggest(rules_by_table[it.table], it.raw)
        batch.append(
            cand.CandidateData(
                person_id=people[it.person].pk,
                work_item_id=wi.pk,
                title=it.number,
                occurred_on=date(2026, 2, 1),
                url="",
                snapshot={"number": it.number},
                links=links,
                skills=skills,
                text=learned.work_item_text(table=it.table, raw=it.raw),
            )  # fmt: skip
        )
    for start in range(0, len(batch), 500):
        cand.candidates_import(candidates=batch[start : start + 500], index=index)
    print(
        f"corpus: {len(labelled):,} labelled, {len(dismissed):,} dismissed, "
        f"{len(held_out):,} held out, {args.people} people on levels 1–4 "
        f"(stored in {time.perf_counter() - t0:.1f} s)"
    )
    print(
        f"share of the corpus's words found in the ladder's expectation texts: "
        f"{ladder_overlap(items, ladder_texts):.1%}"
    )

    truth = [it.codes for it in held_out]
    by_wi = {wi.pk: it for wi, it in zip(wis, held_out, strict=True)}
    stored_before = dict(
        Evidence.objects.filter(work_item_id__in=by_wi).values_list("work_item_id", "suggestions")
    )
    order = [wi.pk for wi in wis]

    # rules-only: the rule entries the import stored (already in level order)
    rule_codes = [[s["code"] for s in stored_before[pk] if s["origin"] == "rule"] for pk in order]
    # similarity alone (no rules), as the cold start computes it
    levels_by_code = {code: int(code.split("-")[1].split(".")[0]) for code in exp_ids}
    texts = dict(Expectation.objects.filter(version=version).values_list("code", "text"))
    cold = learned.LadderSuggester(levels=levels_by_code, texts=texts, learned=None)
    to_suggest = [
        learned.ItemToSuggest(
            people[it.person].pk, it.level, learned.work_item_text(table=it.table, raw=it.raw)
        )
        for it in held_out
    ]
    similar = [[s["code"] for s in r] for r in cold.suggest(to_suggest)]

    # learned: the job
    t0 = time.perf_counter()
    results = cand.suggestions_train(ladder_id=ladder.pk)
    job_seconds = time.perf_counter() - t0
    result = results[0]
    if result.model is None:
        print(f"no model trained: {result.skipped}")
        return 1
    model = learned.learned_model_for(ladder.pk)
    warm = learned.LadderSuggester(levels=levels_by_code, texts=texts, learned=model)
    learned_only = [[s["code"] for s in r] for r in warm.suggest(to_suggest)]
    stored_after = dict(
        Evidence.objects.filter(work_item_id__in=by_wi).values_list("work_item_id", "suggestions")
    )
    shown = [[s["code"] for s in stored_after[pk]] for pk in order]

    latencies = []
    for item in to_suggest[: args.latency_items]:
        t1 = time.perf_counter()
        warm.suggest([item])
        latencies.append((time.perf_counter() - t1) * 1000)

    m = result.model
    print()
    print(f"{'method':<34} {'top-1':>6} {'top-3':>6}")
    rows = [
        ("rules only", rule_codes),
        ("text similarity (cold start)", similar),
        ("learned", learned_only),
        ("rules + learned (the inbox)", shown),
    ]
    figures = {}
    for name, ranked in rows:
        figures[name] = (hits(ranked, truth, 1), hits(ranked, truth, 3))
        print(f"{name:<34} {figures[name][0]:>6.3f} {figures[name][1]:>6.3f}")
    print(
        f"\nmodel v{m.version}: {m.training_size:,} labelled items, {m.codes} codes; its own "
        f"held-out split ({m.held_out:,} items, ranking over the whole ladder): "
        f"top-1 {m.accuracy_top1:.3f}, top-3 {m.accuracy_top3:.3f}"
    )
    print(
        f"training (read, held-out fit, final fit, store): {result.seconds:.1f} s; "
        f"refresh of {result.refreshed:,} open candidates: {job_seconds - result.seconds:.1f} s; "
        f"blob {len(bytes(m.blob)) / 1e6:.1f} MB"
    )
    print(
        f"one item: p50 {statistics.median(latencies):.2f} ms, "
        f"p95 {percentile(latencies, 0.95):.2f} ms ({len(latencies)} items)"
    )
    gain = figures["learned"][1] - figures["text similarity (cold start)"][1]
    checks = [
        (f"learned top-3 − similarity top-3 = {gain:+.3f} ≥ +0.2", gain >= 0.2),
        (f"training {result.seconds:.1f} s < 60 s", result.seconds < 60),
        (f"p95 per item {percentile(latencies, 0.95):.2f} ms < 20 ms",
         percentile(latencies, 0.95) < 20),
    ]  # fmt: skip
    print()
    for text, ok in checks:
        print(f"{'PASS' if ok else 'MISS'}  {text}")
    print(f"load average: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
