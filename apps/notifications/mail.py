"""Building and sending one notification mail: text and HTML from templates, links made
absolute with SITE_URL (a mail client has no page to resolve `/packets/5/` against)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from apps.people.models import Person

logger = logging.getLogger(__name__)


def site_url(path: str = "/") -> str:
    """`path` on the site as people reach it (settings.SITE_URL)."""
    return settings.SITE_URL.rstrip("/") + "/" + path.lstrip("/")


def mail_send(*, person: Person, subject: str, template: str, context: dict) -> bool:
    """Mail `person` the `notifications/email/<template>.txt` and `.html` pair. False when
    they have no email address. Raises what the mail backend raises."""
    if not person.email:
        return False
    context = {
        **context,
        "person": person,
        "site_url": site_url(),
        "preferences_url": site_url(reverse("notifications:preferences")),
    }
    text = render_to_string(f"notifications/email/{template}.txt", context)
    html = render_to_string(f"notifications/email/{template}.html", context)
    message = EmailMultiAlternatives(
        subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[person.email]
    )
    message.attach_alternative(html, "text/html")
    message.send()
    return True
