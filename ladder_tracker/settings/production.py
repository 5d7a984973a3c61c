"""Production: every secret from the environment, HTTPS only, PostgreSQL and a broker.

`DJANGO_SETTINGS_MODULE=ladder_tracker.settings.production manage.py check --deploy` is clean.
"""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import env

# https://docs.djangoproject.com/en/5.2/ref/settings/#secret-key
SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY.strip():
    raise ImproperlyConfigured("Set the SECRET_KEY environment variable (it is empty).")
# The secrets key: SECRETS_KEYS (current first, for rotation) or SECRETS_ENCRYPTION_KEY.
SECRETS_KEYS = [k for k in env.list("SECRETS_KEYS", default=[]) if k.strip()]
SECRETS_ENCRYPTION_KEY = env("SECRETS_ENCRYPTION_KEY", default="")
if not SECRETS_KEYS and not SECRETS_ENCRYPTION_KEY.strip():
    raise ImproperlyConfigured(
        "Set the SECRETS_KEYS (or SECRETS_ENCRYPTION_KEY) environment variable (it is empty)."
    )
DEBUG = False
# Links in mails (README "Notifications"); `check --deploy` refuses an empty one.
SITE_URL = env("SITE_URL", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Only https ServiceNow instances on public addresses (servicenow/outbound.py). An on-premise
# instance on a private network may turn it on; `check --deploy` then warns (servicenow.W001).
SERVICENOW_ALLOW_LOCAL_INSTANCES = env.bool("SERVICENOW_ALLOW_LOCAL_INSTANCES", default=False)

# https://docs.djangoproject.com/en/5.2/ref/settings/#secure-proxy-ssl-header
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# https://docs.djangoproject.com/en/5.2/ref/middleware/#http-strict-transport-security
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True

WHITENOISE_USE_FINDERS = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# https://docs.djangoproject.com/en/5.2/topics/email/#smtp-backend
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=587)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=True)
