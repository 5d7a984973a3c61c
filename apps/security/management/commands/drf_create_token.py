"""`manage.py drf_create_token <username>`: mint an API token and print it once.

Replaces DRF's command of the same name (its clear-text tokens are gone): each call makes
a new hashed, expiring token; revoke old ones on the "API tokens" page."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from apps.security.services import token_create
from ladder_tracker.errors import ApplicationError


class Command(BaseCommand):
    help = "Create an API token for a user and print it (shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="command line", help="what the token is for")
        parser.add_argument("--days", type=int, default=None, help="days until it expires")
        # accepted for compatibility with DRF's command; every call makes a new token anyway
        parser.add_argument(
            "-r", "--reset", action="store_true", help="ignored: every call makes a new token"
        )

    def handle(self, *args, username, name, days, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        try:
            token, plain = token_create(actor=user, name=name, expires_in_days=days)
        except ApplicationError as exc:
            raise CommandError(f"{exc.message} {exc.detail}") from None
        self.stdout.write(f"Generated token {plain} for user {username}")
        self.stdout.write(
            f"Expires {token.expires_at:%Y-%m-%d}. It is not shown again; store it now."
        )
