"""Exports of a person's evidence. The brag document: accepted, non-deleted evidence as
Markdown, grouped by the competency of the expectations it is linked to."""

from __future__ import annotations

from django.utils import timezone

from apps.people.models import Person

from .models import Evidence
from .selectors import EvidenceFilters, evidence_list

NOT_LINKED = "Not linked"


def _when(evidence: Evidence) -> str:
    if evidence.occurred_on and evidence.occurred_until:
        return f"{evidence.occurred_on:%Y-%m-%d} – {evidence.occurred_until:%Y-%m-%d}"
    return f"{evidence.occurred_on:%Y-%m-%d}" if evidence.occurred_on else "undated"


def _item(evidence: Evidence, codes: list[str]) -> list[str]:
    facts = [_when(evidence)]
    link = evidence.url or (evidence.snapshot or {}).get("url", "")
    number = (evidence.snapshot or {}).get("number", "")
    if evidence.source == Evidence.Source.SERVICENOW:
        label = f"ServiceNow {number}".strip()
        facts.append(f"[{label}]({link})" if link else label)
        if evidence.work_item_id and evidence.work_item.deleted_at:
            facts.append("deleted in ServiceNow")
    elif link:
        facts.append(f"<{link}>")
    if codes:
        facts.append("Expectations: " + ", ".join(codes))
    lines = [f"### {evidence.title}", "", " · ".join(facts), ""]
    if evidence.description.strip():
        lines += [evidence.description.strip(), ""]
    return lines


def brag_document(*, person: Person) -> str:
    """The person's accepted evidence as Markdown: one section per competency (in ladder
    order) holding every item linked to one of its expectations, then "Not linked"."""
    items: list[Evidence] = []
    if person.user_id:
        filters = EvidenceFilters(person=person.pk, status=Evidence.Status.ACCEPTED)
        items = list(evidence_list(viewer=person.user, filters=filters))
    sections: dict[tuple, list[tuple[Evidence, list[str]]]] = {}
    unlinked: list[Evidence] = []
    for evidence in items:
        by_competency: dict[tuple, list[str]] = {}
        for link in evidence.links.all():
            if link.expectation_id:
                comp = link.expectation.competency
                by_competency.setdefault((comp.position, comp.name), []).append(
                    link.expectation.code
                )
        if not by_competency:
            unlinked.append(evidence)
        for key, codes in by_competency.items():
            sections.setdefault(key, []).append((evidence, codes))
    level = f", level {person.level}" if person.level else ""
    lines = [
        f"# Brag document: {person.name}",
        "",
        f"{person.title or 'Engineer'}{level} · {len(items)} accepted items · "
        f"generated {timezone.localdate():%Y-%m-%d}",
        "",
    ]
    for (_position, name), entries in sorted(sections.items()):
        lines += [f"## {name}", ""]
        for evidence, codes in entries:
            lines += _item(evidence, codes)
    if unlinked:
        lines += [f"## {NOT_LINKED}", ""]
        for evidence in unlinked:
            lines += _item(evidence, [])
    if not items:
        lines += ["No accepted evidence yet.", ""]
    return "\n".join(lines).rstrip() + "\n"
