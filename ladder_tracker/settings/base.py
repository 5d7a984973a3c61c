"""Settings shared by every mode, read from the environment (django-environ).

With nothing set this is the embedded default: SQLite, eager Celery, console email, files on
local disk. Production sets DATABASE_URL, CELERY_BROKER_URL, SECRET_KEY and
SECRETS_ENCRYPTION_KEY (see production.py).
"""

from pathlib import Path

import environ
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"  # SQLite, media and collected static in the embedded mode
VAR_DIR.mkdir(exist_ok=True)

env = environ.Env()
env_file = BASE_DIR / ".env"
if env_file.exists():  # optional, for local overrides; never committed
    environ.Env.read_env(str(env_file))

# https://docs.djangoproject.com/en/5.2/ref/settings/#secret-key
# The default only serves the embedded mode; production.py requires a real one.
SECRET_KEY = env("SECRET_KEY", default="insecure-embedded-default-do-not-use-in-production")
# https://docs.djangoproject.com/en/5.2/ref/settings/#debug
DEBUG = env.bool("DJANGO_DEBUG", default=False)
# https://docs.djangoproject.com/en/5.2/ref/settings/#allowed-hosts
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])

# Key for connection secrets at rest (Fernet, url-safe base64 of 32 bytes). The embedded
# default derives one from SECRET_KEY; production.py requires it to be set explicitly.
SECRETS_ENCRYPTION_KEY = env("SECRETS_ENCRYPTION_KEY", default="")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "django_htmx",
    "django_celery_beat",
    "mozilla_django_oidc",
    "apps.people",
    "apps.ladders",
    "apps.evidence",
    "apps.packets",
    "apps.team",
    "apps.notifications",
    "servicenow",
]

MIDDLEWARE = [
    "ladder_tracker.logging.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "ladder_tracker.urls"
WSGI_APPLICATION = "ladder_tracker.wsgi.application"
ASGI_APPLICATION = "ladder_tracker.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "ladder_tracker" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.people.context_processors.viewer",
                "apps.people.context_processors.sign_in",
                "apps.evidence.context_processors.inbox",
            ],
        },
    },
]

# https://django-environ.readthedocs.io/en/latest/types.html#environ-env-db-url
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the dev server, the demo sync and a shell read while one of them writes.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault(
        "init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    )
    DATABASES["default"]["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")
    DATABASES["default"]["OPTIONS"].setdefault("timeout", 20)
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Django 6 makes https the default scheme of forms.URLField; opt in now.
FORMS_URLFIELD_ASSUME_HTTPS = True
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# https://docs.djangoproject.com/en/5.2/ref/settings/#authentication-backends
# Password sign-in (limited by PASSWORD_LOGIN below), then OpenID Connect. Neither answers
# the other's credentials, so a throttling backend (django-axes) may go first.
AUTHENTICATION_BACKENDS = [
    "apps.people.auth.PasswordBackend",
    "apps.people.sso.SSOBackend",
]

# --- Single sign-on: OpenID Connect (README "SSO") ------------------------------------------
# https://mozilla-django-oidc.readthedocs.io/en/stable/settings.html
# SSO is on when OIDC_ISSUER and OIDC_CLIENT_ID are set. Endpoints come from the issuer's
# /.well-known/openid-configuration on first use; the OIDC_*_ENDPOINT variables pin them.
OIDC_ISSUER = env("OIDC_ISSUER", default="").rstrip("/")
OIDC_RP_CLIENT_ID = env("OIDC_CLIENT_ID", default="")
OIDC_RP_CLIENT_SECRET = env("OIDC_CLIENT_SECRET", default="")
OIDC_RP_SIGN_ALGO = env("OIDC_SIGN_ALGO", default="RS256")
OIDC_RP_SCOPES = "openid email profile"
OIDC_OP_AUTHORIZATION_ENDPOINT = env("OIDC_AUTHORIZATION_ENDPOINT", default="")
OIDC_OP_TOKEN_ENDPOINT = env("OIDC_TOKEN_ENDPOINT", default="")
OIDC_OP_USER_ENDPOINT = env("OIDC_USERINFO_ENDPOINT", default="")
OIDC_OP_JWKS_ENDPOINT = env("OIDC_JWKS_ENDPOINT", default="")
OIDC_OP_END_SESSION_ENDPOINT = env("OIDC_END_SESSION_ENDPOINT", default="")
# Someone the provider vouches for but who is no person here: refused (False) or created.
OIDC_CREATE_USER = env.bool("OIDC_CREATE_USERS", default=False)
OIDC_USE_PKCE = True
OIDC_STORE_ID_TOKEN = True  # the id_token_hint of RP-initiated logout
OIDC_TIMEOUT = env.int("OIDC_TIMEOUT_SECONDS", default=10)
OIDC_AUTHENTICATE_CLASS = "apps.people.sso.SSOAuthenticateView"
OIDC_CALLBACK_CLASS = "apps.people.sso.SSOCallbackView"
OIDC_OP_LOGOUT_URL_METHOD = "apps.people.sso.provider_logout_url"
# Off: only superusers and BREAK_GLASS_USERS (usernames) may sign in with a password, on the
# sign-in page and the admin's alike; everyone else uses SSO.
PASSWORD_LOGIN = env.bool("PASSWORD_LOGIN", default=True)
BREAK_GLASS_USERS = env.list("BREAK_GLASS_USERS", default=[])

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
# The embedded mode serves static files straight from the apps (no collectstatic step);
# production.py turns this off and serves the collected, hashed files.
WHITENOISE_USE_FINDERS = True
STATICFILES_DIRS = [BASE_DIR / "ladder_tracker" / "static"]
# Uploaded files live outside the web root and are served only through a view that checks
# who may see them (apps/evidence). Nothing routes MEDIA_URL.
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(VAR_DIR / "media"))
# Largest evidence attachment (bytes): bigger uploads get a 413.
EVIDENCE_MAX_UPLOAD_BYTES = env.int("EVIDENCE_MAX_UPLOAD_BYTES", default=20 * 1024 * 1024)
# Let Django stream big uploads to disk rather than memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# https://docs.djangoproject.com/en/5.2/topics/email/
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="ladder-tracker@localhost")
# Where people reach the site: mails carry absolute links built from it (a mail client has
# no page to resolve `/packets/5/` against). Production must set it (`check --deploy`:
# notifications.E001 when unset, W001 for plain http, W002 for a loopback host).
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")
# Reminders (README "Notifications"): engineers with a draft this many days before their
# cycle's submission deadline; reviewers and the committee when a packet has waited on them
# longer than this many days.
NOTIFICATIONS_DEADLINE_REMINDER_DAYS = env.int("NOTIFICATIONS_DEADLINE_REMINDER_DAYS", default=3)
NOTIFICATIONS_WAITING_REMINDER_DAYS = env.int("NOTIFICATIONS_WAITING_REMINDER_DAYS", default=5)

# https://www.django-rest-framework.org/api-guide/settings/
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first so an anonymous API call gets 401 with WWW-Authenticate, not 403.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "ladder_tracker.api.exception_handler",
    # `?format=` belongs to our exports (packets/{id}/export/?format=pdf), not to DRF's
    # renderer negotiation.
    "URL_FORMAT_OVERRIDE": None,
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}
# https://drf-spectacular.readthedocs.io/en/latest/settings.html
SPECTACULAR_SETTINGS = {
    "TITLE": "ladder_tracker API",
    "DESCRIPTION": "Career ladders, evidence from ServiceNow work, and promotion packets.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}

# https://docs.celeryq.dev/en/stable/userguide/configuration.html
# No broker configured means the embedded mode: tasks run inline (eagerly).
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="")
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=CELERY_BROKER_URL or None)
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True  # a task killed mid-run is redelivered; tasks are idempotent
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The queue tasks go to when nothing routes them elsewhere (tests give their own workers one).
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", default="celery")
# https://docs.celeryq.dev/en/stable/getting-started/backends-and-brokers/redis.html#visibility-timeout
# Redis hands an unacknowledged task (acks_late) to another worker after this long. Killed
# workers are healed sooner by the reclaim task; this is the backstop, and must exceed the
# longest retry countdown (SERVICENOW_RUN_RETRY_MAX_SECONDS): a delayed task waiting longer
# would be delivered twice. A live run's redelivered copy finds its heartbeat fresh and skips.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT_SECONDS", default=900)
}

# ServiceNow sync: self-healing runs (README "Sync"). A worker writes a heartbeat with every
# page, and every third of SERVICENOW_STALE_RUN_SECONDS while a request is in flight (a slow
# page, the client's own retries and Retry-After waits); an active run with no sign of life
# for that long was abandoned (its worker was killed) and the reclaim task, every
# SERVICENOW_RECLAIM_INTERVAL_SECONDS, resumes it from its last committed page: 90 + 30 s
# takes a dead worker's run over within two minutes. A page takes seconds, so 90 s is 30 s
# between beats, room for a worker slowed by a busy database. A live worker whose run was
# taken anyway loses it at its next write (fenced by attempt) and stops; nothing interleaves.
SERVICENOW_STALE_RUN_SECONDS = env.float("SERVICENOW_STALE_RUN_SECONDS", default=90)
SERVICENOW_RECLAIM_INTERVAL_SECONDS = env.float("SERVICENOW_RECLAIM_INTERVAL_SECONDS", default=30)
# Transient ServiceNow failures (429/5xx after the client's own retries, hibernation,
# timeouts) retry the run from its last committed page, with exponential backoff from this
# base capped at the max (below the broker's visibility timeout). The budget counts failures
# since the last committed page, so a run that moves forward keeps going.
SERVICENOW_RUN_RETRIES = env.int("SERVICENOW_RUN_RETRIES", default=5)
SERVICENOW_RUN_RETRY_BASE_SECONDS = env.float("SERVICENOW_RUN_RETRY_BASE_SECONDS", default=10.0)
SERVICENOW_RUN_RETRY_MAX_SECONDS = env.float("SERVICENOW_RUN_RETRY_MAX_SECONDS", default=300.0)

# https://docs.celeryq.dev/en/stable/userguide/periodic-tasks.html — installed into
# django-celery-beat's tables by beat at start, next to the per-source schedules.
CELERY_BEAT_SCHEDULE = {
    "servicenow-reclaim-abandoned-runs": {
        "task": "servicenow.sync_runs_reclaim",
        "schedule": SERVICENOW_RECLAIM_INTERVAL_SECONDS,
    },
    # Deadline and waiting reminders, daily; each is sent once (NotificationSent), so a
    # beat that runs twice or late repeats nothing.
    "notifications-reminders": {
        "task": "notifications.reminders_send",
        "schedule": crontab(minute=0, hour=7),
    },
    # The weekly digest of new candidates that would close a gap of the next level.
    "notifications-candidate-digest": {
        "task": "notifications.candidate_digest_send",
        "schedule": crontab(minute=0, hour=7, day_of_week="mon"),
    },
}
# Outbound policy for instance URLs (servicenow/outbound.py, README "ServiceNow"): plain
# http, loopback and private addresses only when this is on. Link-local and metadata
# addresses are refused whatever it says. On in the embedded default, where the demo's
# emulator listens on 127.0.0.1; production.py turns it off.
SERVICENOW_ALLOW_LOCAL_INSTANCES = env.bool("SERVICENOW_ALLOW_LOCAL_INSTANCES", default=True)

# Logs carry a request id (from X-Request-ID or generated) or a Celery task id, so one
# request or one task can be followed through every line it wrote.
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "ladder_tracker.logging.ContextFilter"}},
    "formatters": {
        "plain": {
            "format": "%(asctime)s %(levelname)s [%(context_id)s] %(name)s: %(message)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["context"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
    },
}
