"""Helpers for pages that render many rows."""

from __future__ import annotations

from django.urls import reverse

_PK = 2_147_483_647


def pk_url(name: str) -> tuple[str, str]:
    """A URL pattern that takes one pk, reversed once: (before the pk, after it), so that a
    page of a few hundred rows writes `str(pk).join(parts)` instead of a {% url %} (a
    reverse) per row (benchmarks/evidence.py: the inbox and the team overview)."""
    before, _, after = reverse(name, args=[_PK]).partition(str(_PK))
    return before, after
