"""manage.py load_ladder FILE [--publish]: validate a ladder YAML file and load it."""

from django.core.management.base import BaseCommand, CommandError

from apps.ladders.schema import LadderFileError
from apps.ladders.services import LadderVersionImmutable, ladder_load_file


class Command(BaseCommand):
    help = "Load a ladder YAML file (docs/ladder-format.md). Identical content changes nothing."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--publish", action="store_true", help="publish the loaded version")

    def handle(self, *args, path, publish, **options):
        try:
            result = ladder_load_file(path=path, publish=publish)
        except FileNotFoundError as exc:
            raise CommandError(f"{path}: no such file") from exc
        except LadderFileError as exc:
            raise CommandError(
                f"{path}: nothing was loaded.\n  " + "\n  ".join(exc.problems)
            ) from exc
        except LadderVersionImmutable as exc:
            raise CommandError(str(exc)) from exc
        version = result.version
        state = "published" if version.is_published else "draft"
        extra = " (published now)" if result.published_now else ""
        self.stdout.write(
            self.style.SUCCESS(
                f"{version.ladder.slug} v{version.number}: {result.outcome}, {state}{extra}; "
                f"{version.expectations.count()} expectations"
            )
        )
