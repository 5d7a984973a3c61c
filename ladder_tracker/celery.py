"""The Celery app. Tasks run inline (eagerly) when no broker is configured."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ladder_tracker.settings.base")

app = Celery("ladder_tracker")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _warm_up(**_kwargs):
    """Import what a sync's first page would otherwise wait seconds for (scikit-learn, for
    the candidates' suggestions) once, when a worker process starts."""
    from apps.evidence.suggestions import warm_up

    warm_up()


@task_prerun.connect
def _bind_task_id(task_id=None, **_kwargs):
    from ladder_tracker.logging import context_id

    context_id.set(f"task:{task_id}")


@task_postrun.connect
def _unbind_task_id(**_kwargs):
    from ladder_tracker.logging import context_id

    context_id.set("-")


@app.task(name="ladder_tracker.ping")
def ping() -> str:
    """Round-trip check through the broker and a worker (used by tests and operators)."""
    return "pong"
