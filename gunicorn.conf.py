"""gunicorn settings for the web tier: `gunicorn -c gunicorn.conf.py ladder_tracker.wsgi`.

Every value can be overridden from the environment (names below) or on the command line.
The defaults were chosen from `make bench-web` (benchmarks/web.py; the figures are in
benchmarks/README.md): see the README's "Runtime modes".
https://docs.gunicorn.org/en/stable/settings.html
"""

import os

# https://docs.gunicorn.org/en/stable/settings.html#bind
bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
# https://docs.gunicorn.org/en/stable/settings.html#workers (WEB_CONCURRENCY is gunicorn's
# own variable for it)
workers = int(os.environ.get("WEB_CONCURRENCY", str(2 * (os.cpu_count() or 1) + 1)))
# https://docs.gunicorn.org/en/stable/settings.html#threads
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
# https://docs.gunicorn.org/en/stable/settings.html#worker-class
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread" if threads > 1 else "sync")
# https://docs.gunicorn.org/en/stable/settings.html#timeout
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# https://docs.gunicorn.org/en/stable/settings.html#accesslog ("-": stdout; empty: none)
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
