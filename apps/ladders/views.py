"""Ladder pages: the list, one ladder as a levels × competencies matrix, and a version diff."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from apps.people.selectors import person_for_user

from . import selectors


def _int_or_none(raw: str | None) -> int | None:
    try:
        value = int(raw) if raw not in (None, "") else None
    except ValueError:
        return None
    return value if value is None or value >= 1 else None


@login_required
def home(request):
    person = person_for_user(user=request.user)
    if person and person.ladder_id:
        return redirect("ladders:detail", slug=person.ladder.slug)
    return redirect("ladders:list")


@login_required
def ladder_list_page(request):
    ladders = selectors.ladder_list(user=request.user)
    return render(request, "ladders/ladder_list.html", {"ladders": ladders})


@login_required
def ladder_page(request, slug: str):
    ladder = selectors.ladder_get(slug=slug, user=request.user)
    versions = list(selectors.ladder_version_list(ladder=ladder, user=request.user))
    version = selectors.ladder_version_get(
        ladder=ladder, user=request.user, number=_int_or_none(request.GET.get("version"))
    )
    tree = selectors.ladder_version_tree(version=version)
    person = person_for_user(user=request.user)
    current_level = next_level = None
    if person and person.ladder_id == ladder.id and person.level:
        current_level = person.level
        if any(lt.level.number == person.level + 1 for lt in tree.levels):
            next_level = person.level + 1
    rows = [
        {
            "competency": comp,
            "cells": [lt.expectations_by_competency[comp.code] for lt in tree.levels],
        }
        for comp in tree.competencies
    ]
    context = {
        "ladder": ladder,
        "versions": versions,
        "tree": tree,
        "rows": rows,
        "current_level": current_level,
        "next_level": next_level,
        # an engineer on a ladder with more than one published version: what changed for them
        "ladder_moved": person is not None
        and person.ladder_id == ladder.id
        and sum(1 for v in versions if v.is_published) > 1,
    }
    return render(request, "ladders/ladder_detail.html", context)


@login_required
def ladder_diff_page(request, slug: str):
    ladder = selectors.ladder_get(slug=slug, user=request.user)
    versions = list(selectors.ladder_version_list(ladder=ladder, user=request.user))
    context = {"ladder": ladder, "versions": versions, "diff": None, "error": None}
    from_n, to_n = _int_or_none(request.GET.get("from")), _int_or_none(request.GET.get("to"))
    if from_n is None and to_n is None and len(versions) >= 2:
        from_n, to_n = versions[1].number, versions[0].number  # newest two
    if from_n is not None and to_n is not None:
        by_number = {v.number: v for v in versions}
        if from_n in by_number and to_n in by_number:
            context["diff"] = selectors.ladder_version_diff(
                from_version=by_number[from_n], to_version=by_number[to_n]
            )
        else:
            context["error"] = "Pick two versions that exist."
    elif request.GET:
        context["error"] = "Pick two versions to compare."
    context.update(from_n=from_n, to_n=to_n)
    return render(
        request, "ladders/ladder_diff.html", context, status=400 if context["error"] else 200
    )
