"""Settings for the test suite: the embedded default unless DATABASE_URL / CELERY_BROKER_URL
say otherwise (CI runs the suite a second time on PostgreSQL with a Redis broker)."""

from .base import *  # noqa: F403
from .base import VAR_DIR

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
