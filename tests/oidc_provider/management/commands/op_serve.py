"""Create the provider's tables, seed it (see op_seed) and serve it on 127.0.0.1:<port>, in
one process (each Django start-up costs seconds on a loaded CI machine)."""

import json
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand

from .op_seed import seed


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("spec", type=Path)
        parser.add_argument("port", type=int)

    def handle(self, *args, spec: Path, port: int, **options):
        call_command("migrate", run_syncdb=True, verbosity=0, interactive=False)
        seed(json.loads(spec.read_text()))
        call_command("runserver", f"127.0.0.1:{port}", use_reloader=False)
