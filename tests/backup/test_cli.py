"""The embedded default end to end: `manage.py backup` and `manage.py restore` as a person
runs them, on a file-based SQLite database in a temporary folder (whatever database the
suite itself uses), with their exit codes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def embedded(tmp_path):
    """The environment of an embedded install whose database and files live in tmp_path."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "MEDIA_ROOT")
    }
    env |= {
        "DJANGO_SETTINGS_MODULE": "ladder_tracker.settings.base",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "LOG_LEVEL": "WARNING",
    }

    def run(*args, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *args],
            cwd=ROOT,
            env=env,
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=300,
        )

    return run


def test_backup_lose_everything_restore(embedded, tmp_path):
    assert embedded("manage.py", "migrate", "--noinput", "-v0").returncode == 0
    made = embedded("-m", "tests.backup.sqlite_world", "build")
    assert made.returncode == 0, made.stderr
    world = json.loads(made.stdout)
    assert len(world["snapshots"]) == 2 and len(world["attachments"]) == 4

    archive = tmp_path / "backup.tar.gz"
    backup = embedded("manage.py", "backup", str(archive))
    assert backup.returncode == 0, backup.stderr
    assert "backup of the sqlite database and 4 file(s)" in backup.stdout

    # refusals first: no confirmation (no terminal), a damaged archive; nothing changes
    unconfirmed = embedded("manage.py", "restore", str(archive))
    assert unconfirmed.returncode == 1
    assert "nothing was changed" in unconfirmed.stderr
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(archive.read_bytes()[:-200])
    damaged = embedded("manage.py", "restore", str(broken), "--noinput")
    assert damaged.returncode == 2
    assert "not a readable backup archive" in damaged.stderr
    still = embedded("-m", "tests.backup.sqlite_world", "verify")
    assert json.loads(still.stdout) == world

    # lose the database and every file
    for name in ("db.sqlite3", "db.sqlite3-wal", "db.sqlite3-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    subprocess.run(["rm", "-rf", str(tmp_path / "media")], check=True)

    restored = embedded("manage.py", "restore", str(archive), "--noinput")
    assert restored.returncode == 0, restored.stderr
    assert "counts match the manifest" in restored.stdout

    after = json.loads(embedded("-m", "tests.backup.sqlite_world", "verify").stdout)
    assert after == world
    for snap in after["snapshots"].values():
        assert snap["stored"] == snap["recomputed"]
    for served in after["attachments"].values():
        assert served["status"] == 200 and served["sha256"] == served["stored"]

    verified = embedded("manage.py", "verify_snapshots")
    assert verified.returncode == 0, verified.stderr
    assert "MISMATCH" not in verified.stderr
