"""Writes to ladders: loading a YAML file into a version, publishing, and draft edits.

A published version never changes. Loading a file whose content equals the latest version
(or the latest published version) changes nothing; a different file replaces the latest
version while it is a draft and otherwise becomes a new version. A draft edited by hand no
longer equals any file.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from ladder_tracker.errors import ConflictError

from .models import (
    Competency,
    Deliverable,
    Expectation,
    Ladder,
    LadderVersion,
    Level,
    Skill,
    Statement,
)
from .schema import LadderFile, LadderFileError, ladder_file_locate, ladder_file_parse

logger = logging.getLogger(__name__)


class LadderVersionImmutable(ConflictError):
    """An edit was attempted on a published ladder version."""


@dataclass(frozen=True)
class LoadResult:
    version: LadderVersion
    outcome: str  # "created" | "replaced" | "unchanged"
    published_now: bool


def _content_sha256(spec: LadderFile) -> str:
    canonical = json.dumps(spec.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def ladder_version_assert_editable(*, version: LadderVersion) -> None:
    if version.is_published:
        raise LadderVersionImmutable(
            f"{version.ladder.slug} version {version.number} is published and cannot be "
            "changed; load a new file to create a new version."
        )


def ladder_load_file(*, path: Path | str, publish: bool = False) -> LoadResult:
    text = Path(path).read_text(encoding="utf-8")
    return ladder_load(text=text, publish=publish)


def ladder_load(*, text: str, publish: bool = False) -> LoadResult:
    """Validate first (raises LadderFileError, writing nothing), then write in one transaction."""
    spec = ladder_file_parse(text)
    sha = _content_sha256(spec)
    with transaction.atomic():
        ladder, _ = Ladder.objects.select_for_update().get_or_create(
            slug=spec.slug, defaults={"name": spec.name, "description": spec.description}
        )
        _codes_check(ladder=ladder, spec=spec, text=text)
        latest = ladder.versions.order_by("-number").first()
        if latest is not None and latest.content_sha256 == sha:
            published_now = False
            if publish and not latest.is_published:
                ladder_version_publish(version=latest)
                published_now = True
            return LoadResult(version=latest, outcome="unchanged", published_now=published_now)
        published = ladder.versions.filter(status=LadderVersion.Status.PUBLISHED)
        current = published.order_by("-number").first()
        if current is not None and current.content_sha256 == sha:
            # The published file again while a draft of another file is open (re-running
            # `make demo` after loading a draft): that is no change, not a new version that
            # repeats the published one. The draft stays as it is.
            return LoadResult(version=current, outcome="unchanged", published_now=False)
        if ladder.name != spec.name or ladder.description != spec.description:
            ladder.name, ladder.description = spec.name, spec.description
            ladder.save(update_fields=["name", "description"])
        if latest is not None and not latest.is_published:
            latest.delete()  # drafts are working copies; nothing may pin to them
            number, outcome = latest.number, "replaced"
        else:
            number = (latest.number + 1) if latest else 1
            outcome = "created"
        version = LadderVersion.objects.create(
            ladder=ladder,
            number=number,
            content_sha256=sha,
            source=spec.source,
            competency_intro=spec.competency_intro,
        )
        _version_fill(version=version, spec=spec)
        if publish:
            ladder_version_publish(version=version)
    logger.info("ladder %s: version %s %s", spec.slug, version.number, outcome)
    return LoadResult(version=version, outcome=outcome, published_now=publish)


def _codes_check(*, ladder: Ladder, spec: LadderFile, text: str) -> None:
    """A code means one expectation for the life of the ladder: evidence links follow it
    from version to version. A file that gives a code the ladder's published versions used
    to a different competency (the competency's code now names another competency) is
    refused, naming the line, before anything is written. Rewording is allowed; it is
    flagged on the evidence linked to it."""
    before: dict[str, tuple[int, str]] = {}  # code -> (version number, competency name)
    for number, code, name in (
        Expectation.objects.filter(
            version__ladder=ladder, version__status=LadderVersion.Status.PUBLISHED
        )
        .order_by("version__number")
        .values_list("version__number", "code", "competency__name")
    ):
        before[code] = (number, name)  # the newest published use of each code wins
    if not before:
        return
    names = {c.code: c.name for c in spec.competencies}
    problems = []
    for i, exp in enumerate(spec.expectations):
        known = before.get(exp.code)
        name = names.get(exp.competency)
        if known is None or name is None or known[1].casefold() == name.casefold():
            continue
        problems.append(
            (
                ("expectations", i, "code"),
                f"code {exp.code!r} belongs to competency {known[1]!r} (version "
                f"{known[0]}) and cannot be re-used for {name!r}: give it a new code",
            )
        )
    if problems:
        raise LadderFileError(ladder_file_locate(text, problems))


def _version_fill(*, version: LadderVersion, spec: LadderFile) -> None:
    levels = {
        lv.number: Level(
            version=version,
            number=lv.number,
            title=lv.title,
            title_inferred=lv.inferred,
            summary=lv.summary,
        )
        for lv in spec.levels
    }
    Level.objects.bulk_create(levels.values())
    competencies = {
        c.code: Competency(
            version=version, code=c.code, name=c.name, description=c.description, position=i
        )
        for i, c in enumerate(spec.competencies)
    }
    Competency.objects.bulk_create(competencies.values())
    Expectation.objects.bulk_create(
        Expectation(
            version=version,
            level=levels[e.level],
            competency=competencies[e.competency],
            code=e.code,
            text=e.text,
            level_inferred=e.inferred,
            position=i,
        )
        for i, e in enumerate(spec.expectations)
    )
    Deliverable.objects.bulk_create(
        Deliverable(
            version=version,
            level=levels[d.level],
            text=d.text,
            level_inferred=d.inferred,
            position=i,
        )
        for i, d in enumerate(spec.deliverables)
    )
    position = 0
    skills: list[Skill] = []
    for kind, items in (
        (Statement.Kind.SCOPE, spec.scope),
        (Statement.Kind.DUTY, spec.duties),
        (None, spec.requirements),
    ):
        for item in items:
            statement = Statement.objects.create(
                version=version,
                kind=kind or item.kind,
                level=levels[item.level] if item.level is not None else None,
                category=getattr(item, "category", ""),
                text=item.text,
                level_inferred=item.inferred,
                position=position,
            )
            position += 1
            for skill in getattr(item, "skills", []):
                skills.append(
                    Skill(
                        version=version,
                        requirement=statement,
                        category=statement.category,
                        name=skill.name,
                        qualifier=skill.qualifier,
                        position=len(skills),
                    )
                )
    Skill.objects.bulk_create(skills)


@transaction.atomic
def ladder_version_publish(*, version: LadderVersion) -> LadderVersion:
    """Publish a draft: it becomes the current version, and the evidence links of the
    ladder follow it by code (apps/evidence owns those rows: its service moves them, keeping
    what each was made against and flagging removed and reworded expectations)."""
    # imported here: apps/evidence reads ladders, and ladders only calls evidence here
    from apps.evidence.services import evidence_links_follow_version

    ladder_version_assert_editable(version=version)
    version.status = LadderVersion.Status.PUBLISHED
    version.published_at = timezone.now()
    version.save(update_fields=["status", "published_at"])
    followed = evidence_links_follow_version(version=version)
    logger.info(
        "ladder %s: version %s published; links carried %s (reworded %s), removed %s",
        version.ladder.slug,
        version.number,
        followed.carried,
        followed.reworded,
        followed.removed,
    )
    return version


def expectation_update(*, expectation: Expectation, text: str) -> Expectation:
    """Edit an expectation's text; only drafts may change."""
    ladder_version_assert_editable(version=expectation.version)
    expectation.text = text
    expectation.save(update_fields=["text"])
    # The draft no longer equals the file it came from: loading that file again replaces
    # the edit instead of calling it unchanged (and publishing the edit).
    LadderVersion.objects.filter(pk=expectation.version_id).update(content_sha256="")
    return expectation
