"""Lock files a crashed postmaster leaves behind, and when they may be removed.

postgres writes its pid into `pgdata/postmaster.pid` and into `.s.PGSQL.<port>.lock` next to its
unix socket. A new postmaster removes such a file itself when that pid is gone, but refuses to
start ("lock file ... already exists") while any process answers to the pid: a zombie (a dead
postmaster nobody reaped, e.g. under a container's pid 1) or an unrelated process that got the
pid again. Those files are stale, and removing them is safe once nothing of the old server is
left: its backends run in its process group, so an empty group means none of them still holds
the old shared memory (which is what the lock protects).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from tpf_store.embedded._process_group import poll_until_empty

_LOG = logging.getLogger(__name__)
_PROC = Path("/proc")
_POSTGRES_COMMAND = "postgres"


def socket_lock_file(socket_dir: Path, port: int) -> Path:
    return socket_dir / f".s.PGSQL.{port}.lock"


def remove_if_stale(lock_file: Path, *, wait_s: float) -> bool:
    """Remove `lock_file` if the postmaster it names is dead and left nothing running.

    The dead postmaster's backends get up to `wait_s` to exit (they do by themselves soon after
    it died); they are never signalled, since the pid may belong to someone else by now.
    Returns whether the file was removed. A lock held by a live postgres process is kept, so a
    second server on the same data dir still fails as postgres intends.
    """
    pid = _pid_in(lock_file)
    if pid is None or _is_live_postgres(pid) or poll_until_empty(pid, timeout_s=wait_s):
        return False
    try:
        lock_file.unlink()
    except FileNotFoundError:
        return False
    _LOG.warning(
        "removed the lock file of a dead postmaster",
        extra={"lock_file": str(lock_file), "pid": pid},
    )
    return True


def _pid_in(lock_file: Path) -> int | None:
    try:
        first_line = lock_file.read_text().split("\n", 1)[0].strip()
    except (FileNotFoundError, PermissionError, UnicodeDecodeError):
        return None
    # A negative pid marks a single-user backend; never a server we started.
    return int(first_line) if first_line.isdigit() else None


def _is_live_postgres(pid: int) -> bool:
    """Whether `pid` is a running (not zombie) postgres; without /proc, whether it exists."""
    if not _PROC.is_dir():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    command = stat[stat.find("(") + 1 : stat.rfind(")")]
    state = stat.rpartition(")")[2].split()[0]
    return state not in ("Z", "X") and command == _POSTGRES_COMMAND
