"""Recompute every stored hash: packet snapshots, the item hashes inside them, and every
imported evidence item's snapshot_sha256 (apps/packets/integrity.py).

Prints each mismatch (which packet snapshot or evidence item, stored and computed hash) and
a summary line; exits 1 when there is any mismatch, 0 otherwise. Reads only. A restore
check calls it (CI): keep its name and exit codes.
"""

from django.core.management.base import BaseCommand, CommandError

from apps.packets.integrity import stored_hashes_check


class Command(BaseCommand):
    help = "Recompute packet snapshot and evidence snapshot hashes; exit 1 on any mismatch."

    def handle(self, *args, **options):
        report = stored_hashes_check()
        for line in report.mismatches:
            self.stderr.write(f"MISMATCH {line}")
        if not report.ok:
            raise CommandError(report.summary(), returncode=1)
        self.stdout.write(self.style.SUCCESS(report.summary()))
