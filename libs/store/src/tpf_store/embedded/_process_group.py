"""Waiting for a process group to die.

After SIGKILL of the postmaster, its children (checkpointer, walwriter, backends) are orphaned and
exit on their own once they notice the postmaster is gone. A new postmaster refuses to start while
any of them still holds the old shared memory segment, so a restart after kill must wait for them.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tenacity import Retrying, retry_if_result, stop_after_delay, wait_exponential_jitter

_PROC = Path("/proc")


def live_members(pgid: int) -> list[int]:
    """Pids in process group `pgid` that are still running (zombies do not count).

    Zombies are excluded because orphans are reaped by pid 1, and in containers pid 1 is not
    always diligent about it; a zombie holds no shared memory, so it cannot block a restart.
    """
    if not _PROC.is_dir():
        return _members_by_signal(pgid)
    members: list[int] = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # the process exited while we were scanning
        # The command name (field 2) may contain spaces and parentheses; fields after the last
        # ")" are: state, ppid, pgrp, ...
        state, _ppid, pgrp = stat.rpartition(")")[2].split()[:3]
        if int(pgrp) == pgid and state not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def wait_for_group_exit(pgid: int, *, timeout_s: float) -> None:
    """Wait until no live process remains in `pgid`; SIGKILL the stragglers at the deadline.

    Raises ProcessGroupStillAlive if even SIGKILL does not clear the group within a few seconds.
    """
    if not poll_until_empty(pgid, timeout_s=timeout_s):
        return
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
    stragglers = poll_until_empty(pgid, timeout_s=_AFTER_SIGKILL_S)
    if stragglers:
        raise ProcessGroupStillAlive(pgid, stragglers)


class ProcessGroupStillAlive(RuntimeError):
    """Processes of a group survived SIGKILL (e.g. stuck in uninterruptible I/O)."""

    def __init__(self, pgid: int, pids: list[int]) -> None:
        super().__init__(f"process group {pgid} still has live members after SIGKILL: {pids}")
        self.pgid = pgid
        self.pids = pids


_AFTER_SIGKILL_S = 5.0


def poll_until_empty(pgid: int, *, timeout_s: float) -> list[int]:
    """Poll until the group is empty, signalling nobody; the live members left at the deadline."""
    retrying = Retrying(
        stop=stop_after_delay(timeout_s),
        wait=wait_exponential_jitter(multiplier=0.005, max=0.1, jitter=0.005),
        retry=retry_if_result(bool),
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else [],
    )
    stragglers: list[int] = retrying(live_members, pgid)
    return stragglers


def _members_by_signal(pgid: int) -> list[int]:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []
    return [pgid]
