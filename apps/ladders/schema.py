"""The ladder YAML format (docs/ladder-format.md), validated with pydantic.

`ladder_file_parse` turns text into a validated `LadderFile` or raises `LadderFileError`
listing every problem as `line N: path.to.field: message`, so an author can find it.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
CODE_RE = re.compile(r"^(?P<competency>[A-Z]{1,8})-(?P<level>\d+)\.(?P<n>\d+)$")
MAX_LEVELS = 20


class LadderFileError(ValueError):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid ladder file:\n  " + "\n  ".join(problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LevelSpec(_Strict):
    number: int = Field(ge=1, le=MAX_LEVELS)
    title: Text
    summary: str = ""
    inferred: bool = False


class CompetencySpec(_Strict):
    code: Annotated[str, StringConstraints(pattern=r"^[A-Z]{1,8}$")]
    name: Text
    description: str = ""


class ExpectationSpec(_Strict):
    code: Text
    competency: Text
    level: int
    text: Text
    inferred: bool = False


class LevelTextSpec(_Strict):
    text: Text
    level: int | None = None
    inferred: bool = False


class DeliverableSpec(_Strict):
    text: Text
    level: int
    inferred: bool = False


class SkillSpec(_Strict):
    name: Text
    qualifier: str = ""


class RequirementSpec(_Strict):
    kind: Literal["education", "experience", "skills", "general"]
    text: Text
    level: int | None = None
    inferred: bool = False
    category: str = ""
    skills: list[SkillSpec] = []


class LadderFile(_Strict):
    format: Literal[1]
    slug: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]
    name: Text
    description: str = ""
    source: str = ""
    competency_intro: str = ""
    levels: list[LevelSpec] = Field(min_length=1)
    competencies: list[CompetencySpec] = Field(min_length=1)
    expectations: list[ExpectationSpec] = Field(min_length=1)
    scope: list[LevelTextSpec] = []
    deliverables: list[DeliverableSpec] = []
    duties: list[LevelTextSpec] = []
    requirements: list[RequirementSpec] = []


def _line_index(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict:
    """Map each path in the document (keys and list indexes) to its 1-based line."""
    out = {} if out is None else out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[(*path, key)] = key_node.start_mark.line + 1
            _line_index(value_node, (*path, key), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, (*path, i), out)
    return out


def _where(lines: dict, path: tuple) -> str:
    probe = tuple(path)
    while probe and probe not in lines:
        probe = probe[:-1]
    line = lines.get(probe, 1)
    dotted = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    return f"line {line}: {dotted or '(document)'}"


def ladder_file_locate(text: str, problems: list[tuple[tuple, str]]) -> list[str]:
    """`(path, message)` problems found outside this module, as `line N: path: message`."""
    lines = _line_index(yaml.compose(text, Loader=yaml.SafeLoader))
    return [_where(lines, path) + f": {msg}" for path, msg in problems]


def ladder_file_parse(text: str) -> LadderFile:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "document"
        problem = getattr(exc, "problem", None) or str(exc)
        raise LadderFileError([f"{where}: not valid YAML: {problem}"]) from None
    if not isinstance(data, dict) or root is None:
        raise LadderFileError(["line 1: (document): expected a mapping at the top level"])
    lines = _line_index(root)
    try:
        spec = LadderFile.model_validate(data)
    except ValidationError as exc:
        problems = [_where(lines, err["loc"]) + f": {err['msg']}" for err in exc.errors()]
        raise LadderFileError(problems) from None
    problems = [_where(lines, path) + f": {msg}" for path, msg in _cross_check(spec)]
    if problems:
        raise LadderFileError(problems)
    return spec


def _cross_check(spec: LadderFile) -> list[tuple[tuple, str]]:
    """Rules that span fields: references, uniqueness, ranges, code shape."""
    problems: list[tuple[tuple, str]] = []
    level_numbers = [lv.number for lv in spec.levels]
    if level_numbers != list(range(1, len(level_numbers) + 1)):
        problems.append(
            (("levels",), f"levels must be numbered 1..N in order, got {level_numbers}")
        )
    known_levels = set(level_numbers)
    seen_comp: set[str] = set()
    for i, comp in enumerate(spec.competencies):
        if comp.code in seen_comp:
            problems.append(
                (("competencies", i, "code"), f"duplicate competency code {comp.code!r}")
            )
        seen_comp.add(comp.code)

    def check_level(path: tuple, level: int | None) -> None:
        if level is not None and level not in known_levels:
            problems.append(
                (
                    path,
                    f"level {level} is out of range (levels are {min(known_levels)}–"
                    f"{max(known_levels)})",
                )
            )

    seen_codes: dict[str, int] = {}
    for i, exp in enumerate(spec.expectations):
        base = ("expectations", i)
        if exp.competency not in seen_comp:
            problems.append(
                (
                    (*base, "competency"),
                    f"unknown competency {exp.competency!r} "
                    f"(known: {', '.join(sorted(seen_comp))})",
                )
            )
        check_level((*base, "level"), exp.level)
        if exp.code in seen_codes:
            problems.append(
                (
                    (*base, "code"),
                    f"duplicate code {exp.code!r} (first at expectations[{seen_codes[exp.code]}])",
                )
            )
        else:
            seen_codes[exp.code] = i
        match = CODE_RE.match(exp.code)
        if not match:
            problems.append(((*base, "code"), f"code {exp.code!r} is not like 'TE-3.1'"))
        elif match["competency"] != exp.competency or int(match["level"]) != exp.level:
            problems.append(
                (
                    (*base, "code"),
                    f"code {exp.code!r} does not match competency "
                    f"{exp.competency!r} and level {exp.level}",
                )
            )
    for section in ("scope", "deliverables", "duties", "requirements"):
        for i, item in enumerate(getattr(spec, section)):
            check_level((section, i, "level"), item.level)
    for i, req in enumerate(spec.requirements):
        if req.kind == "skills":
            if not req.category:
                problems.append((("requirements", i, "category"), "skills need a category"))
            if not req.skills:
                problems.append((("requirements", i, "skills"), "skills need at least one item"))
            names = [s.name for s in req.skills]
            for dup in sorted({n for n in names if names.count(n) > 1}):
                problems.append((("requirements", i, "skills"), f"duplicate skill {dup!r}"))
        elif req.skills:
            problems.append((("requirements", i, "skills"), "only kind 'skills' lists skills"))
    return problems
