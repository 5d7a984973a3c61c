"""`manage.py security_events_prune [--days N]`: delete audit lines older than N days
(default SECURITY_EVENTS_KEEP_DAYS). Run it from cron or a beat schedule."""

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.security.services import security_events_prune


class Command(BaseCommand):
    help = "Delete security audit events older than the retention period."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None)

    def handle(self, *args, days, **options):
        days = settings.SECURITY_EVENTS_KEEP_DAYS if days is None else days
        deleted = security_events_prune(older_than_days=days)
        self.stdout.write(f"Deleted {deleted} security events older than {days} days.")
