"""`manage.py backup FILE`: the database and MEDIA_ROOT in one tar.gz (apps/backup/services.py)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.backup.services import BackupRefused, backup_create


class Command(BaseCommand):
    help = "Back up the database and the uploaded files (MEDIA_ROOT) into one tar.gz archive."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="the archive to write, e.g. backup.tar.gz")

    def handle(self, *args, file: Path, **options):
        try:
            result = backup_create(path=file)
        except BackupRefused as exc:
            raise CommandError(str(exc), returncode=exc.exit_code) from None
        manifest = result.manifest
        counts = ", ".join(f"{k} {v}" for k, v in manifest["counts"].items())
        self.stdout.write(
            self.style.SUCCESS(
                f"backup of the {manifest['engine']} database and "
                f"{manifest['counts']['media_files']} file(s) written to {result.path}"
            )
        )
        self.stdout.write(f"counts: {counts}")
