"""manage.py suggestions_train [--ladder SLUG]: train the learned suggestions now.

The same as the nightly beat task (`evidence.suggestions_train`): per ladder with a
published version, a new model version from the organisation's triage (or, with fewer than
SUGGESTIONS_MIN_LABELS labelled items, none: similarity stays), then the suggestions of every
open candidate recomputed. Prints one line per ladder.
"""

from django.core.management.base import BaseCommand, CommandError

from apps.evidence.candidates import suggestions_train
from apps.ladders.models import Ladder


class Command(BaseCommand):
    help = "Train the learned suggestions (per ladder) and refresh open candidates."

    def add_arguments(self, parser):
        parser.add_argument("--ladder", help="only this ladder (slug)")

    def handle(self, *args, ladder=None, **options):
        ladder_id = None
        if ladder:
            ladder_id = Ladder.objects.filter(slug=ladder).values_list("pk", flat=True).first()
            if ladder_id is None:
                raise CommandError(f"No ladder {ladder!r}.")
        results = suggestions_train(ladder_id=ladder_id)
        if not results:
            self.stdout.write("No published ladder: nothing to train.")
        slugs = dict(Ladder.objects.values_list("pk", "slug"))
        for r in results:
            name = slugs.get(r.ladder_id, r.ladder_id)
            if r.model is None:
                self.stdout.write(
                    f"{name}: no model ({r.skipped}); similarity suggestions; "
                    f"{r.refreshed} open candidates refreshed"
                )
                continue
            m = r.model
            self.stdout.write(
                f"{name}: version {m.version} from {m.training_size} labelled items in "
                f"{m.training_seconds:.1f} s; held-out top-1 {m.accuracy_top1:.2f}, "
                f"top-3 {m.accuracy_top3:.2f} ({m.held_out} items); "
                f"{r.refreshed} open candidates refreshed"
            )
