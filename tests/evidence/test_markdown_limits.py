"""Markdown that cannot be used against us (apps/evidence/markdown.py).

- every case of the pathological corpus (tests/evidence/markdown_corpus.py) at the field
  limit renders without raising, stays sanitised, and comes out nested no deeper than the
  prefix guard allows (how long each takes is benchmarks/markdown.py's job, not a test's);
- what people write still renders: emphasis, lists, tables, strikethrough, autolinks, links
  with rel="noopener noreferrer nofollow";
- every Markdown field has a length limit, stated in the form and the API schema and
  refused by the services, the API (400 naming the field), the pages (a form error) and
  the model's validation.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.core.exceptions import ValidationError

from apps.evidence import services
from apps.evidence.markdown import (
    MARKDOWN_MAX_LENGTH,
    MARKDOWN_MAX_PREFIX,
    MARKDOWN_TABLE_CELL_BUDGET,
    markdown_render,
)
from apps.evidence.models import Evidence
from apps.packets import services as packet_services
from tests.evidence.markdown_corpus import pathological_corpus
from tests.evidence.test_xss import assert_safe_html
from tests.factories import EvidenceFactory, api_client

CORPUS = pathological_corpus(MARKDOWN_MAX_LENGTH)
TOO_LONG = "x" * (MARKDOWN_MAX_LENGTH + 1)


class _Depth(HTMLParser):
    VOID = {"br", "hr", "img", "input"}

    def __init__(self):
        super().__init__()
        self.level = self.deepest = 0

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.level += 1
            self.deepest = max(self.deepest, self.level)

    def handle_endtag(self, tag):
        if tag not in self.VOID:
            self.level -= 1


def depth(html: str) -> int:
    parser = _Depth()
    parser.feed(html)
    return parser.deepest


def test_the_corpus_is_at_the_limit_and_covers_the_shapes():
    assert len(CORPUS) >= 30
    for name, text in CORPUS.items():
        assert MARKDOWN_MAX_LENGTH * 0.95 <= len(text) <= MARKDOWN_MAX_LENGTH, name
    # 10k-deep lists and quotes, as a renderer would nest them without the guard
    assert CORPUS["list-deep-one-line"].count("- ") == MARKDOWN_MAX_LENGTH // 2 - 1
    assert CORPUS["blockquotes-deep"].count(">") == MARKDOWN_MAX_LENGTH


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_pathological_markdown_renders_safe_and_shallow(name):
    html = markdown_render(CORPUS[name])

    assert_safe_html(html)
    # a block per prefix character at most (a list is two elements: ul and li)
    assert depth(html) <= 2 * MARKDOWN_MAX_PREFIX + 8, name


def test_deep_quotes_keep_their_text():
    html = markdown_render(">" * 100 + " deep")

    assert depth(html) == MARKDOWN_MAX_PREFIX + 1  # 40 quotes and the paragraph
    assert ">" * 60 + " deep" in html.replace("&gt;", ">")  # the rest shows as text


def test_a_wide_table_flood_renders_as_text():
    columns = MARKDOWN_TABLE_CELL_BUDGET // 10
    text = "|" + "a|" * columns + "\n|" + "-|" * columns + "\n" + "|\n" * 20

    assert "<table>" not in markdown_render(text)
    assert "<table>" in markdown_render("|a|b|\n|-|-|\n|1|2|")


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("**bold** and *em*", "<p><strong>bold</strong> and <em>em</em></p>"),
        (
            "- one\n  - two\n    - three",
            "<ul>\n<li>one\n<ul>\n<li>two\n<ul>\n<li>three</li>\n</ul>\n</li>\n</ul>\n</li>\n</ul>",
        ),
        ("1. first\n2. second", "<ol>\n<li>first</li>\n<li>second</li>\n</ol>"),
        (
            "| a | b |\n|---|:-:|\n| 1 | 2 |",
            '<table>\n<thead>\n<tr>\n<th>a</th>\n<th align="center">b</th>\n</tr>\n</thead>\n'
            '<tbody>\n<tr>\n<td>1</td>\n<td align="center">2</td>\n</tr>\n</tbody>\n</table>',
        ),
        ("~~gone~~", "<p><del>gone</del></p>"),
        (
            "[docs](https://example.com/d)",
            '<p><a href="https://example.com/d" rel="noopener noreferrer nofollow">docs</a></p>',
        ),
        (
            "see https://example.com/x",
            '<p>see <a href="https://example.com/x" rel="noopener noreferrer nofollow">'
            "https://example.com/x</a></p>",
        ),
        ("```\n<b>code</b>\n```", "<pre><code>&lt;b&gt;code&lt;/b&gt;\n</code></pre>"),
        ("> quoted", "<blockquote>\n<p>quoted</p>\n</blockquote>"),
        ("<b>raw</b> html", "<p>raw html</p>"),
        ("", ""),
    ],
    ids=[
        "emphasis",
        "nested-list",
        "ordered",
        "table",
        "strike",
        "link",
        "autolink",
        "code",
        "quote",
        "raw-html",
        "empty",
    ],
)
def test_what_people_write_still_renders(text, html):
    assert markdown_render(text) == html


# --- the limits ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_api_refuses_a_description_over_the_limit_naming_it(engineer_api):
    at_limit = engineer_api.post(
        "/api/v1/evidence/",
        {"title": "t", "description": "x" * MARKDOWN_MAX_LENGTH},
        format="json",
    )
    assert at_limit.status_code == 201

    for response in (
        engineer_api.post(
            "/api/v1/evidence/", {"title": "t", "description": TOO_LONG}, format="json"
        ),
        engineer_api.patch(
            f"/api/v1/evidence/{at_limit.json()['id']}/", {"description": TOO_LONG}, format="json"
        ),
    ):
        assert response.status_code == 400
        assert response.json()["error"]["detail"]["description"] == [
            f"At most {MARKDOWN_MAX_LENGTH:,} characters of Markdown."
        ]


@pytest.mark.django_db
def test_services_and_the_model_refuse_a_long_description(engineer):
    with pytest.raises(ValidationError) as created:
        services.evidence_create(
            person=engineer, actor=engineer.user, title="t", description=TOO_LONG
        )
    assert created.value.message_dict == {
        "description": [f"At most 20,000 characters of Markdown (this has {len(TOO_LONG):,})."]
    }
    evidence = EvidenceFactory(person=engineer)
    with pytest.raises(ValidationError):
        services.evidence_update(evidence=evidence, actor=engineer.user, description=TOO_LONG)
    evidence.description = TOO_LONG
    with pytest.raises(ValidationError) as cleaned:
        evidence.full_clean()
    assert "description" in cleaned.value.message_dict
    assert not Evidence.objects.filter(description=TOO_LONG).exists()


@pytest.mark.django_db
def test_the_evidence_form_states_and_enforces_the_limit(engineer_client):
    page = engineer_client.get("/evidence/new/").content.decode()
    assert f'maxlength="{MARKDOWN_MAX_LENGTH}"' in page
    assert "At most 20,000 characters." in page

    response = engineer_client.post(
        "/evidence/new/", {"title": "t", "visibility": "manager", "description": TOO_LONG}
    )

    assert response.status_code == 400
    assert "At most 20,000 characters of Markdown." in response.content.decode()
    assert not Evidence.objects.filter(title="t").exists()


@pytest.mark.django_db
def test_narratives_have_the_limit_on_the_api_the_service_and_the_builder(client, org, cycle):
    erin = org.engineer
    packet = packet_services.packet_create(person=erin, actor=erin.user, cycle=cycle)
    name = "Technical Expertise"

    response = api_client(erin).patch(
        f"/api/v1/packets/{packet.pk}/", {"narratives": {name: TOO_LONG}}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["detail"]["narratives"] == {
        name: [f"At most {MARKDOWN_MAX_LENGTH:,} characters of Markdown."]
    }

    with pytest.raises(packet_services.PacketInvalid) as refused:
        packet_services.packet_update(packet=packet, actor=erin.user, narratives={name: TOO_LONG})
    assert refused.value.detail == {
        "narratives": [f"{name}: At most 20,000 characters of Markdown (this has 20,001)."]
    }

    client.force_login(erin.user)
    builder = client.get(f"/packets/{packet.pk}/").content.decode()
    assert (
        f'maxlength="{MARKDOWN_MAX_LENGTH}"' in builder and "at most 20,000 characters" in builder
    )
    saved = client.post(
        f"/packets/{packet.pk}/save/",
        {"builder": "1", f"narrative:{name}": TOO_LONG},
        HTTP_HX_REQUEST="true",
    )
    assert saved.status_code == 422
    assert "At most 20,000 characters of Markdown" in saved.content.decode()
    packet.refresh_from_db()
    assert packet.narratives == {}


def test_long_dash_and_plus_lines_are_not_markers_and_stay_as_written():
    art = "+-----" * 10 + "+\n" + "----+" * 12
    assert markdown_render(f"```\n{art}\n```") == f"<pre><code>{art}\n</code></pre>"
    # a deep ordered list: the number that crosses the limit shows as written, as text
    html = markdown_render("1. " * 30 + "x")
    assert depth(html) <= 2 * MARKDOWN_MAX_PREFIX and "1. 1. 1. x" in html
