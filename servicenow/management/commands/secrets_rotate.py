"""manage.py secrets_rotate [--dry-run]

Re-encrypts every stored secret (ServiceNow passwords and client secrets) with the current
key, the first of SECRETS_KEYS. To rotate: put the new key first in SECRETS_KEYS and keep
the old ones after it, restart, run this, then drop the old keys. Values no key can read are
listed and left as they are (the command then exits non-zero); enter those secrets again.
"""

from django.core.management.base import BaseCommand, CommandError

from servicenow.services import secrets_rotate


class Command(BaseCommand):
    help = "Re-encrypt every stored secret with the current key (the first of SECRETS_KEYS)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would change, write nothing"
        )

    def handle(self, *args, dry_run, **options):
        outcome = secrets_rotate(dry_run=dry_run)
        verb = "would re-encrypt" if dry_run else "re-encrypted"
        self.stdout.write(
            f"{verb} {outcome.reencrypted} secret(s); {outcome.current} already current; "
            f"{len(outcome.unreadable)} unreadable."
        )
        if outcome.unreadable:
            for where in outcome.unreadable:
                self.stderr.write(f"unreadable with every configured key: {where}")
            raise CommandError(
                f"{len(outcome.unreadable)} secret(s) could not be decrypted; enter them again."
            )
