"""Refresh gauges from a cheap query on a timer, not on every scrape.

Several Prometheus servers (or a fast scrape interval) then cost the database nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)


class PeriodicRefresh:
    """Runs `refresh` now and then every `interval_s` until `close`; a failed run is logged
    and retried at the next tick (the gauges keep their last values meanwhile)."""

    def __init__(self, name: str, refresh: Callable[[], Awaitable[None]], interval_s: float):
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self._name = name
        self._refresh = refresh
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"tpf-metrics-{self._name}")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                await self._refresh()
            # The gauges must outlive a failed query (e.g. Postgres restarting).
            except Exception as error:
                logger.warning("refreshing %s metrics failed: %s", self._name, error)
            await asyncio.sleep(self._interval_s)
