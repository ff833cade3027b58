"""Database pool use, read from psycopg_pool's `get_stats()` at scrape time (no I/O)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

PoolStats = Callable[[], Mapping[str, int]]


class PoolStatsCollector(Collector):
    """`tpf_db_pool_*` for one named pool. `stats` is the pool's `get_stats` (psycopg_pool's
    keys: pool_size, pool_available, pool_max, requests_waiting, requests_num,
    requests_wait_ms, requests_errors, connections_num, connections_errors).

    Its cumulative counters are never reset here (`pop_stats` would steal them from others).
    """

    def __init__(self, pool_name: str, stats: PoolStats) -> None:
        self._pool_name = pool_name
        self._stats = stats

    def describe(self) -> Iterator[Metric]:
        # Names only; values come at collect time.
        return iter(self._families({}))

    def collect(self) -> Iterator[Metric]:
        return iter(self._families(self._stats()))

    def _families(self, stats: Mapping[str, int]) -> list[Metric]:
        labels = ["pool"]
        value = [self._pool_name]
        size = stats.get("pool_size", 0)
        available = stats.get("pool_available", 0)
        connections = GaugeMetricFamily(
            "tpf_db_pool_connections",
            "Connections the pool holds, by state (in_use: lent out; idle: available).",
            labels=[*labels, "state"],
        )
        connections.add_metric([*value, "in_use"], max(size - available, 0))
        connections.add_metric([*value, "idle"], available)
        limit = GaugeMetricFamily(
            "tpf_db_pool_max_connections", "The pool's maximum size.", labels=labels
        )
        limit.add_metric(value, stats.get("pool_max", 0))
        waiting = GaugeMetricFamily(
            "tpf_db_pool_waiting_requests",
            "Requests waiting for a connection right now.",
            labels=labels,
        )
        waiting.add_metric(value, stats.get("requests_waiting", 0))
        requests = CounterMetricFamily(
            "tpf_db_pool_requests",
            "Connection requests served by the pool.",
            labels=labels,
        )
        requests.add_metric(value, stats.get("requests_num", 0))
        wait = CounterMetricFamily(
            "tpf_db_pool_wait_seconds",
            "Time requests spent waiting for a connection.",
            labels=labels,
        )
        wait.add_metric(value, stats.get("requests_wait_ms", 0) / 1000)
        errors = CounterMetricFamily(
            "tpf_db_pool_errors",
            "Failures by kind (request: timed out or refused; connection: could not connect).",
            labels=[*labels, "kind"],
        )
        errors.add_metric([*value, "request"], stats.get("requests_errors", 0))
        errors.add_metric([*value, "connection"], stats.get("connections_errors", 0))
        return [connections, limit, waiting, requests, wait, errors]
