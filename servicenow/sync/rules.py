"""Suggestion rules matched against a record: what an imported candidate is pre-linked to."""

from __future__ import annotations

from apps.evidence.candidates import SuggestedLink

from ..models import SuggestionRule


def rules_enabled(*, table: str) -> list[SuggestionRule]:
    return list(SuggestionRule.objects.filter(enabled=True, table=table))


def rule_fields(rules: list[SuggestionRule]) -> set[str]:
    """The record fields the rules' conditions read (the sync must ask for them)."""
    return {c.get("field", "") for r in rules for c in r.conditions} - {""}


def rule_matches(rule: SuggestionRule, raw: dict) -> bool:
    for cond in rule.conditions:
        actual = str(raw.get(cond.get("field", ""), ""))
        op, expected = cond.get("op", "="), cond.get("value", "")
        if op == "=" and actual != str(expected):
            return False
        if op == "!=" and actual == str(expected):
            return False
        if op == "contains" and str(expected).lower() not in actual.lower():
            return False
        if op == "startswith" and not actual.lower().startswith(str(expected).lower()):
            return False
        if op == "in" and actual not in [str(v) for v in expected]:
            return False
    return True


def rules_suggest(
    rules: list[SuggestionRule], raw: dict
) -> tuple[tuple[SuggestedLink, ...], tuple[str, ...]]:
    """The expectation codes (with each rule's rationale) and skill names that the matching
    rules suggest, in rule order, each once."""
    links: dict[str, SuggestedLink] = {}
    skills: dict[str, None] = {}
    for rule in rules:
        if not rule_matches(rule, raw):
            continue
        rationale = rule.rationale or f"Suggested by rule {rule.name!r}"
        for code in rule.expectation_codes:
            links.setdefault(code, SuggestedLink(code, rationale))
        for name in rule.skills:
            skills.setdefault(name, None)
    return tuple(links.values()), tuple(skills)
