"""ladder_tracker: career-ladder evidence from ServiceNow work, and promotion packets."""

from .celery import app as celery_app

__all__ = ("celery_app",)
