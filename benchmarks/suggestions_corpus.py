"""A generated ServiceNow corpus for the suggestions benchmark and tests: no Django.

Each expectation code of the AI/ML ladder gets a vocabulary of what its work looks like in
a ticket — terms, a table, categories, assignment groups — written from how incidents,
changes and tasks read, NOT from the ladder's wording (the expectation texts are never read
here). An item is a template filled mostly from its code's vocabulary, partly from a
neighbour's (classes overlap) and from ITSM words every ticket has (noise); a share of the
labels is simply wrong, as real triage is. `ladder_overlap` measures how many of the
corpus's words appear in the ladder's texts, so the benchmark can print it.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

# code -> (table, categories, assignment groups, terms). Terms are phrases a ticket would
# carry for that kind of work.
VOCABULARY: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "TE-1.1": (
        "sc_task",
        ("training",),
        ("ml-onboarding",),
        (
            "intro course",
            "gradient descent walkthrough",
            "overfitting quiz",
            "bias variance",
            "lecture notes",
            "onboarding curriculum",
            "loss curve homework",
            "study group",
        ),
    ),
    "TE-1.2": (
        "sc_task",
        ("software",),
        ("ml-onboarding",),
        (
            "notebook script",
            "pandas dataframe",
            "r package install",
            "syntax error fix",
            "virtualenv setup",
            "conda environment",
            "unit test small",
            "lint warnings",
        ),
    ),
    "TE-1.3": (
        "sc_task",
        ("software",),
        ("data-science",),
        (
            "jupyterhub access",
            "kernel died",
            "estimator fit",
            "keras layer",
            "sandbox quota",
            "lab workspace",
            "example notebook",
            "tutorial dataset",
        ),
    ),
    "TE-2.1": (
        "incident",
        ("analytics",),
        ("data-science",),
        (
            "clustering segments",
            "classifier recall",
            "kmeans centroids",
            "labelled sample",
            "random forest",
            "churn scoring",
            "cross validation",
            "confusion matrix",
        ),
    ),
    "TE-2.2": (
        "incident",
        ("hardware",),
        ("gpu-platform",),
        (
            "cuda out of memory",
            "torch version pin",
            "tensor shape mismatch",
            "gpu driver",
            "nccl timeout",
            "mixed precision",
            "checkpoint load error",
            "dataloader workers",
        ),
    ),
    "TE-2.3": (
        "change_request",
        ("cloud",),
        ("cloud-ops",),
        (
            "sagemaker endpoint",
            "vertex job",
            "azure ml workspace",
            "bucket permissions",
            "iam role",
            "managed notebook",
            "spot instances",
            "region quota",
        ),
    ),
    "TE-2.4": (
        "incident",
        ("data",),
        ("data-platform",),
        (
            "dag failed",
            "feature job late",
            "etl step",
            "batch scoring job",
            "upstream table",
            "orchestration retry",
            "nightly run",
            "job dependency",
        ),
    ),
    "TE-2.5": (
        "sc_task",
        ("documentation",),
        ("ml-platform",),
        (
            "pull request feedback",
            "readme update",
            "runbook page",
            "design notes",
            "reviewer comments",
            "wiki article",
            "merge request",
            "api reference",
        ),
    ),
    "TE-3.1": (
        "change_request",
        ("application",),
        ("ml-platform",),
        (
            "serving latency budget",
            "canary release",
            "inference service",
            "load test",
            "rollout plan",
            "p99 latency",
            "feature store read",
            "ranking service",
        ),
    ),
    "TE-3.2": (
        "change_request",
        ("software",),
        ("mlops",),
        (
            "experiment tracking server",
            "artifact registry",
            "jenkins runner",
            "github actions workflow",
            "dag scheduler upgrade",
            "build agent",
            "helm chart",
            "release train",
        ),
    ),
    "TE-3.3": (
        "incident",
        ("application",),
        ("mlops",),
        (
            "drift alert",
            "prediction skew",
            "grafana dashboard",
            "alert threshold",
            "shadow traffic",
            "rollback release",
            "accuracy dropped",
            "pager alert",
        ),
    ),
    "TE-4.1": (
        "change_request",
        ("application",),
        ("ml-architecture",),
        (
            "solution blueprint",
            "platform migration",
            "reference design",
            "end state",
            "retraining loop",
            "capacity plan",
            "service ownership",
            "roadmap milestone",
        ),
    ),
    "TE-4.2": (
        "incident",
        ("security",),
        ("soc",),
        (
            "phishing triage",
            "alert noise",
            "siem correlation",
            "ticket routing",
            "anomaly in logins",
            "noc events",
            "threat intel",
            "false positive storm",
        ),
    ),
    "TE-4.3": (
        "change_request",
        ("hardware",),
        ("gpu-platform",),
        (
            "distributed training",
            "quantization",
            "throughput per dollar",
            "batch size tuning",
            "cluster autoscaling",
            "pruning",
            "cost reduction",
            "multi node",
        ),
    ),
    "TE-4.4": (
        "change_request",
        ("data",),
        ("data-platform",),
        (
            "schema evolution",
            "partitioning",
            "lakehouse table",
            "data contract",
            "cdc stream",
            "backfill",
            "warehouse cost",
            "idempotent loads",
        ),
    ),
    "TE-5.1": (
        "sc_task",
        ("governance",),
        ("ml-architecture",),
        (
            "engineering guideline",
            "golden path",
            "template repo",
            "org policy",
            "standard review board",
            "rfc approved",
            "checklist adoption",
            "tech radar",
        ),
    ),
    "TE-5.2": (
        "change_request",
        ("application",),
        ("ml-architecture",),
        (
            "shared platform",
            "multi tenant",
            "self service portal",
            "paved road",
            "platform api",
            "tenant isolation",
            "common sdk",
            "internal product",
        ),
    ),
    "TE-5.3": (
        "sc_task",
        ("governance",),
        ("risk-office",),
        (
            "model inventory",
            "approval gate",
            "audit evidence",
            "sign off",
            "model card",
            "lineage report",
            "control owner",
            "review committee",
        ),
    ),
    "TE-5.4": (
        "incident",
        ("security",),
        ("risk-office",),
        (
            "gdpr request",
            "pii leak",
            "disparate impact",
            "consent flag",
            "dpia",
            "regulator inquiry",
            "anonymisation",
            "retention policy",
        ),
    ),
    "PSI-1.1": (
        "incident",
        ("data",),
        ("data-science",),
        (
            "null values",
            "duplicate rows",
            "csv encoding",
            "date parsing",
            "typo in column",
            "off by one",
            "small bug",
            "quick patch",
        ),
    ),
    "PSI-1.2": (
        "sc_task",
        ("data",),
        ("data-science",),
        (
            "outlier removal",
            "missing labels",
            "dedupe export",
            "profiling report",
            "column stats",
            "sample extract",
            "survey responses",
            "cleanup sheet",
        ),
    ),
    "PSI-2.1": (
        "problem",
        ("analytics",),
        ("data-science",),
        (
            "root cause",
            "label leakage",
            "post incident review",
            "five whys",
            "bad join upstream",
            "timezone shift",
            "metric regression",
            "investigation notes",
        ),
    ),
    "PSI-2.2": (
        "sc_task",
        ("analytics",),
        ("data-science",),
        (
            "forecast for team",
            "ticket classifier pilot",
            "proof of concept",
            "scoped request",
            "baseline model",
            "small automation",
            "demand estimate",
            "prototype",
        ),
    ),
    "PSI-3.1": (
        "incident",
        ("application",),
        ("ml-platform",),
        (
            "stack trace",
            "flaky test",
            "memory leak",
            "segfault",
            "deadlock",
            "core dump",
            "bisect commit",
            "heisenbug",
        ),
    ),
    "PSI-4.1": (
        "problem",
        ("analytics",),
        ("ml-architecture",),
        (
            "hyperparameter sweep",
            "ab test result",
            "uplift",
            "revenue impact",
            "gradient boosting",
            "algorithm bakeoff",
            "business kpi",
            "bayesian search",
        ),
    ),
    "PSI-5.1": (
        "sc_task",
        ("innovation",),
        ("ml-architecture",),
        (
            "hackathon",
            "patent draft",
            "new product idea",
            "research spike",
            "llm agent pilot",
            "innovation day",
            "novel approach",
            "moonshot",
        ),
    ),
    "CC-1.1": (
        "sc_task",
        ("inquiry",),
        ("ml-onboarding",),
        (
            "pairing session",
            "helped colleague",
            "team chat",
            "standup",
            "buddy program",
            "handover",
            "shadowing",
            "team retro",
        ),
    ),
    "CC-1.2": (
        "sc_task",
        ("inquiry",),
        ("ml-onboarding",),
        (
            "meeting agenda",
            "brainstorm",
            "raised proposal",
            "sprint planning",
            "idea board",
            "weekly sync",
            "suggestion box",
            "lightning talk",
        ),
    ),
    "CC-2.1": (
        "sc_task",
        ("inquiry",),
        ("data-science",),
        (
            "analysis summary",
            "slack thread",
            "findings memo",
            "peer review",
            "office hours",
            "weekly report",
            "results email",
            "notebook share",
        ),
    ),
    "CC-2.2": (
        "sc_task",
        ("documentation",),
        ("data-science",),
        (
            "demo recording",
            "confluence page",
            "screen capture",
            "show and tell",
            "how to guide",
            "faq entry",
            "video walkthrough",
            "sprint demo",
        ),
    ),
    "CC-3.1": (
        "change_request",
        ("application",),
        ("integration",),
        (
            "backend team",
            "api contract",
            "joint release",
            "integration test",
            "crm team",
            "product squad",
            "interface agreement",
            "cross team",
        ),
    ),
    "CC-4.1": (
        "sc_task",
        ("inquiry",),
        ("ml-platform",),
        (
            "shap explanation",
            "why was this flagged",
            "feature importance",
            "support question",
            "service desk training",
            "explainability",
            "brown bag",
            "q and a",
        ),
    ),
    "CC-4.2": (
        "sc_task",
        ("inquiry",),
        ("analytics",),
        (
            "executive readout",
            "quarterly review",
            "recommendation deck",
            "business review",
            "dashboard walkthrough",
            "board slide",
            "steering committee",
            "insight report",
        ),
    ),
    "CC-5.1": (
        "sc_task",
        ("governance",),
        ("leadership",),
        (
            "vp sponsorship",
            "partner organisation",
            "escalation resolved",
            "trust repair",
            "cross org alignment",
            "leadership offsite",
            "stakeholder map",
            "mentoring leads",
        ),
    ),
}

# Words any ticket has, whatever it is about: the noise.
ITSM_NOISE = (
    "user reported",
    "please advise",
    "urgent",
    "as discussed",
    "ticket reopened",
    "customer impact",
    "see attached",
    "priority raised",
    "follow up",
    "pending vendor",
    "monday",
    "prod",
    "emea",
    "team",
    "issue",
    "request",
    "update",
    "status",
    "resolved",
    "workaround",
    "checked logs",
    "kb article",
    "escalated",
    "sla breach",
    "waiting on",
)
TEMPLATES = (
    "{a} after {b}",
    "{a}: {b} ({n})",
    "{n} - {a} and {b}",
    "Investigate {a}, {b}",
    "{a} for {b} {n}",
    "Request: {a} with {b}",
)
CLOSE_TEMPLATES = (
    "Closed: {a}. {n}.",
    "{n}; {a} done, {b} checked.",
    "Resolved {a} {n}",
    "",
)
ALL_GROUPS = sorted({g for _t, _c, groups, _w in VOCABULARY.values() for g in groups})
ALL_CATEGORIES = sorted({c for _t, cats, _g, _w in VOCABULARY.values() for c in cats})
TABLES = ("incident", "change_request", "sc_task", "problem")


def code_level(code: str) -> int:
    return int(code.split("-")[1].split(".")[0])


@dataclass
class CorpusItem:
    number: str
    table: str
    raw: dict
    person: int  # index into the corpus's people
    level: int  # that person's level
    codes: tuple[str, ...]  # what the engineer linked (first: the main one)


def corpus(
    n: int,
    *,
    people_levels: list[int],
    seed: int = 7,
    own_share: float = 0.15,
    above_share: float = 0.1,
    wrong_label_share: float = 0.1,
    neighbour_share: float = 0.4,
    start: int = 0,
) -> list[CorpusItem]:
    """n items for people at these levels: each linked to an expectation of their next level
    (mostly), own level (`own_share`) or above (`above_share`)."""
    rng = random.Random(seed)
    by_level: dict[int, list[str]] = {}
    for code in VOCABULARY:
        by_level.setdefault(code_level(code), []).append(code)
    codes_all = list(VOCABULARY)
    top = max(by_level)
    out = []
    for k in range(n):
        p = rng.randrange(len(people_levels))
        level = people_levels[p]
        nxt = min(level + 1, top)
        r = rng.random()
        if r < own_share:
            target = level
        elif r < own_share + above_share and nxt < top:
            target = rng.randint(nxt + 1, top)
        else:
            target = nxt
        main = rng.choice(by_level[target])
        codes = [main]
        if rng.random() < 0.15:  # a second expectation of the same level
            other = rng.choice(by_level[target])
            if other != main:
                codes.append(other)
        table, cats, groups, terms = VOCABULARY[main]
        # overlap: some words come from a neighbour (same level or same competency)
        neighbour = rng.choice(
            [c for c in codes_all if c != main and (c[:2] == main[:2] or code_level(c) == target)]
        )
        n_terms = VOCABULARY[neighbour][3]

        def term(own=terms, other=n_terms):
            return rng.choice(other) if rng.random() < neighbour_share else rng.choice(own)

        fill = {"a": term(), "b": term(), "n": rng.choice(ITSM_NOISE)}
        short = rng.choice(TEMPLATES).format(**fill)
        words = [term() for _ in range(rng.randint(1, 3))]
        words += [rng.choice(ITSM_NOISE) for _ in range(rng.randint(2, 5))]
        rng.shuffle(words)
        description = ". ".join(words).capitalize() + "."
        close = rng.choice(CLOSE_TEMPLATES).format(a=term(), b=term(), n=rng.choice(ITSM_NOISE))
        if rng.random() < wrong_label_share:
            codes = [rng.choice(by_level[target])]
        raw = {
            "short_description": short,
            "description": description,
            "close_notes": close,
            "category": rng.choice(cats) if rng.random() < 0.6 else rng.choice(ALL_CATEGORIES),
            "assignment_group": (
                rng.choice(groups) if rng.random() < 0.5 else rng.choice(ALL_GROUPS)
            ),
            "priority": str(rng.randint(1, 4)),
        }
        item_table = table if rng.random() < 0.7 else rng.choice(TABLES)
        prefix = {"incident": "INC", "change_request": "CHG", "sc_task": "SCTASK"}.get(
            item_table, "PRB"
        )
        out.append(
            CorpusItem(
                number=f"{prefix}{start + k:07d}",
                table=item_table,
                raw=raw,
                person=p,
                level=level,
                codes=tuple(dict.fromkeys(codes)),
            )
        )
    return out


_WORD = re.compile(r"[a-z]{3,}")


def ladder_overlap(items: list[CorpusItem], ladder_texts: list[str]) -> float:
    """Share of the corpus's word tokens (3+ letters) that also occur in the ladder's text."""
    ladder_words = {w for t in ladder_texts for w in _WORD.findall(t.lower())}
    total = shared = 0
    for it in items:
        for field in ("short_description", "description", "close_notes"):
            for w in _WORD.findall(it.raw[field].lower()):
                total += 1
                shared += w in ladder_words
    return shared / total if total else 0.0
