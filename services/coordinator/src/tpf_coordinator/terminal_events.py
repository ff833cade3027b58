"""Use cases of the terminal-event feed: long-polled reads after a position, consumer cursors."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from tpf_coordinator.domain.event_feed import (
    EventCursor,
    FeedPosition,
    TenantSet,
    TerminalEvent,
    next_position,
    terminal_event_of,
)
from tpf_coordinator.notifications import Notifications
from tpf_coordinator.store.protocol import EventFeedStore

# Without any notification a waiting poll reads again this often (a lost NOTIFY, a LISTEN
# connection being re-opened).
_IDLE_RECHECK_S = 1.0
# After a notification the new event may not be readable yet: an older transaction still runs
# and holds the horizon back. Read again soon, then less and less often.
_FIRST_RECHECK_S = 0.02
# Reads of one poll are at least this far apart, however many notifications arrive (a busy
# system ends many executions per second, most of them maybe of other tenants).
_MIN_READ_INTERVAL_S = 0.02


@dataclass(frozen=True, slots=True)
class FeedPage:
    events: list[TerminalEvent]
    next_position: FeedPosition


class TerminalEventFeed:
    def __init__(
        self,
        *,
        store: EventFeedStore,
        notifications: Notifications,
        now_ms: Callable[[], int],
    ) -> None:
        self._store = store
        self._notifications = notifications
        self._now_ms = now_ms

    async def poll(
        self, after: FeedPosition, tenants: TenantSet, *, limit: int, wait_ms: int
    ) -> FeedPage:
        """Events after `after`, waiting up to `wait_ms` for the first one."""
        deadline = time.monotonic() + wait_ms / 1000
        pause_s = _IDLE_RECHECK_S
        while True:
            signal = self._notifications.terminal_signal()
            read_at = time.monotonic()
            page = await self._store.read(after, tenants, limit=limit)
            events = [terminal_event_of(row) for row in page.rows]
            position = next_position(
                after, events, full=len(events) >= limit, horizon_xact_id=page.horizon_xact_id
            )
            remaining = deadline - time.monotonic()
            if events or remaining <= 0:
                return FeedPage(events, position)
            # Nothing of ours before the horizon: the next read starts there, so it never walks
            # the same rows of other tenants again.
            after = position
            woken = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(signal.wait(), min(remaining, pause_s))
                woken = True
            if woken:
                pause_s = _FIRST_RECHECK_S
                spacing_s = read_at + _MIN_READ_INTERVAL_S - time.monotonic()
                if spacing_s > 0:
                    await asyncio.sleep(spacing_s)
            else:
                pause_s = min(pause_s * 2, _IDLE_RECHECK_S)

    async def open_cursor(
        self, consumer_id: str, tenants: TenantSet, *, actor: str
    ) -> tuple[EventCursor, bool]:
        return await self._store.open_cursor(
            consumer_id, tenants, now_ms=self._now_ms(), actor=actor
        )

    async def advance_cursor(
        self, consumer_id: str, tenants: TenantSet, position: FeedPosition, *, actor: str
    ) -> tuple[EventCursor, bool]:
        return await self._store.advance_cursor(
            consumer_id, tenants, position, now_ms=self._now_ms(), actor=actor
        )
