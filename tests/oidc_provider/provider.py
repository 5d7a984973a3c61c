"""Start the test OpenID provider as its own process and seed it (used by the `oidc_provider`
fixture in tests/conftest.py).

The provider is a Django project on django-oauth-toolkit (settings.py here) served by
`runserver` on a free loopback port, with its own SQLite file and an RSA signing key made
for the run. Nothing of the protocol is mocked: the relying party talks to it over HTTP.
"""

from __future__ import annotations

import html
import json
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID = "ladder-tracker"
CLIENT_SECRET = "ladder-tracker-test-secret"
PROVIDER_PASSWORD = "provider-pass-123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class OpenIDProvider:
    url: str  # http://127.0.0.1:<port>
    workdir: Path
    env: dict
    process: subprocess.Popen | None = None
    redirect_uris: list[str] = field(default_factory=list)
    post_logout_redirect_uris: list[str] = field(default_factory=list)

    @property
    def issuer(self) -> str:
        return f"{self.url}/o"

    client_id = CLIENT_ID
    client_secret = CLIENT_SECRET
    password = PROVIDER_PASSWORD

    def _spec(self, users, rp_urls) -> Path:
        for base in rp_urls:
            base = base.rstrip("/")
            if f"{base}/oidc/callback/" not in self.redirect_uris:
                self.redirect_uris.append(f"{base}/oidc/callback/")
                self.post_logout_redirect_uris.append(f"{base}/login/")
        spec = {
            "users": [{"password": self.password, **u} for u in users],
            "client": {
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "redirect_uris": self.redirect_uris,
                "post_logout_redirect_uris": self.post_logout_redirect_uris,
            },
        }
        path = self.workdir / "seed.json"
        path.write_text(json.dumps(spec))
        return path

    def start(self, *, users: list[dict], rp_urls: list[str]) -> None:
        """Serve with these accounts (username, email, name, email_verified; the password is
        PROVIDER_PASSWORD), accepting relying parties at `rp_urls` (each one's callback, and
        its login page as the post-logout redirect)."""
        spec = self._spec(users, rp_urls)
        port = self.url.rsplit(":", 1)[1]
        log = (self.workdir / "provider.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "django", "op_serve", str(spec), port],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(self.discovery_url, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    "the test OpenID provider did not start:\n"
                    + (self.workdir / "provider.log").read_text()[-3000:]
                )
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def sign_in(self, authorize_url: str, username: str, *, browser=None) -> str:
        """Act as the browser at the provider: follow the authorization request to the
        provider's login form, sign in as `username`, and return the URL the provider
        redirects back to (the relying party's callback, with code and state). `browser` (a
        requests.Session) keeps the provider's cookies for the caller."""
        browser = browser if browser is not None else requests.Session()
        response = browser.get(authorize_url, allow_redirects=True, timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.text)
        assert token, f"no login form at the provider: {response.status_code} {response.url}"
        response = browser.post(
            response.url,
            data={
                "csrfmiddlewaretoken": token.group(1),
                "username": username,
                "password": self.password,
                "next": html.unescape(
                    re.search(r'name="next" value="([^"]*)"', response.text).group(1)
                ),
            },
            headers={"Referer": response.url},
            allow_redirects=False,
            timeout=10,
        )
        # login → authorize (skip_authorization) → the relying party's callback
        while response.status_code in (301, 302, 303):
            location = urljoin(response.url, response.headers["Location"])
            if not location.startswith(self.url):
                return location
            response = browser.get(location, allow_redirects=False, timeout=10)
        raise AssertionError(
            f"the provider did not redirect back: {response.status_code} {response.text[-1500:]}"
        )


def provider_start(workdir: Path, *, users: list[dict], rp_urls: list[str]) -> OpenIDProvider:
    """Start a provider with these accounts, accepting relying parties at `rp_urls`."""
    workdir.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = workdir / "signing-key.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    url = f"http://127.0.0.1:{free_port()}"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_", "OIDC_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="tests.oidc_provider.settings",
        PYTHONPATH=str(ROOT),
        OP_DB=str(workdir / "provider.sqlite3"),
        OP_KEY_FILE=str(key_file),
        OP_ISSUER=f"{url}/o",
    )
    provider = OpenIDProvider(url=url, workdir=workdir, env=env)
    provider.start(users=users, rp_urls=rp_urls)
    return provider
