"""Health endpoints, request ids in logs, production settings, the Celery round trip."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

from ladder_tracker.celery import ping

ROOT = Path(__file__).resolve().parent.parent


def test_healthz(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_reports_database_and_broker(client, settings):
    response = client.get("/readyz")

    assert response.status_code == 200
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    if settings.CELERY_BROKER_URL:
        assert checks["broker"] == "ok"
    else:
        assert checks["broker"] == "not configured (tasks run inline)"


@pytest.mark.django_db
def test_readyz_is_503_when_the_broker_is_down(client):
    unreachable = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    with override_settings(CELERY_BROKER_URL=unreachable, CELERY_TASK_ALWAYS_EAGER=False):
        response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"].startswith("unavailable")


@pytest.mark.django_db
def test_request_id_is_echoed_and_logged(client, caplog, engineer):
    client.force_login(engineer.user)
    with caplog.at_level(logging.WARNING):
        response = client.get("/api/v1/ladders/nope/", HTTP_X_REQUEST_ID="abc-123")

    assert response["X-Request-ID"] == "abc-123"
    lines = [r for r in caplog.records if r.name == "django.request"]
    assert lines and all(r.context_id == "req:abc-123" for r in lines)


def test_unsafe_request_id_is_replaced(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith newline")

    assert response["X-Request-ID"] != "bad id\nwith newline"
    assert len(response["X-Request-ID"]) == 32


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={k: v for k, v in {**os.environ, **env}.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "ladder_tracker.settings.production",
    "SECRET_KEY": "x" * 20 + "-production-secret-key-for-the-deploy-check-0123456789",
    "SECRETS_ENCRYPTION_KEY": "k" * 43 + "=",
    "ALLOWED_HOSTS": "ladder.example.com",
    "SITE_URL": "https://ladder.example.com",
    "DATABASE_URL": "sqlite:////tmp/ladder-deploy-check.sqlite3",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/14",
}


def test_production_settings_pass_check_deploy():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_settings_without_a_broker_warn_on_check_deploy():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "CELERY_BROKER_URL"}
    env["CELERY_BROKER_URL"] = ""
    env["BROKER_URL"] = ""

    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)

    assert result.returncode != 0
    assert "servicenow.W002" in result.stderr + result.stdout


def test_production_settings_accept_a_list_of_secrets_keys():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRETS_ENCRYPTION_KEY"}
    env["SECRETS_KEYS"] = "k" * 43 + "=,an old passphrase"

    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["SECRET_KEY", "SECRETS_ENCRYPTION_KEY"])
@pytest.mark.parametrize("how", ["missing", "empty"])
def test_production_settings_require_each_secret(name, how):
    env = {**os.environ, **PRODUCTION_ENV}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    if how == "missing":
        env.pop(name)
    else:
        env[name] = ""
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode != 0
    assert name in result.stderr


@pytest.mark.worker
def test_celery_round_trip():
    """Eager without a broker; through Redis and a real worker process in CI's second run."""
    result = ping.delay()

    assert result.get(timeout=30) == "pong"
