"""Seed the test provider from a JSON file: users and one confidential client.

    {"users": [{"username", "password", "email", "name", "email_verified"}],
     "client": {"client_id", "client_secret", "redirect_uris": [...],
                "post_logout_redirect_uris": [...]}}

Run again with the same client id to replace its redirect URIs."""

import json
from pathlib import Path

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from oauth2_provider.models import Application

from tests.oidc_provider.validator import UNVERIFIED_GROUP


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("spec", type=Path)

    def handle(self, *args, spec: Path, **options):
        seed(json.loads(spec.read_text()))


def seed(data: dict) -> None:
    unverified, _ = Group.objects.get_or_create(name=UNVERIFIED_GROUP)
    for row in data.get("users", []):
        user, _ = User.objects.get_or_create(username=row["username"])
        user.email = row["email"]
        user.first_name = row.get("name", "")
        user.set_password(row["password"])
        user.save()
        if row.get("email_verified", True):
            user.groups.remove(unverified)
        else:
            user.groups.add(unverified)
    client = data.get("client")
    if client:
        app = Application.objects.filter(client_id=client["client_id"]).first()
        if app is None:
            app = Application(
                client_id=client["client_id"],
                client_secret=client["client_secret"],
                name="ladder_tracker",
                client_type=Application.CLIENT_CONFIDENTIAL,
                authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
                algorithm=Application.RS256_ALGORITHM,
                skip_authorization=True,
            )
        app.redirect_uris = " ".join(client["redirect_uris"])
        app.post_logout_redirect_uris = " ".join(client.get("post_logout_redirect_uris", []))
        app.save()
