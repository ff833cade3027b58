"""`--metrics` for the benches: each service serves /metrics, scraped as Prometheus would.

Off, the services run with no metrics port (the gRPC metrics interceptor is not installed, the
gauge queries do not run). On, every service gets TPF_METRICS_PORT and a scraper reads every
endpoint each `interval_s` during the whole run, so the figures include serving the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from tpf_testkit.ports import free_port


class MetricsScrape:
    def __init__(self, *, enabled: bool, interval_s: float) -> None:
        self.enabled = enabled
        self._interval_s = interval_s
        self._ports: dict[str, int] = {}
        self.scrapes = 0
        self.failures = 0

    def env(self, service: str) -> dict[str, str]:
        """The metrics variables of `service` (none when off); its port is scraped from now on."""
        if not self.enabled:
            return {}
        port = free_port()
        self._ports[service] = port
        return {"TPF_METRICS_PORT": str(port), "TPF_METRICS_HOST": "127.0.0.1"}

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        task = asyncio.create_task(self._scrape_forever()) if self.enabled else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def figures(self) -> dict[str, object]:
        return {"enabled": self.enabled, "scrapes": self.scrapes, "failures": self.failures}

    async def _scrape_forever(self) -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                for port in list(self._ports.values()):
                    try:
                        async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                            await response.read()
                            self.scrapes += response.status == 200
                    except aiohttp.ClientError:
                        self.failures += 1  # a dispatcher of a finished run is gone
                await asyncio.sleep(self._interval_s)
