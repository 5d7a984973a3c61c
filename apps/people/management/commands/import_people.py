"""manage.py import_people FILE [--commit]: the CSV import from the command line.

Without --commit it is a dry run. Prints the report (every bad row with its line, field and
message) and exits non-zero when there are errors.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.people.imports import people_import


class Command(BaseCommand):
    help = "Import people from a CSV file (dry run unless --commit)."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--commit", action="store_true", help="write the changes")

    def handle(self, *args, file: Path, commit: bool, **options):
        try:
            text = file.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise CommandError(f"{file}: no such file") from None
        except UnicodeDecodeError:
            raise CommandError(f"{file}: the CSV must be UTF-8") from None
        report = people_import(text=text, dry_run=not commit)
        mode = "dry run" if report.dry_run else "import"
        if not report.ok:
            self.stdout.write(f"{mode}: {report.rows} rows, {len(report.errors)} error(s)")
            for error in report.errors:
                self.stdout.write(f"line {error.row}: {error.field or '-'}: {error.message}")
            raise CommandError(f"{len(report.errors)} error(s); nothing was written")
        if report.dry_run:
            self.stdout.write(
                f"dry run: {report.rows} rows, would create {report.created}, "
                f"would update {report.updated}; run again with --commit to import"
            )
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"import: {report.rows} rows, created {report.created}, "
                    f"updated {report.updated}"
                )
            )
