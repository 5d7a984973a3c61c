"""gunicorn.conf.py: the defaults chosen from `make bench-web`, what the environment
overrides, and the garbage collector tuning each worker applies once the app is loaded."""

from __future__ import annotations

import gc
import os
import runpy
from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"
NAMES = [
    "WEB_CONCURRENCY",
    "GUNICORN_THREADS",
    "GUNICORN_WORKER_CLASS",
    "GUNICORN_BIND",
    "PORT",
    "GUNICORN_TIMEOUT",
    "GUNICORN_ACCESS_LOG",
    "GUNICORN_GC_FREEZE",
    "GUNICORN_GC_THRESHOLD",
]


def load(monkeypatch, **env) -> dict:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONF))


def test_defaults_are_threaded_workers_one_per_core(monkeypatch):
    conf = load(monkeypatch)

    assert conf["workers"] == max(2, os.cpu_count() or 1)
    assert (conf["threads"], conf["worker_class"]) == (8, "gthread")
    assert conf["bind"] == "0.0.0.0:8000"
    assert (conf["timeout"], conf["accesslog"]) == (30, "-")
    assert (conf["gc_freeze"], conf["gc_threshold"]) == (True, [50000, 10, 10])


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"WEB_CONCURRENCY": "5", "GUNICORN_THREADS": "1"},
            {"workers": 5, "threads": 1, "worker_class": "sync"},
        ),
        ({"GUNICORN_THREADS": "4"}, {"threads": 4, "worker_class": "gthread"}),
        ({"PORT": "9000"}, {"bind": "0.0.0.0:9000"}),
        ({"GUNICORN_BIND": "127.0.0.1:7000", "PORT": "9000"}, {"bind": "127.0.0.1:7000"}),
        ({"GUNICORN_ACCESS_LOG": ""}, {"accesslog": None}),
        (
            {"GUNICORN_GC_FREEZE": "0", "GUNICORN_GC_THRESHOLD": ""},
            {"gc_freeze": False, "gc_threshold": []},
        ),
    ],
    ids=["sync-workers", "threads", "port", "bind-wins", "no-access-log", "python-gc"],
)
def test_the_environment_overrides(monkeypatch, env, expected):
    conf = load(monkeypatch, **env)

    assert {key: conf[key] for key in expected} == expected


@pytest.fixture
def gc_restored():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_a_worker_freezes_the_loaded_app_and_raises_the_threshold(monkeypatch, gc_restored):
    conf = load(monkeypatch)
    gc.unfreeze()

    conf["post_worker_init"](worker=None)

    assert gc.get_threshold() == (50000, 10, 10)
    assert gc.get_freeze_count() > 10_000  # the imported app (Django, DRF, our apps)


def test_python_gc_leaves_the_collector_alone(monkeypatch, gc_restored):
    conf = load(monkeypatch, GUNICORN_GC_FREEZE="0", GUNICORN_GC_THRESHOLD="")
    gc.unfreeze()
    threshold = gc.get_threshold()

    conf["post_worker_init"](worker=None)

    assert (gc.get_threshold(), gc.get_freeze_count()) == (threshold, 0)
