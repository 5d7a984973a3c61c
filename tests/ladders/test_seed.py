"""The AI/ML ladder holds every sentence of its seed exactly once, verbatim, in its section."""

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.conftest import LADDER_FILE

SEED = (
    Path(__file__).resolve().parents[2]
    / "fixtures"
    / "ladders"
    / "seeds"
    / ("ai-ml-engineer-ladder.txt")
)
# Lines of the seed that are structure (headings, table labels), not content.
HEADINGS = {
    "AI/ML Engineer I",
    "Scope",
    "Key Deliverables by Level",
    "Level",
    "Title",
    "Key Deliverables",
    "Level 1",
    "Essential Duties and Responsibilities (All Levels):",
    "Education and/or Work Experience Requirements:",
    "Minimum Requirements:",
    "Competencies:",
    "Technical Expertise",
    "Problem Solving & Innovation",
    "Collaboration & Communication",
}
# Where the seed runs two sentences together, they are two items of the ladder.
RUN_TOGETHER = [
    ("performance metrics", "Architect end-to-end"),
    ("or a related field.", "Master’s preferred"),
]


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def seed_sentences() -> list[str]:
    lines = [_norm(line) for line in SEED.read_text(encoding="utf-8").splitlines()]
    out = []
    for line in lines:
        if not line or line in HEADINGS:
            continue
        for end, start in RUN_TOGETHER:
            if end + start in line:
                head, tail = line.split(end + start)
                out += [head + end, start + tail]
                break
        else:
            out.append(line)
    return out


def _ladder_texts(tree: dict) -> list[str]:
    texts = [tree["competency_intro"]]
    texts += [e["text"] for e in tree["expectations"]]
    texts += [d["text"] for d in tree["deliverables"]]
    texts += [s["text"] for s in tree["scope"]]
    texts += [d["text"] for d in tree["duties"]]
    for items in tree["requirements"].values():
        texts += [r["text"] for r in items]
    return [_norm(t) for t in texts]


@pytest.mark.django_db
def test_api_returns_every_seed_sentence_exactly_once(engineer_api):
    tree = engineer_api.get("/api/v1/ladders/ai-ml-engineer/").json()

    assert Counter(_ladder_texts(tree)) == Counter(seed_sentences())
    assert len(seed_sentences()) == 70


@pytest.mark.django_db
def test_each_sentence_is_in_its_section(engineer_api):
    tree = engineer_api.get("/api/v1/ladders/ai-ml-engineer/").json()

    assert [s["text"] for s in tree["scope"]][0].startswith("Translate business goals")
    assert len(tree["scope"]) == 6
    assert [(d["level"], d["level_inferred"]) for d in tree["deliverables"]] == [(1, False)] * 5
    duties = [d["text"] for d in tree["duties"]]
    assert len(duties) == 6
    assert duties[4].endswith("ensure compliance and performance metrics")
    assert duties[5].startswith("Architect end-to-end AI platforms")
    req = tree["requirements"]
    assert [len(req[k]) for k in ("education", "experience", "skills", "general")] == [2, 1, 5, 10]
    assert req["experience"][0]["level"] == 1
    assert {c["name"]: c["code"] for c in tree["competencies"]} == {
        "Technical Expertise": "TE",
        "Problem Solving & Innovation": "PSI",
        "Collaboration & Communication": "CC",
    }
    per_comp = Counter(e["competency"] for e in tree["expectations"])
    assert per_comp == {"TE": 19, "PSI": 7, "CC": 8}


def test_expectation_levels_never_decrease_in_seed_order_and_are_marked_inferred():
    data = yaml.safe_load(LADDER_FILE.read_text(encoding="utf-8"))
    by_comp: dict[str, list[int]] = {}
    for exp in data["expectations"]:
        by_comp.setdefault(exp["competency"], []).append(exp["level"])
        assert exp["inferred"] is True  # the seed labels no expectation with a level
    for comp, levels in by_comp.items():
        assert levels == sorted(levels), comp
        assert set(levels) == {1, 2, 3, 4, 5}, comp  # every level has something to aim at
    # and seed order is kept: the YAML's expectation texts follow the seed's order
    seed = seed_sentences()
    positions = [seed.index(_norm(e["text"])) for e in data["expectations"]]
    assert positions == sorted(positions)


def test_titles_follow_the_level_one_pattern_and_only_level_one_is_stated():
    data = yaml.safe_load(LADDER_FILE.read_text(encoding="utf-8"))
    titles = [(lv["number"], lv["title"], lv.get("inferred", False)) for lv in data["levels"]]
    assert titles == [
        (1, "AI/ML Engineer I", False),
        (2, "AI/ML Engineer II", True),
        (3, "AI/ML Engineer III", True),
        (4, "AI/ML Engineer IV", True),
        (5, "AI/ML Engineer V", True),
    ]


@pytest.mark.django_db
def test_skill_taxonomy_has_one_skill_per_list_item(engineer_api):
    tree = engineer_api.get("/api/v1/ladders/ai-ml-engineer/").json()
    by_category: dict[str, list[str]] = {}
    for skill in tree["skills"]:
        by_category.setdefault(skill["category"], []).append(skill["name"])

    assert by_category == {
        "Programming": ["Python", "Java/C++", "SQL", "Apps Script", "ServiceNow"],
        "Frameworks": ["TensorFlow", "PyTorch", "scikit-learn", "HuggingFace"],
        "Tools": ["Git", "Docker", "Kubernetes", "Airflow", "MLflow", "Jupyter", "Postman"],
        "Data pipeline": ["SQL", "Pandas", "data APIs"],
        "Deployment": ["Flask/FastAPI", "CI/CD", "REST APIs", "cloud functions"],
    }
    python = next(s for s in tree["skills"] if s["name"] == "Python")
    assert python["qualifier"] == "must"
