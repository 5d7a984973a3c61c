"""Security headers: every page of the app, walked from the URL conf as an engineer, a
manager and an admin (plus the Django admin, the API docs and the anonymous pages), carries
the Content-Security-Policy, Referrer-Policy and Permissions-Policy; and no template holds
what that policy would block (inline <script>, on* handlers, hx-on, style attributes)."""

import re
from pathlib import Path

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from servicenow.models import Connection, Source, SyncRun
from tests.factories import PASSWORD, EvidenceFactory, PacketFactory

ROOT = Path(__file__).resolve().parent.parent
EXPECTED_CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def csp_directives(header: str) -> dict[str, str]:
    parts = (p.strip().split(None, 1) for p in header.split(";") if p.strip())
    return {p[0]: (p[1] if len(p) > 1 else "") for p in parts}


def assert_secured(response, where: str) -> None:
    assert "Content-Security-Policy" in response, f"{where}: no CSP"
    assert csp_directives(response["Content-Security-Policy"]) == EXPECTED_CSP, where
    assert response["Referrer-Policy"] == "same-origin", where
    permissions = response["Permissions-Policy"]
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()"):
        assert feature in permissions, (where, permissions)
    assert response["X-Content-Type-Options"] == "nosniff", where


def app_routes() -> list[tuple[str, str, list[str]]]:
    """(route, url name, parameters) of every page outside /admin/ and /api/."""
    found = []

    def walk(patterns, prefix="", namespace=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                if str(p.pattern).startswith(("admin/", "api/")):
                    continue
                ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
                walk(p.url_patterns, prefix + str(p.pattern), ns)
            elif isinstance(p, URLPattern) and p.name:
                found.append(
                    (prefix + str(p.pattern), namespace + p.name, list(p.pattern.converters))
                )

    walk(get_resolver().url_patterns)
    return found


@pytest.fixture
def world(org, cycle, ladder_version):
    eng = org.engineer
    evidence = [EvidenceFactory(person=eng, title=f"Work {i}") for i in range(3)]
    packet = PacketFactory(
        person=eng,
        cycle=cycle,
        ladder_version=ladder_version,
        state="submitted",
        evidence=evidence,
    )
    connection = Connection.objects.create(name="Acme", instance_url="https://acme.example.com")
    source = Source.objects.create(connection=connection, name="incident", table="incident")
    run = SyncRun.objects.create(source=source, status="succeeded")
    return {
        "slug": org.engineer.ladder.slug,
        "evidence": evidence[0].pk,
        "packet": packet.pk,
        "cycle": cycle.pk,
        "run": run.pk,
        "connection": connection.pk,
        "source": source.pk,
        "org": org,
    }


def kwargs_for(name: str, params: list[str], world: dict) -> dict:
    app = name.split(":")[0]
    values = {}
    for param in params:
        if param == "slug":
            values[param] = world["slug"]
        elif param in ("attachment_id", "token_id") or name == "corroborations:detail":
            values[param] = 999_999  # none: a 404 page, which is secured too
        elif name.startswith("packets:cycle-"):
            values[param] = world["cycle"]
        elif app in ("evidence", "packets"):
            values[param] = world["evidence" if app == "evidence" else "packet"]
        elif name == "team-person":
            values[param] = world["org"]["engineer"].pk
        elif name in ("servicenow:run", "servicenow:run-progress"):
            values[param] = world["run"]
        elif name in (
            "servicenow:connection-test",
            "servicenow:connection-edit",
            "servicenow:connection-try",
        ):
            values[param] = world["connection"]
        elif name in ("servicenow:source-sync", "servicenow:source-edit", "servicenow:source-runs"):
            values[param] = world["source"]
        else:
            raise AssertionError(f"no value for {param} of {name}: add one to kwargs_for")
    return values


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["engineer", "manager", "admin"])
def test_every_page_carries_the_security_headers(world, role):
    client = Client()
    assert client.login(username=world["org"][role].user.username, password=PASSWORD)
    html_ok = []

    for _route, name, params in app_routes():
        if name == "logout":
            continue  # a GET is refused (405) and would not sign out; checked anonymously
        url = reverse(name, kwargs=kwargs_for(name, params, world))
        response = client.get(url)
        assert response.status_code < 500, (url, response.status_code)
        assert_secured(response, f"{role} GET {url} ({response.status_code})")
        if response.status_code == 200 and response["Content-Type"].startswith("text/html"):
            html_ok.append(name)

    # the walk reached real pages, not only refusals
    expected = {
        "engineer": {"ladders:list", "ladders:detail", "evidence:list",
                     "evidence:detail", "evidence:inbox", "packets:list", "packets:detail"},
        "manager": {"team", "packets:reviews", "packets:review", "evidence:detail"},
        "admin": {"servicenow:sync", "servicenow:run", "people:import",
                  "packets:cycles", "packets:cycle-edit", "packets:cycle-report",
                  "packets:cycle-analytics"},
    }[role]  # fmt: skip
    assert expected <= set(html_ok), expected - set(html_ok)


@pytest.mark.django_db
def test_admin_docs_anonymous_and_error_pages_carry_them(world, admin_user):
    anonymous = Client()
    for url in ("/login/", "/", "/no-such-page/", "/healthz", "/logout/"):
        assert_secured(anonymous.get(url), f"anonymous GET {url}")
    admin = Client()
    admin.force_login(admin_user)
    for url in (
        "/admin/",
        "/admin/servicenow/connection/",
        f"/admin/servicenow/connection/{world['connection']}/change/",
        "/admin/servicenow/source/add/",
        "/api/docs/",
        "/api/docs/?script=",
        "/api/schema/",
        "/api/v1/people/me/",
        "/api/v1/no-such-thing/",
    ):
        response = admin.get(url)
        assert response.status_code in (200, 404), (url, response.status_code)
        assert_secured(response, f"admin GET {url}")


@pytest.mark.django_db
def test_api_docs_use_no_cdn_and_no_inline_script(admin_user):
    client = Client()
    client.force_login(admin_user)

    page = client.get("/api/docs/").content.decode()
    script = client.get("/api/docs/?script=")

    sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith("/") for s in sources), sources
    assert any("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in s for s in sources)
    assert "cdn" not in page.lower()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), "inline script"
    assert "<style" not in page
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()


TEMPLATE_DIRS = [ROOT / "apps", ROOT / "servicenow" / "templates", ROOT / "ladder_tracker"]
BLOCKED = {
    "inline <script>": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),
    "on* handler": re.compile(r"\son[a-z]+\s*=", re.I),
    "hx-on attribute": re.compile(r"\shx-on[:-]", re.I),
    "style attribute": re.compile(r"\sstyle\s*=", re.I),
    "<style> block": re.compile(r"<style[\s>]", re.I),
    "js: / javascript: value": re.compile(r"(hx-vals|hx-vars)\s*=\s*['\"]\s*js:|javascript:", re.I),
    "trigger filter (needs eval)": re.compile(r"hx-trigger\s*=\s*\"[^\"]*\[", re.I),
}


# WeasyPrint's input for the PDF export, never sent to a browser
NOT_PAGES = {"apps/packets/templates/packets/export.html"}


def test_no_template_holds_what_the_csp_blocks():
    templates = [
        p
        for d in TEMPLATE_DIRS
        for p in d.rglob("*.html")
        if str(p.relative_to(ROOT)) not in NOT_PAGES
        # mails are read in mail clients, not served under the CSP: their styles are inline
        and "/email/" not in str(p)
    ]
    assert len(templates) > 20
    problems = [
        f"{path.relative_to(ROOT)}: {what}"
        for path in templates
        for what, pattern in BLOCKED.items()
        if pattern.search(path.read_text(encoding="utf-8"))
    ]

    assert problems == []
