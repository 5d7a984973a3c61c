"""Reads of ladders. Every authenticated user reads published versions; drafts are for admins."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import Http404

from .models import Expectation, Ladder, LadderVersion, Level, Statement


def _sees_drafts(user: AbstractBaseUser) -> bool:
    return bool(getattr(user, "is_staff", False))


def _published_newest_first() -> QuerySet[LadderVersion]:
    """Published versions, the current one first: the one rule for "the current published
    version" (the newest published), read by every caller below."""
    return LadderVersion.objects.filter(status=LadderVersion.Status.PUBLISHED).order_by("-number")


def ladder_version_published(*, ladder_id: int | None) -> LadderVersion | None:
    """The ladder's current published version (None without a ladder or a published one)."""
    if ladder_id is None:
        return None
    return _published_newest_first().filter(ladder_id=ladder_id).first()


def ladder_versions_published() -> dict[int, LadderVersion]:
    """{ladder id: its current published version} for every ladder that has one, in one
    query (bulk readers such as the ServiceNow sync)."""
    current: dict[int, LadderVersion] = {}
    for version in _published_newest_first():
        current.setdefault(version.ladder_id, version)  # newest first: the first one wins
    return current


def ladder_list(*, user: AbstractBaseUser) -> QuerySet[Ladder]:
    """Ladders, each annotated with `published_number` (its current version's number, or
    None); people who do not see drafts only get ladders that have a published version."""
    current = _published_newest_first().filter(ladder=OuterRef("pk")).values("number")[:1]
    qs = Ladder.objects.annotate(published_number=Subquery(current))
    if not _sees_drafts(user):
        qs = qs.filter(published_number__isnull=False)
    return qs


def ladder_version_list(*, ladder: Ladder, user: AbstractBaseUser) -> QuerySet[LadderVersion]:
    qs = ladder.versions.select_related("ladder").order_by("-number")
    if not _sees_drafts(user):
        qs = qs.filter(status=LadderVersion.Status.PUBLISHED)
    return qs


def ladder_get(*, slug: str, user: AbstractBaseUser) -> Ladder:
    ladder = ladder_list(user=user).filter(slug=slug).first()
    if ladder is None:
        raise Http404(f"No ladder {slug!r}.")
    return ladder


def ladder_version_get(
    *, ladder: Ladder, user: AbstractBaseUser, number: int | None = None
) -> LadderVersion:
    """The given version, or the current published one."""
    if number is None:
        version = ladder_version_published(ladder_id=ladder.pk)
        if version is not None:
            version.ladder = ladder  # the caller's instance: no second read of the ladder
    else:
        version = ladder_version_list(ladder=ladder, user=user).filter(number=number).first()
    if version is None:
        raise Http404(f"No such version of {ladder.slug!r}.")
    return version


@dataclass
class LevelTree:
    level: Level
    expectations_by_competency: dict[str, list[Expectation]] = field(default_factory=dict)
    deliverables: list = field(default_factory=list)
    scope: list = field(default_factory=list)
    duties: list = field(default_factory=list)
    requirements: list = field(default_factory=list)


@dataclass
class VersionTree:
    version: LadderVersion
    levels: list[LevelTree]
    competencies: list
    expectations: list[Expectation]
    deliverables: list
    scope: list[Statement]
    duties: list[Statement]
    requirements: dict[str, list[Statement]]
    skills: list


def ladder_version_tree(*, version: LadderVersion) -> VersionTree:
    """The whole version in a fixed number of queries, grouped for the API and the page."""
    levels = list(version.levels.all())
    competencies = list(version.competencies.all())
    expectations = list(version.expectations.all())
    deliverables = list(version.deliverables.all())
    statements = list(version.statements.all())
    skills = list(version.skills.all())
    level_by_id = {lv.id: lv for lv in levels}
    comp_by_id = {c.id: c for c in competencies}
    trees = {lv.id: LevelTree(level=lv) for lv in levels}
    for tree in trees.values():
        tree.expectations_by_competency = {c.code: [] for c in competencies}
    for exp in expectations:
        exp.level = level_by_id[exp.level_id]  # avoid a query per row in templates/serializers
        exp.competency = comp_by_id[exp.competency_id]
        trees[exp.level_id].expectations_by_competency[exp.competency.code].append(exp)
    for d in deliverables:
        d.level = level_by_id[d.level_id]
        trees[d.level_id].deliverables.append(d)
    requirements: dict[str, list[Statement]] = {k.value: [] for k in Statement.REQUIREMENT_KINDS}
    scope, duties = [], []
    for s in statements:
        s.level = level_by_id.get(s.level_id)
        if s.kind == Statement.Kind.SCOPE:
            scope.append(s)
        elif s.kind == Statement.Kind.DUTY:
            duties.append(s)
        else:
            requirements[s.kind].append(s)
        if s.level_id is not None:
            tree = trees[s.level_id]
            bucket = {"scope": tree.scope, "duty": tree.duties}.get(s.kind, tree.requirements)
            bucket.append(s)
    return VersionTree(
        version=version,
        levels=[trees[lv.id] for lv in levels],
        competencies=competencies,
        expectations=expectations,
        deliverables=deliverables,
        scope=scope,
        duties=duties,
        requirements=requirements,
        skills=skills,
    )


@dataclass(frozen=True)
class ExpectationChange:
    code: str
    before: dict | None
    after: dict | None
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class VersionDiff:
    from_version: LadderVersion
    to_version: LadderVersion
    added: list[ExpectationChange]
    removed: list[ExpectationChange]
    changed: list[ExpectationChange]

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def _expectation_facts(version: LadderVersion) -> dict[str, dict]:
    rows = version.expectations.values_list("code", "text", "level__number", "competency__code")
    return {
        code: {"code": code, "text": text, "level": level, "competency": comp}
        for code, text, level, comp in rows
    }


def ladder_version_diff(*, from_version: LadderVersion, to_version: LadderVersion) -> VersionDiff:
    """Expectations added, removed and changed (text, level or competency), keyed by code."""
    before, after = _expectation_facts(from_version), _expectation_facts(to_version)
    added = [
        ExpectationChange(code=c, before=None, after=after[c]) for c in after if c not in before
    ]
    removed = [
        ExpectationChange(code=c, before=before[c], after=None) for c in before if c not in after
    ]
    changed = []
    for code in before.keys() & after.keys():
        fields = tuple(
            k for k in ("text", "level", "competency") if before[code][k] != after[code][k]
        )
        if fields:
            changed.append(
                ExpectationChange(code=code, before=before[code], after=after[code], fields=fields)
            )
    key = lambda ch: ch.code  # noqa: E731
    return VersionDiff(
        from_version=from_version,
        to_version=to_version,
        added=sorted(added, key=key),
        removed=sorted(removed, key=key),
        changed=sorted(changed, key=key),
    )
