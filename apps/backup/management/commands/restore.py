"""`manage.py restore FILE [--noinput]`: replace the configured database and MEDIA_ROOT with a
backup's (apps/backup/services.py). Everything is checked first; a refusal changes nothing."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.backup.services import BackupRefused, backup_counts, backup_restore

# exit codes: 1 not confirmed, 2 the archive is refused (unreadable, damaged, other engine),
# 3 restored but the counts differ from the manifest's
COUNTS_DIFFER = 3


class Command(BaseCommand):
    help = (
        "Restore a backup made by `manage.py backup`: REPLACES the configured database and "
        "the uploaded files."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help="do not ask for confirmation",
        )

    def handle(self, *args, file: Path, interactive: bool, **options):
        try:
            manifest = backup_restore(path=file, confirm=self._ask if interactive else None)
        except BackupRefused as exc:
            raise CommandError(str(exc), returncode=exc.exit_code) from None
        now = backup_counts()
        differ = {k: (v, now.get(k)) for k, v in manifest["counts"].items() if now.get(k) != v}
        if differ:
            raise CommandError(
                f"restored, but these counts differ from the backup's: {differ}",
                returncode=COUNTS_DIFFER,
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"restored the {manifest['engine']} backup of {manifest['created']} "
                f"({manifest['counts']['media_files']} file(s)); counts match the manifest"
            )
        )

    def _ask(self, manifest: dict) -> bool:
        self.stdout.write(
            f"This REPLACES the database and MEDIA_ROOT with the {manifest['engine']} backup "
            f"made {manifest['created']} ({manifest['counts']['people.person']} people, "
            f"{manifest['counts']['packets.packet']} packets, "
            f"{manifest['counts']['media_files']} files)."
        )
        try:
            answer = input("Type 'yes' to continue: ")
        except EOFError:  # no terminal (a script): only --noinput restores
            self.stdout.write("")
            return False
        return answer.strip().lower() == "yes"
