"""manage.py evidence_links_follow [SLUG ...]: move evidence links to each ladder's current
published version by code, as publishing does (services.evidence_links_follow_version).

For links left on an older version before publishing carried them forward (a version
published by an earlier release); safe to run again: links already on the current version
are left alone."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.evidence.services import evidence_links_follow_version
from apps.ladders.models import Ladder
from apps.ladders.selectors import ladder_version_published


class Command(BaseCommand):
    help = "Move evidence links to each ladder's current published version, by code."

    def add_arguments(self, parser):
        parser.add_argument("slugs", nargs="*", help="ladders (default: every ladder)")

    def handle(self, *args, slugs, **options):
        ladders = Ladder.objects.order_by("slug")
        if slugs:
            ladders = ladders.filter(slug__in=slugs)
            unknown = sorted(set(slugs) - set(ladders.values_list("slug", flat=True)))
            if unknown:
                raise CommandError(f"no such ladder: {', '.join(unknown)}")
        for ladder in ladders:
            version = ladder_version_published(ladder_id=ladder.pk)
            if version is None:
                self.stdout.write(f"{ladder.slug}: no published version")
                continue
            with transaction.atomic():
                done = evidence_links_follow_version(version=version)
            self.stdout.write(
                f"{ladder.slug} v{version.number}: {done.carried} links carried "
                f"({done.reworded} reworded), {done.removed} removed"
            )
