"""Django's ``{# … #}`` comment is one line only: spread over several it is not a comment,
and its text reaches the page (it did, at the top of every page, from base.html)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = sorted(
    path
    for folder in ("apps", "servicenow", "ladder_tracker")
    for path in (ROOT / folder).rglob("templates/**/*.html")
)
UNCLOSED = re.compile(r"\{#(?:(?!#\}).)*$", re.MULTILINE)


def test_templates_are_found():
    assert len(TEMPLATES) > 20


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_comment_spans_lines(path):
    lines = [
        number
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if UNCLOSED.search(line)
    ]
    assert not lines, f"{path.relative_to(ROOT)}: a {{# comment is not closed on line(s) {lines}"


def test_base_page_shows_no_template_comment(client, django_user_model):
    user = django_user_model.objects.create_user("reader", password="pw-long-enough-1")
    client.force_login(user)
    body = client.get("/evidence/").content.decode()
    assert "htmx swaps 422" not in body
    assert "{#" not in body
