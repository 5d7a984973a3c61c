"""Celery beat tasks (CELERY_BEAT_SCHEDULE in settings/base.py): thin wrappers."""

from celery import shared_task

from . import services


@shared_task(name="notifications.reminders_send")
def reminders_send() -> dict:
    return {
        "deadline": services.deadline_reminders_send(),
        "waiting": services.waiting_reminders_send(),
    }


@shared_task(name="notifications.candidate_digest_send")
def candidate_digest_send() -> int:
    return services.candidate_digest_send()
