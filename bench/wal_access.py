"""Where an existing Postgres server's WAL is, and the pg_waldump that reads it.

The benches count write transactions exactly as COMMIT records in the WAL (pg_waldump). With
the embedded server that is its own data directory; with `--database-url` it works when the
server runs on this host, its data directory is readable by us (root, or the postgres user)
and a pg_waldump of the server's major version is installed (Debian:
/usr/lib/postgresql/<major>/bin). Otherwise the exact count is omitted, as before.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

_LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}


def _waldump_for(major: int) -> Path | None:
    candidates = [Path(f"/usr/lib/postgresql/{major}/bin/pg_waldump")]
    found = shutil.which("pg_waldump")
    if found:
        candidates.append(Path(found))
    for candidate in candidates:
        if not candidate.is_file():
            continue
        version = subprocess.run(
            [str(candidate), "--version"], capture_output=True, text=True, check=False
        ).stdout
        # "pg_waldump (PostgreSQL) 15.20": the WAL format changes between major versions.
        if f") {major}." in version or f") {major} " in version:
            return candidate
    return None


def server_wal(maintenance_url: str) -> tuple[Path, Path] | None:
    """(pg_wal directory, pg_waldump) of the server behind `maintenance_url`, when readable."""
    host = urlsplit(maintenance_url).hostname or ""
    if host not in _LOCAL_HOSTS and not host.startswith("/"):
        return None
    try:
        with psycopg.connect(maintenance_url, autocommit=True) as conn:
            data_row = conn.execute("SHOW data_directory").fetchone()
            version_row = conn.execute("SHOW server_version_num").fetchone()
    except psycopg.Error:  # data_directory needs superuser or pg_read_all_settings
        return None
    if data_row is None or version_row is None:
        return None
    wal_dir = Path(str(data_row[0])) / "pg_wal"
    if not (wal_dir.is_dir() and os.access(wal_dir, os.R_OK | os.X_OK)):
        return None
    waldump = _waldump_for(int(version_row[0]) // 10000)
    return None if waldump is None else (wal_dir, waldump)


def postmaster_pid(wal_dir: Path) -> int | None:
    """The server's postmaster (first line of postmaster.pid beside pg_wal), so that its CPU
    is counted as Postgres' rather than as another process's."""
    try:
        return int((wal_dir.parent / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
