"""`check --deploy`: mails carry absolute links built from SITE_URL, so production must say
where the service is reachable (https, not loopback)."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks


def site_url_deploy_check(app_configs, **kwargs):
    url = (getattr(settings, "SITE_URL", "") or "").strip()
    parts = urlsplit(url)
    if not url or parts.scheme not in ("http", "https") or not parts.hostname:
        return [
            checks.Error(
                "SITE_URL is not set to an absolute URL: links in notification mails "
                "would not open.",
                hint="Set SITE_URL to the address people use, e.g. https://ladder.example.com.",
                id="notifications.E001",
            )
        ]
    found = []
    if parts.scheme != "https":
        found.append(
            checks.Warning(
                "SITE_URL is plain http: mail links would send people to an unencrypted page.",
                id="notifications.W001",
            )
        )
    if parts.hostname in ("localhost", "127.0.0.1", "::1") or parts.hostname.startswith("127."):
        found.append(
            checks.Warning(
                f"SITE_URL points at {parts.hostname}: mail links open only on this server.",
                id="notifications.W002",
            )
        )
    return found
