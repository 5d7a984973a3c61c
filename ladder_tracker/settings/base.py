"""Settings shared by every mode, read from the environment (django-environ).

With nothing set this is the embedded default: SQLite, Celery on a SQLite broker (a worker
beside the app: `make demo` starts one), console email, files on local disk. Production sets
DATABASE_URL, CELERY_BROKER_URL, SECRET_KEY and
SECRETS_ENCRYPTION_KEY (see production.py).
"""

from datetime import timedelta
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

# Keys for connection secrets at rest (servicenow/secrets.py): SECRETS_KEYS, comma-separated,
# the current key first and older ones after it until `manage.py secrets_rotate` has run; or
# one key in SECRETS_ENCRYPTION_KEY. A key is a Fernet key (`Fernet.generate_key()`) or a
# passphrase (stretched with scrypt and a salt). The embedded default derives one from
# SECRET_KEY; production.py requires one to be set explicitly.
SECRETS_KEYS = env.list("SECRETS_KEYS", default=[])
SECRETS_ENCRYPTION_KEY = env("SECRETS_ENCRYPTION_KEY", default="")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served from here (no CDN)
    "csp",
    "django_htmx",
    "django_celery_beat",
    "mozilla_django_oidc",
    "simple_history",  # change history of configuration (ladder_tracker/history.py)
    "apps.people",
    "apps.ladders",
    "apps.evidence",
    "apps.packets",
    "apps.team",
    "apps.notifications",
    "servicenow",
    "apps.security",
    "apps.backup",  # manage.py backup / restore
    "axes",  # last, as its docs ask: it wraps the other apps' sign-in flows
]

MIDDLEWARE = [
    "ladder_tracker.logging.RequestIdMiddleware",
    "apps.security.middleware.ClientAddressMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    # lets Sign out's redirect reach the SSO provider (form-action), when SSO is on
    "apps.people.sso.SSOFormActionMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # the signed-in user names the change in configuration history (ladder_tracker/history.py)
    "simple_history.middleware.HistoryRequestMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # last: turns a lock-out noticed anywhere below into the 429 page (or JSON under /api/)
    "axes.middleware.AxesMiddleware",
]

# https://django-simple-history.readthedocs.io/en/latest/admin.html: the admin's History is
# for reading (no Revert button); going back is a change like any other, made on the form.
SIMPLE_HISTORY_REVERT_DISABLED = True

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
# https://docs.djangoproject.com/en/5.2/topics/auth/customizing/#specifying-authentication-backends
# The lock-out check comes first so it guards every backend after it (an SSO backend too).
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# https://docs.djangoproject.com/en/5.2/ref/settings/#authentication-backends
# Password sign-in (limited by PASSWORD_LOGIN below), then OpenID Connect. Neither answers
# the other's credentials, so a throttling backend (django-axes) may go first.
AUTHENTICATION_BACKENDS = [
    # django-axes first: a locked-out account or address is refused before any backend runs
    # (apps/security/throttling.py).
    "apps.security.throttling.LockoutBackend",
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
# Suggestions for imported candidates (apps/evidence/suggestions.py, README "Suggestions").
# Below this many labelled items (accepted with a link) no model is trained and the
# suggestions fall back to text similarity with the expectations.
SUGGESTIONS_MIN_LABELS = env.int("SUGGESTIONS_MIN_LABELS", default=50)
# The inbox ticks a learned/similar suggestion at or above this score (the engineer still
# accepts); rule suggestions are ticked as before.
SUGGESTIONS_PRESELECT_SCORE = env.float("SUGGESTIONS_PRESELECT_SCORE", default=0.5)
# At most this many learned/similar suggestions per item (rules' come on top).
SUGGESTIONS_MAX = env.int("SUGGESTIONS_MAX", default=5)
# A learned score below this is no suggestion.
SUGGESTIONS_MIN_SCORE = env.float("SUGGESTIONS_MIN_SCORE", default=0.02)
# Codes scoring at least this share of the best are "plausible": ordered by the person's
# level (next first); the rest follow by score.
SUGGESTIONS_PLAUSIBLE_RATIO = env.float("SUGGESTIONS_PLAUSIBLE_RATIO", default=0.5)
# Model versions kept per ladder (older rows are deleted after a training).
SUGGESTIONS_MODELS_KEPT = env.int("SUGGESTIONS_MODELS_KEPT", default=3)
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

# --- Sign-in throttling, API rates, tokens (apps/security; README "Security") ---------------
# Proxies in front of the app that add X-Forwarded-For. 0 (the default) trusts only the
# socket's address, so a client cannot pick the address its failures are counted against.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# https://django-axes.readthedocs.io/en/latest/4_configuration.html
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = "apps.security.throttling.lockout_parameters"
AXES_LOCKOUT_CALLABLE = "apps.security.throttling.lockout_response"
AXES_RESET_ON_SUCCESS = True  # the right password (before a lock-out) clears the count
AXES_HTTP_RESPONSE_CODE = 429
AXES_IPWARE_PROXY_COUNT = TRUSTED_PROXY_COUNT or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if TRUSTED_PROXY_COUNT else ["REMOTE_ADDR"]
)
AXES_VERBOSE = False
# axes keeps a failed request's form data (AccessAttempt.post_data) and logs who failed:
# these never appear there in clear (the password always is masked)
AXES_SENSITIVE_PARAMETERS = [
    "username",
    "ip_address",
    "client_secret",
    "token",
    "csrfmiddlewaretoken",
]
# https://www.django-rest-framework.org/api-guide/throttling/ ("60/minute", "1000/hour"...)
API_THROTTLE_ANON = env("API_THROTTLE_ANON", default="60/minute")
API_THROTTLE_USER = env("API_THROTTLE_USER", default="1200/minute")
# API tokens: days until a new token expires unless its creator says otherwise, and the most
API_TOKEN_DEFAULT_DAYS = env.int("API_TOKEN_DEFAULT_DAYS", default=90)
API_TOKEN_MAX_DAYS = env.int("API_TOKEN_MAX_DAYS", default=366)
# The audit trail keeps this many days (`manage.py security_events_prune` deletes older lines).
SECURITY_EVENTS_KEEP_DAYS = env.int("SECURITY_EVENTS_KEEP_DAYS", default=400)
# https://docs.djangoproject.com/en/5.2/topics/cache/ — the API throttles count here; set
# CACHE_URL (e.g. redis://127.0.0.1:6379/2) so every web process shares one count.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

# https://www.django-rest-framework.org/api-guide/settings/
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first so an anonymous API call gets 401 with WWW-Authenticate, not 403.
        "apps.security.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "apps.security.throttling.AnonThrottle",
        "apps.security.throttling.UserThrottle",
    ],
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "ladder_tracker.schema.AutoSchema",  # + error answers
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
    # Swagger UI from drf-spectacular-sidecar's static files, not a CDN: /api/docs/ works on
    # a network without one, and under the CSP (script-src 'self').
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a `status`; each choice set gets a name of its own.
    "ENUM_NAME_OVERRIDES": {
        "SyncRunStatusEnum": "servicenow.models.SyncRun.Status",
        "EvidenceStatusEnum": "apps.evidence.models.Evidence.Status",
        "PacketStateEnum": "apps.packets.models.Packet.State",
        "CorroborationStateEnum": "apps.evidence.models.Corroboration.State",
    },
}

# Security headers on every response (README "Security: headers"). django-csp writes the
# Content-Security-Policy: nothing inline (no <script> blocks, no on* or hx-on attributes,
# no injected <style>; page behaviour is in static/js/app.js), nothing from another origin.
# https://django-csp.readthedocs.io/en/latest/configuration.html
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        # Swagger UI and the admin draw a few icons as data: URIs
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
# https://docs.djangoproject.com/en/5.2/ref/settings/#secure-referrer-policy
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# https://github.com/adamchainz/django-permissions-policy: no page uses these features
PERMISSIONS_POLICY = {
    feature: []
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "encrypted-media",
        "fullscreen",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "publickey-credentials-get",
        "screen-wake-lock",
        "usb",
        "xr-spatial-tracking",
    )
}

# https://docs.celeryq.dev/en/stable/userguide/configuration.html
# The broker: CELERY_BROKER_URL (or Celery's own BROKER_URL) in production, e.g. Redis. With
# neither set, the embedded broker: a SQLite file in var/ through kombu's SQLAlchemy
# transport, which needs no server, so `celery -A ladder_tracker worker` on a fresh clone
# finds the same queue as the web process (`make demo` starts one). Results go to the broker
# (Redis) or, embedded, to a second SQLite file (SQLAlchemy result backend).
EMBEDDED_BROKER_URL = f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite'}"
EMBEDDED_RESULT_BACKEND = f"db+sqlite:///{VAR_DIR / 'celery-results.sqlite'}"


def celery_broker_is_embedded(url: str) -> bool:
    return url.startswith(("sqla+", "sqlalchemy+"))


def celery_result_backend(broker_url: str) -> str | None:
    """Where results go when CELERY_RESULT_BACKEND says nothing."""
    if not broker_url:
        return None
    return EMBEDDED_RESULT_BACKEND if celery_broker_is_embedded(broker_url) else broker_url


def celery_transport_options(broker_url: str) -> dict:
    """Redis hands an unacknowledged task (acks_late) to another worker after
    `visibility_timeout`. The SQLAlchemy transport passes its options to create_engine, so it
    gets none (it has no visibility timeout: a task whose worker was killed is healed by the
    reclaim task alone)."""
    if celery_broker_is_embedded(broker_url):
        return {}
    # https://docs.celeryq.dev/en/stable/getting-started/backends-and-brokers/redis.html#visibility-timeout
    # Killed workers are healed sooner by the reclaim task; this is the backstop, and must
    # exceed the longest retry countdown (SERVICENOW_RUN_RETRY_MAX_SECONDS): a delayed task
    # waiting longer would be delivered twice. A live run's redelivered copy finds its
    # heartbeat fresh and skips.
    return {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT_SECONDS", default=900)}


CELERY_BROKER_URL = (
    env("CELERY_BROKER_URL", default="") or env("BROKER_URL", default="") or EMBEDDED_BROKER_URL
)
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default="") or celery_result_backend(
    CELERY_BROKER_URL
)
CELERY_BROKER_TRANSPORT_OPTIONS = celery_transport_options(CELERY_BROKER_URL)
# Eager (tasks inline in the caller) only when asked: the test suite's default. A web process
# with it on still never runs a sync inside a request: "Sync now" hands the run to a thread of
# its own (SERVICENOW_SYNC_EAGER_IN_THREAD, servicenow/tasks.py sync_source_enqueue).
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
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

# ServiceNow sync: self-healing runs (README "Sync"). A worker writes a heartbeat with every
# page, and every third of SERVICENOW_STALE_RUN_SECONDS while a request is in flight (a slow
# page, the client's own retries and Retry-After waits); an active run with no sign of life
# for that long was abandoned (its worker was killed) and the reclaim task, every
# SERVICENOW_RECLAIM_INTERVAL_SECONDS, resumes it from its last committed page: 90 + 30 s
# takes a dead worker's run over within two minutes. A page takes seconds, so 90 s is 30 s
# between beats, room for a worker slowed by a busy database. A live worker whose run was
# taken anyway loses it at its next write (fenced by attempt) and stops; nothing interleaves.
# With CELERY_TASK_ALWAYS_EAGER on there is no worker: a run requested by a web request
# ("Sync now", the API) goes to a thread of that process, so the answer (202, the run to
# poll) still comes at once. The suite turns it off (settings/test.py) to read results inline.
SERVICENOW_SYNC_EAGER_IN_THREAD = env.bool("SERVICENOW_SYNC_EAGER_IN_THREAD", default=True)
SERVICENOW_STALE_RUN_SECONDS = env.float("SERVICENOW_STALE_RUN_SECONDS", default=90)
SERVICENOW_RECLAIM_INTERVAL_SECONDS = env.float("SERVICENOW_RECLAIM_INTERVAL_SECONDS", default=30)
# Transient ServiceNow failures (429/5xx after the client's own retries, hibernation,
# timeouts) retry the run from its last committed page, with exponential backoff from this
# base capped at the max (below the broker's visibility timeout). The budget counts failures
# since the last committed page, so a run that moves forward keeps going.
SERVICENOW_RUN_RETRIES = env.int("SERVICENOW_RUN_RETRIES", default=5)
SERVICENOW_RUN_RETRY_BASE_SECONDS = env.float("SERVICENOW_RUN_RETRY_BASE_SECONDS", default=10.0)
SERVICENOW_RUN_RETRY_MAX_SECONDS = env.float("SERVICENOW_RUN_RETRY_MAX_SECONDS", default=300.0)
# A full run of a work-item source fetches, decodes and prepares its pages in a process of
# its own (servicenow/sync/pipeline.py) once its first page shows at least this many rows
# still to come and took less time to fetch than to prepare and store (a far instance keeps
# the in-thread prefetch, which already hides the work behind the wait): the run's process
# only stores. 0: always, from the first page. Off: every page in the run's process.
SERVICENOW_SYNC_PROCESS = env.bool("SERVICENOW_SYNC_PROCESS", default=True)
SERVICENOW_SYNC_PROCESS_MIN_ROWS = env.int("SERVICENOW_SYNC_PROCESS_MIN_ROWS", default=20000)
# Pages come as raw values; a source's choice labels (state 6 is "Resolved") are read from
# sys_choice by full runs and by the first run once the ones kept are older than this.
SERVICENOW_CHOICE_LABELS_MAX_AGE_SECONDS = env.float(
    "SERVICENOW_CHOICE_LABELS_MAX_AGE_SECONDS", default=86400.0
)
# Backfill (README "Backfill windows"): a full run of a work-items table of at least
# SERVICENOW_BACKFILL_MIN_ROWS rows, with a broker (not eager), is split into disjoint
# sys_created_on windows, each a resumable keyset stream of its own, run by at most
# SERVICENOW_BACKFILL_WORKERS window tasks at a time per connection (Connection.backfill_workers
# overrides it): four is the usual advice for what one instance takes from one integration.
# A window is about SERVICENOW_BACKFILL_WINDOW_ROWS rows (at least one per worker, at most
# SERVICENOW_BACKFILL_MAX_WINDOWS): small enough that a worker that finishes early takes another
# and one that dies leaves little to redo, few enough that planning (one one-row request per
# boundary) stays cheap.
SERVICENOW_BACKFILL_MIN_ROWS = env.int("SERVICENOW_BACKFILL_MIN_ROWS", default=50000)
SERVICENOW_BACKFILL_WORKERS = env.int("SERVICENOW_BACKFILL_WORKERS", default=4)
SERVICENOW_BACKFILL_WINDOW_ROWS = env.int("SERVICENOW_BACKFILL_WINDOW_ROWS", default=25000)
SERVICENOW_BACKFILL_MAX_WINDOWS = env.int("SERVICENOW_BACKFILL_MAX_WINDOWS", default=64)

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
    # Learned suggestions: a new model per ladder from the day's triage, then every open
    # candidate's suggestions recomputed (apps/evidence/suggestions.py).
    "evidence-suggestions-train": {
        "task": "evidence.suggestions_train",
        "schedule": crontab(minute=30, hour=2),
    },
}
# Outbound policy for instance URLs (servicenow/outbound.py, README "ServiceNow"): plain
# http, loopback and private addresses only when this is on. Link-local and metadata
# addresses are refused whatever it says. On in the embedded default, where the demo's
# emulator listens on 127.0.0.1; production.py turns it off.
SERVICENOW_ALLOW_LOCAL_INSTANCES = env.bool("SERVICENOW_ALLOW_LOCAL_INSTANCES", default=True)
# The admins (active staff with an email) get one mail when a source's runs fail this many
# times in a row, and one when it recovers (servicenow/sync/health.py).
SERVICENOW_ALERT_AFTER_FAILURES = env.int("SERVICENOW_ALERT_AFTER_FAILURES", default=3)

# Prometheus metrics at /metrics (ladder_tracker/metrics.py): always for a signed-in admin;
# for a scraper with `Authorization: Bearer <METRICS_TOKEN>` when that is set; and from
# loopback without credentials only when METRICS_ALLOW_LOOPBACK is on (a request that came
# through a proxy, i.e. with X-Forwarded-For / Forwarded / X-Real-IP, never counts as one).
# https://prometheus.io/docs/prometheus/latest/configuration/configuration/#scrape_config
METRICS_TOKEN = env("METRICS_TOKEN", default="")
METRICS_ALLOW_LOOPBACK = env.bool("METRICS_ALLOW_LOOPBACK", default=False)

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
