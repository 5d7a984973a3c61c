"""Settings for the test suite: the embedded default unless DATABASE_URL / CELERY_BROKER_URL
say otherwise (CI runs the suite a second time on PostgreSQL with a Redis broker).

Celery is eager here unless CELERY_BROKER_URL names a broker (CI's second pass: Redis and a
real worker): a test reads a run's result as soon as it asked for it. Tests that need the
embedded broker and a real worker start both themselves (tests/servicenow/stack.py).
"""

from .base import *  # noqa: F403
from .base import VAR_DIR, celery_transport_options, env

CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="")
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default="") or CELERY_BROKER_URL or None
CELERY_BROKER_TRANSPORT_OPTIONS = celery_transport_options(CELERY_BROKER_URL)
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
# eager runs stay in the request, so a test sees the run finished when its answer comes
SERVICENOW_SYNC_EAGER_IN_THREAD = False

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Mail links are built from this, never from a request: a distinct host proves it.
SITE_URL = "https://ladder.test"
MEDIA_ROOT = VAR_DIR / "test-media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Throttles stay on (the same code runs) but out of reach; tests/security sets real rates.
API_THROTTLE_ANON = "1000000/minute"
API_THROTTLE_USER = "1000000/minute"
