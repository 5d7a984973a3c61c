"""gunicorn settings for the web tier: `gunicorn -c gunicorn.conf.py ladder_tracker.wsgi`.

Every value can be overridden from the environment (names below) or on gunicorn's command
line. The defaults were chosen from `make bench-web` (benchmarks/web.py; the figures and
the reasons are in benchmarks/README.md, "make bench-web").
https://docs.gunicorn.org/en/stable/settings.html
"""

import gc
import os

# https://docs.gunicorn.org/en/stable/settings.html#bind
bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
# Threaded workers, one per core, 8 threads each. On 2 cores this did the same or more
# requests a second than 2 x cores + 1 sync workers on every endpoint (the requests are
# CPU in Python and PostgreSQL: a worker is bound to one core by the GIL either way), with
# 2 processes' memory instead of 5 (~480 vs ~700 MB), and a request that waits on I/O (a
# ServiceNow read while the page is open) holds a thread, not a whole worker. Each thread
# keeps its own database connection (CONN_MAX_AGE): workers x threads per machine.
# https://docs.gunicorn.org/en/stable/settings.html#workers (WEB_CONCURRENCY is gunicorn's
# own variable for it)
workers = int(os.environ.get("WEB_CONCURRENCY", str(max(2, os.cpu_count() or 1))))
# https://docs.gunicorn.org/en/stable/settings.html#threads
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# https://docs.gunicorn.org/en/stable/settings.html#worker-class
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread" if threads > 1 else "sync")
# https://docs.gunicorn.org/en/stable/settings.html#timeout
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# https://docs.gunicorn.org/en/stable/settings.html#accesslog ("-": stdout; empty: none)
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None

# The garbage collector, per worker. Python's default thresholds (700, 10, 10) run a full
# collection every few large responses, and a full collection walks every object the
# process holds: the app as imported (~140k objects) took 100-150 ms on this 2-core
# machine, once every ~20 requests of a 2,000-item packet, which was its whole p95.
# GUNICORN_GC_FREEZE (default on) moves what exists once the app is loaded out of the
# collector's sight (gc.freeze: it is not garbage, and stays for the life of the worker);
# GUNICORN_GC_THRESHOLD ("gen0,gen1,gen2", default 50000,10,10; empty keeps Python's) lets
# a request's short-lived objects die before a collection looks at them.
gc_freeze = os.environ.get("GUNICORN_GC_FREEZE", "1").lower() not in ("0", "false", "no", "")
gc_threshold = [
    int(x) for x in os.environ.get("GUNICORN_GC_THRESHOLD", "50000,10,10").split(",") if x
]


def post_worker_init(worker):
    """https://docs.gunicorn.org/en/stable/settings.html#post-worker-init: the app is
    loaded in this worker."""
    if gc_threshold:
        gc.set_threshold(*gc_threshold)
    if gc_freeze:
        gc.collect()
        gc.freeze()
