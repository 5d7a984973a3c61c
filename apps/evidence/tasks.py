"""Celery beat tasks of evidence (CELERY_BEAT_SCHEDULE in settings/base.py): thin wrappers."""

from celery import shared_task

from . import candidates


@shared_task(name="evidence.suggestions_train")
def suggestions_train() -> list[dict]:
    """Nightly: a new learned-suggestion model per ladder, then open candidates refreshed."""
    return [
        {
            "ladder": r.ladder_id,
            "labelled": r.labelled,
            "version": r.model.version if r.model else None,
            "skipped": r.skipped,
            "refreshed": r.refreshed,
        }
        for r in candidates.suggestions_train()
    ]
