"""Postgres LISTEN/NOTIFY, fanned out to waiting RPCs of this replica.

Three channels: `tpf_work` (something became runnable: wakes long-polling ClaimWork calls in
milliseconds instead of on a poll interval), `tpf_execution` (payload `tenant/execution`: wakes
WatchExecution streams, whichever replica committed the change) and `tpf_terminal` (an execution
became terminal: wakes long-polling PollTerminalEvents calls). A lost LISTEN connection is
re-opened with backoff; while it is down, waiters still wake on their own timeouts, so nothing
depends on a notification arriving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

import psycopg

log = logging.getLogger(__name__)

WORK_CHANNEL = "tpf_work"
EXECUTION_CHANNEL = "tpf_execution"
TERMINAL_CHANNEL = "tpf_terminal"


class Notifications:
    def __init__(self, url: str) -> None:
        self._url = url
        self._work = asyncio.Event()
        # Counts work notifications (and reconnects): a claim that found the queue empty at
        # generation G need not look again while the generation is still G.
        self._work_generation = 0
        self._terminal = asyncio.Event()
        self._watchers: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tpf-notifications")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait_connected(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self._connected.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def _run(self) -> None:
        pause_s = 0.1
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {WORK_CHANNEL}")
                    await conn.execute(f"LISTEN {EXECUTION_CHANNEL}")
                    await conn.execute(f"LISTEN {TERMINAL_CHANNEL}")
                    self._connected.set()
                    pause_s = 0.1
                    # Anything may have happened while we were not listening.
                    self._wake_all()
                    async for notify in conn.notifies():
                        if notify.channel == WORK_CHANNEL:
                            self._wake_work()
                        elif notify.channel == TERMINAL_CHANNEL:
                            self._wake_terminal()
                        else:
                            self._wake_execution(notify.payload)
            except psycopg.OperationalError as error:
                self._connected.clear()
                log.warning("LISTEN connection lost (%s); retrying in %.1fs", error, pause_s)
                await asyncio.sleep(pause_s)
                pause_s = min(pause_s * 2, 5.0)

    @property
    def work_generation(self) -> int | None:
        """The number of work notifications so far; None while not listening (then nothing
        can be concluded from it)."""
        return self._work_generation if self._connected.is_set() else None

    def _wake_work(self) -> None:
        self._work_generation += 1
        self._work.set()
        self._work = asyncio.Event()

    def _wake_terminal(self) -> None:
        self._terminal.set()
        self._terminal = asyncio.Event()

    def _wake_execution(self, key: str) -> None:
        for event in self._watchers.get(key, ()):
            event.set()

    def _wake_all(self) -> None:
        self._wake_work()
        self._wake_terminal()
        for events in self._watchers.values():
            for event in events:
                event.set()

    async def wait_for_work(self, timeout_s: float) -> None:
        """Return when work may be runnable, or after `timeout_s`."""
        event = self._work
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout_s)

    def terminal_signal(self) -> asyncio.Event:
        """Set at the next terminal notification (or reconnect). Take it before reading and
        wait on it after, so a notification arriving in between is not missed."""
        return self._terminal

    def watch(self, tenant_id: str, execution_id: str) -> ExecutionWatch:
        return ExecutionWatch(self, f"{tenant_id}/{execution_id}")


class ExecutionWatch:
    """Context manager: `await watch.changed(timeout)` returns after a change (or the timeout)."""

    def __init__(self, hub: Notifications, key: str) -> None:
        self._hub = hub
        self._key = key
        self._event = asyncio.Event()

    def __enter__(self) -> ExecutionWatch:
        self._hub._watchers[self._key].add(self._event)
        return self

    def __exit__(self, *exc: object) -> None:
        watchers = self._hub._watchers.get(self._key)
        if watchers is not None:
            watchers.discard(self._event)
            if not watchers:
                del self._hub._watchers[self._key]

    async def changed(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout_s)
        self._event.clear()
