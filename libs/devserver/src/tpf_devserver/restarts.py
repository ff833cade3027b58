"""Keeping one child alive: notice that it exited, reap it, start it again with backoff.

`make dev` gives each child (every service, moto, the embedded Postgres) a Keeper thread. A
child that exits, whatever the cause (kill -9, a crash, an OOM kill, SIGTERM from someone), is
started again after a pause that doubles with each failure in a row (0.5 s, 1 s, 2 s, ... up to
30 s) and falls back to the first once the child has served for a minute. The rest of the suite
keeps running meanwhile; clients see that one service unavailable, as in production.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("tpf_devserver.supervisor")

# How often a keeper looks at its child.
POLL_S = 0.25
# A child that served this long is healthy again: its next failure restarts it after the first
# pause, not after the last one.
STABLE_S = 60.0


class ServiceFailed(RuntimeError):
    """A service exited or did not become healthy; the message holds its log tail."""


class Restartable(Protocol):
    """One child as a keeper sees it."""

    @property
    def name(self) -> str: ...

    @property
    def log_location(self) -> str: ...

    def exit_code(self) -> int | None:
        """None while it runs; its exit code once it exited (reaping it)."""
        ...

    def restart(self, stopping: threading.Event) -> str:
        """Start it again and wait until it serves; a description of the new child ("pid 42").

        Raises ServiceFailed if it exits again or is not ready in time; may return early,
        not ready, once `stopping` is set.
        """
        ...


@dataclass(frozen=True, slots=True)
class Backoff:
    first_s: float = 0.5
    factor: float = 2.0
    max_s: float = 30.0

    def delay_s(self, failures_in_a_row: int) -> float:
        return float(min(self.max_s, self.first_s * self.factor ** max(0, failures_in_a_row - 1)))


def describe_exit(code: int) -> str:
    """`exit code 1`, or `signal SIGKILL` for a negative Popen return code."""
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"signal {signal.Signals(-code).name}"
    except ValueError:
        return f"signal {-code}"


class Keeper(threading.Thread):
    """Restarts its child whenever it exits, until `stopping` is set."""

    def __init__(
        self, child: Restartable, stopping: threading.Event, backoff: Backoff = Backoff()
    ) -> None:
        super().__init__(name=f"keeper-{child.name}", daemon=True)
        self._child = child
        self._stopping = stopping
        self._backoff = backoff

    def run(self) -> None:
        failures = 0
        serving_since = time.monotonic()
        while not self._stopping.wait(POLL_S):
            code = self._child.exit_code()
            if code is None:
                if failures and time.monotonic() - serving_since >= STABLE_S:
                    failures = 0
                continue
            exited_at = time.monotonic()
            why = f"exited ({describe_exit(code)})"
            while True:
                failures += 1
                delay_s = self._backoff.delay_s(failures)
                log.warning(
                    "%s %s; restarting it in %.1f s (log %s)",
                    self._child.name,
                    why,
                    delay_s,
                    self._child.log_location,
                )
                if self._stopping.wait(delay_s):
                    return
                try:
                    started = self._child.restart(self._stopping)
                except ServiceFailed as error:
                    why = f"did not come back ({error})"
                    continue
                except Exception as error:  # a keeper must outlive any failure of its child
                    log.exception("restarting %s failed", self._child.name)
                    why = f"could not be restarted ({error})"
                    continue
                break
            if self._stopping.is_set():
                return
            serving_since = time.monotonic()
            log.info(
                "%s is serving again, %.1f s after it exited (%s)",
                self._child.name,
                serving_since - exited_at,
                started,
            )
