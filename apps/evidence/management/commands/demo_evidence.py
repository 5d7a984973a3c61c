"""manage.py demo_evidence: give each demo engineer a mix of manual and imported evidence.

Manual items (linked to expectations of their next level, with skills) are created once;
of their imported candidates, about half are accepted and one is dismissed, the rest wait
in the inbox. Idempotent: a second run changes nothing it already did.
"""

from django.core.management.base import BaseCommand
from django.db import transaction

from apps.evidence.models import Evidence
from apps.evidence.services import LinkSpec, evidence_accept, evidence_create, evidence_dismiss
from apps.ladders.selectors import ladder_version_published
from apps.people.models import Person

MANUAL = [
    # title, description (Markdown), skills, how many next-level expectations to link
    (
        "Churn model retraining pipeline",
        "Rebuilt the weekly **retraining** job as an Airflow DAG with MLflow tracking.\n\n"
        "- cut training time from 3 h to 40 min\n- added drift alerts on feature means",
        ["Airflow", "MLflow", "Python"],
        2,
    ),
    (
        "Talk: what our incident classifier gets wrong",
        "Presented the confusion matrix of the service-desk classifier to the ITSM team and "
        "agreed on two new categories.",
        ["scikit-learn"],
        1,
    ),
    (
        "Data quality checks for the asset inventory",
        "Wrote `great-expectations`-style checks in Pandas; 14 bad rows a day now caught "
        "before training.",
        ["Pandas", "SQL"],
        1,
    ),
]


class Command(BaseCommand):
    help = "Give each demo engineer manual evidence and triage some of their imports."

    @transaction.atomic
    def handle(self, *args, **options):
        engineers = Person.objects.filter(
            user__isnull=False, ladder__isnull=False, level__isnull=False
        ).select_related("user")
        made = triaged = 0
        for person in engineers:
            made += self._manual(person)
            triaged += self._triage(person)
        self.stdout.write(f"demo evidence: {made} manual items, {triaged} imports triaged")

    def _manual(self, person: Person) -> int:
        version = ladder_version_published(ladder_id=person.ladder_id)
        if version is None:
            return 0
        target = min((person.level or 0) + 1, version.levels.count())
        codes = list(
            version.expectations.filter(level__number=target)
            .order_by("position")
            .values_list("code", flat=True)
        )
        made = 0
        for i, (title, description, skills, n_links) in enumerate(MANUAL):
            if Evidence.objects.filter(person=person, title=title).exists():
                continue
            picked = codes[i : i + n_links]
            evidence_create(
                person=person,
                actor=person.user,
                title=title,
                description=description,
                skills=skills,
                links=[
                    LinkSpec(expectation=c, rationale="Shows this at the next level.")
                    for c in picked
                ],
                visibility="private" if i == 2 else "manager",
            )
            made += 1
        return made

    def _triage(self, person: Person) -> int:
        candidates = list(Evidence.objects.filter(person=person, status="candidate").order_by("id"))
        if (
            not candidates
            or Evidence.objects.filter(person=person, source="servicenow")
            .exclude(status="candidate")
            .exists()
        ):
            return 0  # already triaged once
        for ev in candidates[: len(candidates) // 2]:
            evidence_accept(evidence=ev, actor=person.user)
        evidence_dismiss(evidence=candidates[-1], actor=person.user)
        return len(candidates) // 2 + 1
