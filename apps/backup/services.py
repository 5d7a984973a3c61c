"""Backup and restore of the whole service: the database and MEDIA_ROOT (attachments) in one
tar.gz, with a manifest (README "Backup and restore").

The archive holds `manifest.json` (format version, engine, when, row counts and the sha256
of every other member), the database (`database.dump`, pg_dump's custom format, on
PostgreSQL; `database.sqlite3`, a copy made with SQLite's online backup API, on SQLite)
and `media/` (the uploaded files).

A restore checks everything before it touches anything: the archive reads whole (gzip's
CRC), the manifest is one this code writes, the engine is the configured database's, every
member matches its sha256, and the database copy is readable (`pg_restore --list`, SQLite's
integrity check). Only then does it replace the configured database (pg_restore --clean in
one transaction; SQLite's backup API into the live connection) and then MEDIA_ROOT. A
refusal raises BackupRefused and changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.db import connections
from django.utils import timezone

logger = logging.getLogger(__name__)

FORMAT = 1  # the archive layout this module writes and reads
MANIFEST = "manifest.json"
MEDIA = "media"
DATABASE_MEMBERS = {"postgresql": "database.dump", "sqlite": "database.sqlite3"}
# what the manifest counts, and a restore checks again afterwards
COUNTED_MODELS = [
    "people.Person",
    "ladders.LadderVersion",
    "evidence.Evidence",
    "evidence.Attachment",
    "packets.PromotionCycle",
    "packets.Packet",
    "packets.PacketSnapshot",
    "packets.PacketEvent",
    "servicenow.Connection",
    "servicenow.Source",
    "servicenow.WorkItem",
]


class BackupRefused(Exception):
    """The archive cannot be restored here (or a backup cannot be made); nothing changed.
    `exit_code` is what `manage.py restore` exits with."""

    exit_code = 2


class RestoreNotConfirmed(BackupRefused):
    exit_code = 1


@dataclass(frozen=True)
class BackupResult:
    path: Path
    manifest: dict


def _engine(using: str = "default") -> str:
    vendor = connections[using].vendor
    if vendor not in DATABASE_MEMBERS:
        raise BackupRefused(f"Backups support PostgreSQL and SQLite, not {vendor}.")
    return vendor


def backup_counts(using: str = "default") -> dict[str, int]:
    counts = {
        label.lower(): apps.get_model(label).objects.using(using).count()
        for label in COUNTED_MODELS
    }
    counts["media_files"] = sum(1 for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file())
    return counts


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- PostgreSQL ----------------------------------------------------------------------------


def _pg_args(using: str) -> tuple[list[str], dict]:
    db = connections[using].settings_dict
    args = []
    if db.get("HOST"):
        args += ["--host", str(db["HOST"])]
    if db.get("PORT"):
        args += ["--port", str(db["PORT"])]
    if db.get("USER"):
        args += ["--username", str(db["USER"])]
    env = {**os.environ}
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    return args, env


def _run(command: list[str], env: dict | None = None, *, failed: str = "") -> None:
    tool = command[0]
    if shutil.which(tool) is None:
        raise BackupRefused(
            f"{tool} is not installed; install the PostgreSQL client of the server's version "
            "(Debian: postgresql-client-15)."
        )
    result = subprocess.run(command, env=env, capture_output=True, text=True)  # noqa: S603
    if result.returncode != 0:
        detail = result.stderr.strip() or f"exit code {result.returncode}"
        raise BackupRefused(f"{failed or tool + ' failed'}: {detail}")


def _pg_dump(target: Path, using: str) -> None:
    args, env = _pg_args(using)
    name = connections[using].settings_dict["NAME"]
    _run(
        ["pg_dump", *args, "--format=custom", "--no-owner", "--no-privileges",
         f"--file={target}", f"--dbname={name}"],
        env,
    )  # fmt: skip


def _pg_check(dump: Path) -> None:
    _run(["pg_restore", "--list", str(dump)], failed="The database dump is unreadable")


def _pg_restore(dump: Path, using: str) -> None:
    args, env = _pg_args(using)
    name = connections[using].settings_dict["NAME"]
    connections[using].close()  # hold no connection (or lock) while its tables are replaced
    # One transaction: a failure half-way rolls back to the database as it was.
    _run(
        ["pg_restore", *args, "--clean", "--if-exists", "--no-owner", "--no-privileges",
         "--single-transaction", "--exit-on-error", f"--dbname={name}", str(dump)],
        env,
    )  # fmt: skip


# --- SQLite --------------------------------------------------------------------------------


def _sqlite_raw(using: str) -> sqlite3.Connection:
    connection = connections[using]
    connection.ensure_connection()
    return connection.connection


def _sqlite_dump(target: Path, using: str) -> None:
    # The online backup API: a consistent copy while the service keeps running
    destination = sqlite3.connect(target)
    try:
        _sqlite_raw(using).backup(destination)
    finally:
        destination.close()


def _sqlite_check(path: Path) -> None:
    try:
        copy = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            ok = copy.execute("PRAGMA integrity_check").fetchone()[0]
            has_migrations = copy.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='django_migrations'"
            ).fetchone()
        finally:
            copy.close()
    except sqlite3.DatabaseError as exc:
        raise BackupRefused(f"The database copy is unreadable: {exc}") from None
    if ok != "ok" or not has_migrations:
        raise BackupRefused(f"The database copy is damaged or not ours ({ok}).")


def _sqlite_restore(path: Path, using: str) -> None:
    if connections[using].in_atomic_block:
        raise BackupRefused("A restore cannot run inside a transaction.")
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        source.backup(_sqlite_raw(using))  # page by page into the live database, all or nothing
    finally:
        source.close()


# --- archive ---------------------------------------------------------------------------------


def backup_create(*, path: Path, using: str = "default") -> BackupResult:
    """Write the archive to `path` (the database, then MEDIA_ROOT), replacing it only once it
    is whole."""
    engine = _engine(using)
    path = Path(path)
    media_root = Path(settings.MEDIA_ROOT)
    with tempfile.TemporaryDirectory(prefix="lt-backup-") as tmp:
        work = Path(tmp)
        member = DATABASE_MEMBERS[engine]
        database = work / member
        if engine == "postgresql":
            _pg_dump(database, using)
        else:
            _sqlite_dump(database, using)
        files = {member: _sha256_file(database)}
        media = (
            sorted(p for p in media_root.rglob("*") if p.is_file()) if media_root.is_dir() else []
        )
        for file in media:
            files[f"{MEDIA}/{file.relative_to(media_root).as_posix()}"] = _sha256_file(file)
        manifest = {
            "format": FORMAT,
            "app": "ladder_tracker",
            "engine": engine,
            "created": timezone.now().isoformat(),
            "database": member,
            "counts": backup_counts(using),
            "files": files,
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        partial = path.with_name(path.name + ".partial")
        with tarfile.open(partial, "w:gz") as archive:
            archive.add(work / MANIFEST, arcname=MANIFEST)
            archive.add(database, arcname=member)
            for file in media:
                archive.add(file, arcname=f"{MEDIA}/{file.relative_to(media_root).as_posix()}")
        partial.replace(path)
    logger.info("backup written to %s (%s, %s files)", path, engine, len(files))
    return BackupResult(path=path, manifest=manifest)


def _extract(path: Path, into: Path) -> dict:
    """Read the whole archive into `into` and return its manifest; BackupRefused for anything
    but an archive this module wrote, whole."""
    if not path.is_file():
        raise BackupRefused(f"{path}: no such file.")
    try:
        with tarfile.open(path, "r:gz") as archive:
            archive.extractall(into, filter="data")  # no absolute paths, links or devices
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise BackupRefused(f"{path} is not a readable backup archive ({exc}).") from None
    try:
        manifest = json.loads((into / MANIFEST).read_text())
    except (OSError, ValueError):
        raise BackupRefused(f"{path} has no readable {MANIFEST}: not a backup.") from None
    if not isinstance(manifest, dict) or manifest.get("app") != "ladder_tracker":
        raise BackupRefused(f"{path} is not a ladder_tracker backup.")
    if manifest.get("format") != FORMAT:
        raise BackupRefused(
            f"{path} has archive format {manifest.get('format')!r}; this version reads {FORMAT}."
        )
    files = manifest.get("files") or {}
    member = manifest.get("database")
    if member not in files:
        raise BackupRefused(f"{path}: the manifest names no database copy.")
    on_disk = {p.relative_to(into).as_posix() for p in into.rglob("*") if p.is_file()} - {MANIFEST}
    if on_disk != set(files):
        extra = sorted(on_disk ^ set(files))[:5]
        raise BackupRefused(f"{path}: the archive's files differ from its manifest ({extra}).")
    for name, digest in files.items():
        if _sha256_file(into / name) != digest:
            raise BackupRefused(f"{path}: {name} is damaged (sha256 mismatch).")
    return manifest


def backup_inspect(*, path: Path) -> dict:
    """The manifest of a whole, undamaged archive (every check of a restore but the engine)."""
    with tempfile.TemporaryDirectory(prefix="lt-inspect-") as tmp:
        return _extract(Path(path), Path(tmp))


def _media_replace(media_root: Path, restored: Path, previous: Path) -> None:
    """MEDIA_ROOT becomes the archive's files: two renames; where MEDIA_ROOT cannot be moved
    (a mount point) its contents are replaced instead."""
    restored.mkdir(exist_ok=True)
    try:
        if media_root.exists():
            media_root.rename(previous)
        restored.rename(media_root)
    except OSError:
        media_root.mkdir(parents=True, exist_ok=True)
        for child in media_root.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        shutil.copytree(restored, media_root, dirs_exist_ok=True)


def backup_restore(*, path: Path, confirm=None, using: str = "default") -> dict:
    """Replace the configured database and MEDIA_ROOT with the archive's. `confirm` is asked
    (with the manifest) once every check has passed, before anything is written; returning
    False refuses (RestoreNotConfirmed). Returns the manifest."""
    engine = _engine(using)
    path = Path(path)
    media_root = Path(settings.MEDIA_ROOT)
    media_root.parent.mkdir(parents=True, exist_ok=True)
    # next to MEDIA_ROOT, so the swap of folders below is a rename on one file system
    with tempfile.TemporaryDirectory(prefix=".lt-restore-", dir=media_root.parent) as tmp:
        work = Path(tmp)
        manifest = _extract(path, work)
        if manifest.get("engine") != engine:
            raise BackupRefused(
                f"{path} is a {manifest.get('engine')} backup; the configured database is "
                f"{engine}. Restore it into a {manifest.get('engine')} database."
            )
        database = work / manifest["database"]
        if engine == "postgresql":
            _pg_check(database)
        else:
            _sqlite_check(database)
        if confirm is not None and not confirm(manifest):
            raise RestoreNotConfirmed("Restore cancelled; nothing was changed.")
        if engine == "postgresql":
            _pg_restore(database, using)
        else:
            _sqlite_restore(database, using)
        _media_replace(media_root, work / MEDIA, work / "media-before-restore")
    logger.warning("restored %s (%s, created %s)", path, engine, manifest.get("created"))
    return manifest
