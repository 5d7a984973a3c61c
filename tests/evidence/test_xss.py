"""XSS corpus through every text field the API takes.

- `description_html` (Markdown rendered and sanitised on write) never carries a script,
  an event handler, an iframe/style/object, or a javascript:/vbscript:/data: URL;
- the JSON API returns what was written, unchanged (JSON is not HTML: escaping is the job of
  whatever renders it);
- HTML pages that render those fields escape them: the browsable API, the ladder pages (the
  viewer's name sits in the header) and the evidence pages (a link rationale included).
"""

import csv
import html
import io
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import NoReverseMatch, get_resolver, reverse

from apps.evidence import services
from apps.evidence.markdown import ALLOWED_ATTRIBUTES, ALLOWED_TAGS
from apps.evidence.models import Evidence
from apps.people.models import Person
from tests.factories import PersonFactory

pytestmark = pytest.mark.django_db

PAYLOADS = [
    # script, in every disguise
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<<script>script>alert(1)<</script>/script>",
    '"><script>alert(1)</script>',
    "<svg><script>alert(1)</script></svg>",
    # event handlers, odd casing included
    "<img src=x onerror=alert(1)>",
    "<IMG SRC=x OnErRoR=alert(1)>",
    "'><img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    "<body onload=alert(1)>",
    '<div onmouseover="alert(1)">hover</div>',
    "<input autofocus onfocus=alert(1)>",
    "<details open ontoggle=alert(1)>",
    '<video><source onerror="alert(1)"></video>',
    "<marquee onstart=alert(1)>m</marquee>",
    '<a href="https://ok.example" onclick="alert(1)">ok</a>',
    '<a href="https://ok.example" title="x" ONCLICK=alert(1)>ok</a>',
    '<table><tr><td background="javascript:alert(1)" onmouseover=alert(1)>c</td></tr></table>',
    # javascript: / data: / vbscript: URLs in raw HTML, with entity and whitespace tricks
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    '<a href="java\nscript:alert(1)">nl</a>',
    '<a href=" javascript:alert(1)">x</a>',
    '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<form action="javascript:alert(1)"><button>go</button></form>',
    '<embed src="javascript:alert(1)">',
    '<object data="data:text/html,<script>alert(1)</script>"></object>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    '<link rel=stylesheet href="javascript:alert(1)">',
    # ... and in Markdown: inline, reference-style, images, entity-encoded colon
    "[x](javascript:alert(1))",
    "[x](JAVASCRIPT:alert(1))",
    "[x](javascript&#58;alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[x][evil]\n\n[evil]: javascript:alert(1)",
    "![img](javascript:alert(1))",
    '![img](x "onerror=alert(1)")',
    # frames, styles, parser confusion
    '<iframe src="https://evil.example"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    "<style>body{background:url(javascript:alert(1))}</style>",
    '<p style="background:url(javascript:alert(1))">styled</p>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<!--<img src=x onerror=alert(1)>-->",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "`<img src=x onerror=alert(1)>`",
]
IDS = [f"p{i:02d}" for i in range(len(PAYLOADS))]

# URLs the `url` field is asked to store: dangerous schemes are refused outright; the http(s)
# ones are stored as given and must be escaped wherever they are rendered.
BAD_URLS = [
    "javascript:alert(1)",
    "JAVASCRIPT:alert(1)",
    " javascript:alert(1)",
    "jav\tascript:alert(1)",
    "javascript://example.com/%0Aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
]
ODD_BUT_HTTP_URLS = [
    'https://example.com/"><script>alert(1)</script>',
    "https://example.com/'onmouseover='alert(1)",
    "https://example.com/?q=<img/src=x/onerror=alert(1)>",
]

SAFE_SCHEMES = {"http", "https", "mailto"}


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    handle_startendtag = handle_starttag


def assert_safe_html(rendered: str) -> None:
    lowered = rendered.lower()
    for marker in ("<script", "<iframe", "<style", "<object", "<embed", "<svg", "<img",
                   "javascript:", "vbscript:", "data:"):  # fmt: skip
        assert marker not in lowered, (marker, rendered)
    # an event handler inside a tag (text such as `onerror=` in a code span is escaped text)
    assert not re.search(r"<[^>]*\son\w+\s*=", rendered, re.IGNORECASE), rendered
    parser = _Collector()
    parser.feed(rendered)
    for tag, attrs in parser.tags:
        assert tag in ALLOWED_TAGS, (tag, rendered)
        for name, value in attrs:
            assert name in ALLOWED_ATTRIBUTES.get(tag, set()) | {"rel"}, (tag, name, rendered)
            if name == "href":
                cleaned = re.sub(r"[\x00-\x20]", "", value or "").lower()
                scheme = urlsplit(cleaned).scheme
                assert scheme in SAFE_SCHEMES | {""}, (value, rendered)


@pytest.fixture
def owner(ladder):
    return PersonFactory(user__username="owen", name="Owen", ladder=ladder, level=2)


@pytest.fixture
def owner_api(api, owner):
    api.force_authenticate(owner.user)
    return api


def test_the_corpus_is_big_enough():
    assert len(PAYLOADS) >= 25
    assert len(set(PAYLOADS)) == len(PAYLOADS)


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_evidence_text_fields_store_raw_and_render_safe(owner_api, payload):
    response = owner_api.post(
        "/api/v1/evidence/",
        {
            "title": payload,
            "description": payload,
            "links": [{"expectation": "TE-2.1", "rationale": payload}],
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["title"] == payload.strip()
    assert body["description"] == payload
    assert body["links"][0]["rationale"] == payload.strip()
    assert_safe_html(body["description_html"])
    assert_safe_html(Evidence.objects.get(pk=body["id"]).description_html)
    # the same through PATCH (re-rendered on write)
    patched = owner_api.patch(
        f"/api/v1/evidence/{body['id']}/", {"description": "plain\n\n" + payload}, format="json"
    )
    assert patched.status_code == 200
    assert patched.json()["description"] == "plain\n\n" + payload
    assert_safe_html(patched.json()["description_html"])


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_url_field_takes_only_web_urls(owner_api, payload):
    response = owner_api.post("/api/v1/evidence/", {"title": "t", "url": payload}, format="json")

    if response.status_code == 201:  # whatever the validator lets in is a web URL
        assert response.json()["url"] == payload
        assert urlsplit(payload).scheme in {"http", "https", "ftp", "ftps"}
    else:
        assert response.status_code == 400
        assert "url" in response.json()["error"]["detail"]


@pytest.mark.parametrize("url", BAD_URLS)
def test_dangerous_url_schemes_are_refused(owner_api, url):
    created = owner_api.post("/api/v1/evidence/", {"title": "t", "url": url}, format="json")
    item = owner_api.post("/api/v1/evidence/", {"title": "t"}, format="json").json()
    patched = owner_api.patch(f"/api/v1/evidence/{item['id']}/", {"url": url}, format="json")

    assert created.status_code == 400
    assert "url" in created.json()["error"]["detail"]
    assert patched.status_code == 400
    assert Evidence.objects.get(pk=item["id"]).url == ""


@pytest.mark.parametrize("url", ODD_BUT_HTTP_URLS)
def test_odd_http_urls_come_back_raw_in_json(owner_api, url):
    response = owner_api.post("/api/v1/evidence/", {"title": "t", "url": url}, format="json")

    if response.status_code == 201:
        assert response.json()["url"] == url
        assert owner_api.get(f"/api/v1/evidence/{response.json()['id']}/").json()["url"] == url
    else:
        assert response.status_code == 400


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_skill_names_are_checked_not_echoed_as_html(owner_api, payload):
    response = owner_api.post(
        "/api/v1/evidence/", {"title": "t", "skills": [payload]}, format="json"
    )

    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_person_name_and_title_via_admin_patch_come_back_raw(admin_api, owner, payload):
    name = payload[:200]
    response = admin_api.patch(
        f"/api/v1/people/{owner.pk}/", {"name": name, "title": name}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert response.json()["name"] == name
    assert response.json()["title"] == name
    fetched = admin_api.get(f"/api/v1/people/{owner.pk}/").json()
    assert (fetched["name"], fetched["title"]) == (name, name)


def test_csv_import_names_come_back_raw(admin_api, ladder):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["username", "email", "name", "title"])
    for i, payload in enumerate(PAYLOADS):
        writer.writerow([f"x{i}", f"x{i}@example.com", payload[:200], payload[:200]])
    upload = SimpleUploadedFile("people.csv", out.getvalue().encode(), content_type="text/csv")

    response = admin_api.post(
        "/api/v1/people/import/", {"file": upload, "dry_run": "false"}, format="multipart"
    )

    assert response.status_code == 200, response.json()
    assert response.json()["created"] == len(PAYLOADS)
    for i, payload in enumerate(PAYLOADS):
        person = Person.objects.get(user__username=f"x{i}")
        # the importer trims cells; everything else is kept as written
        assert person.name == payload[:200].strip()
        got = admin_api.get(f"/api/v1/people/{person.pk}/").json()
        assert got["name"] == payload[:200].strip()
        assert got["title"] == payload[:200].strip()


# --- HTML pages escape what they render ------------------------------------------------

DANGEROUS_TAGS = ("script", "iframe", "frame", "style", "img", "svg", "math", "object",
                  "embed", "base", "link", "meta", "form", "input", "video", "audio")  # fmt: skip
URL_ATTRIBUTES = ("href", "src", "action", "formaction", "data", "xlink:href", "background")


def _markers(content: str) -> dict[str, int]:
    """What a browser would act on: tags, event-handler attributes, script URLs (attribute
    *values* that merely contain such text, escaped, do not count)."""
    parser = _Collector()
    parser.feed(content)
    counts = dict.fromkeys(DANGEROUS_TAGS, 0) | {"on* attribute": 0, "script URL": 0}
    for tag, attrs in parser.tags:
        if tag in counts:
            counts[tag] += 1
        for name, value in attrs:
            if name.startswith("on"):
                counts["on* attribute"] += 1
            if name in URL_ATTRIBUTES:
                cleaned = re.sub(r"[\x00-\x20]", "", value or "").lower()
                if cleaned.startswith(("javascript:", "vbscript:", "data:")):
                    counts["script URL"] += 1
    return counts


# The evidence routes, sorted by what a GET on them must answer. A route added to or dropped
# from apps/evidence/urls.py fails the walk until it is placed here.
EVIDENCE_RENDERED = {"evidence:list", "evidence:create", "evidence:detail", "evidence:edit",
                     "evidence:inbox", "evidence:trash", "evidence:corroborators"}  # fmt: skip
EVIDENCE_DOWNLOADS = {"evidence:brag"}
EVIDENCE_POST_ONLY = {"evidence:inbox-bulk", "evidence:delete", "evidence:restore",
                      "evidence:accept", "evidence:dismiss", "evidence:verify",
                      "evidence:link-confirm", "evidence:corroborate"}  # fmt: skip
# routes that need more than the evidence id (an attachment id): none exists in this walk
EVIDENCE_UNWALKED = {"evidence:attachment", "evidence:attachment-remove"}


def _evidence_page_urls(evidence_id: int) -> dict[str, str]:
    """Every evidence page the app routes that takes no argument or just the evidence id."""
    _prefix, sub = get_resolver().namespace_dict["evidence"]
    names = {f"evidence:{k}" for k in sub.reverse_dict if isinstance(k, str)}
    assert names == EVIDENCE_RENDERED | EVIDENCE_DOWNLOADS | EVIDENCE_POST_ONLY | EVIDENCE_UNWALKED
    urls = {}
    for name in sorted(names - EVIDENCE_UNWALKED):
        for args in ([], [evidence_id]):
            try:
                urls[name] = reverse(name, args=args)
                break
            except NoReverseMatch:
                continue
        else:
            pytest.fail(f"{name} does not reverse with no argument or the evidence id")
    return urls


def _pages(client, ladder, person, *, title, description, url, rationale) -> dict[str, str]:
    item = services.evidence_create(
        person=person,
        actor=person.user,
        title=title,
        description=description,
        url=url,
        links=[services.LinkSpec(expectation="TE-2.1", rationale=rationale)],
    )
    client.force_login(person.user)
    urls = {
        "ladders:list": "/ladders/",
        "ladders:detail": f"/ladders/{ladder.slug}/",
        **_evidence_page_urls(item.pk),
    }
    out = {}
    for label, path in urls.items():
        response = client.get(path)
        if label in EVIDENCE_POST_ONLY:
            assert response.status_code == 405, path  # a form-only route: nothing rendered
            continue
        assert response.status_code == 200, path
        if label in EVIDENCE_DOWNLOADS:
            # a download (the brag document): never rendered by the browser
            assert not response["Content-Type"].startswith("text/html"), path
            assert response["Content-Disposition"].startswith("attachment"), path
            assert response["X-Content-Type-Options"] == "nosniff", path
            continue
        assert response["Content-Type"].startswith("text/html"), path
        out[label] = response.content.decode()
    assert {"ladders:list", "ladders:detail"} | EVIDENCE_RENDERED == set(out)
    # the browsable API is an HTML page too
    for label, path in (("api:evidence", f"/api/v1/evidence/{item.pk}/"),
                        ("api:person", f"/api/v1/people/{person.pk}/")):  # fmt: skip
        response = client.get(path, HTTP_ACCEPT="text/html")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/html")
        out[label] = response.content.decode()
    client.logout()
    return out


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_html_pages_escape_the_fields(client, ladder, payload):
    plain = PersonFactory(user__username="plain", name="Plain Person", ladder=ladder, level=2)
    nasty = PersonFactory(user__username="nasty", name=payload[:200], title=payload[:200],
                          ladder=ladder, level=2)  # fmt: skip

    baseline = _pages(client, ladder, plain, title="Plain title", description="Plain text",
                      url="https://example.com/", rationale="Plain rationale")  # fmt: skip
    pages = _pages(client, ladder, nasty, title=payload, description=payload,
                   url='https://example.com/"><script>alert(1)</script>',
                   rationale=payload)  # fmt: skip

    assert set(pages) == set(baseline)
    for label, page in pages.items():
        if "<" in payload or '"' in payload:
            assert payload not in page, f"{label}: an unescaped payload"
        assert '"><script>alert(1)</script>' not in page, f"{label}: the url is unescaped"
        assert _markers(page) == _markers(baseline[label]), label
    # the link rationale is on the detail page, escaped (stored stripped, like the title)
    rationale = payload.strip()
    assert (
        html.escape(rationale) in pages["evidence:detail"]
        or html.escape(rationale, quote=False) in pages["evidence:detail"]
    ), "evidence:detail: the rationale is missing or not escaped"
    # the viewer's name is in the header, escaped
    name = payload[:200].strip()
    for label in ("ladders:list", "ladders:detail"):
        assert (
            html.escape(name) in pages[label] or html.escape(name, quote=False) in (pages[label])
        ), label


@pytest.mark.parametrize(
    "raw",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        '<a href="jav&#x09;ascript:alert(1)">x</a>',
        '<div onmouseover="alert(1)">x</div>',
        "<iframe src=https://evil.example></iframe>",
    ],
)
def test_the_checkers_catch_an_unescaped_payload(raw):
    """The checks above are only worth something if they fail on the real thing."""
    assert _markers(f"<p>{raw}</p>") != _markers("<p></p>")
    assert _markers(f'<input value="{html.escape(raw)}">') == _markers('<input value="">')
    with pytest.raises(AssertionError):
        assert_safe_html(f"<p>{raw}</p>")
