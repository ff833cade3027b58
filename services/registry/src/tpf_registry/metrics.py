"""The registry's gauges: active releases and workers by state, from a periodic snapshot.

Served by a collector over the last snapshot (not Gauges set one by one), so a release or a
worker that is gone disappears from /metrics at the next refresh instead of lingering.
Labels: tenant, pipeline and release are the operator's own bounded sets; no worker ids.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tpf_registry.domain.worker import LifecycleWindows, WorkerState, worker_state
from tpf_registry.store.metrics_postgres import RegistrySnapshot

_RELEASE_LABELS = ["tenant", "pipeline", "release"]


class RegistryMetrics(Collector):
    def __init__(self, windows: LifecycleWindows, now_ms: Callable[[], int]) -> None:
        self._windows = windows
        self._now_ms = now_ms
        self._active: list[tuple[str, str, str]] = []
        self._workers: Counter[tuple[str, str, str, str]] = Counter()

    def update(self, snapshot: RegistrySnapshot) -> None:
        now_ms = self._now_ms()
        counted: Counter[tuple[str, str, str, str]] = Counter()
        for worker in snapshot.workers:
            state = worker_state(
                draining_since_ms=worker.draining_since_ms,
                last_heartbeat_ms=worker.last_heartbeat_ms,
                now_ms=now_ms,
                windows=self._windows,
            )
            counted[
                (worker.tenant_id, worker.pipeline_id, worker.release_version, state.value)
            ] += 1
        # Every state of an active release is present (0 included), so "no HEALTHY worker"
        # is a value an alert can see rather than a missing series.
        for tenant, pipeline, release in snapshot.active_releases:
            for state in WorkerState:
                counted.setdefault((tenant, pipeline, release, state.value), 0)
        # Rebinding (not mutating) keeps a concurrent scrape on a consistent snapshot.
        self._active = list(snapshot.active_releases)
        self._workers = counted

    def describe(self) -> Iterator[Metric]:
        return iter(self._families([], Counter()))

    def collect(self) -> Iterator[Metric]:
        return iter(self._families(self._active, self._workers))

    @staticmethod
    def _families(
        active: list[tuple[str, str, str]], workers: Counter[tuple[str, str, str, str]]
    ) -> list[Metric]:
        releases = GaugeMetricFamily(
            "tpf_active_release",
            "1 for each active release (refreshed every TPF_METRICS_REFRESH_S).",
            labels=_RELEASE_LABELS,
        )
        for release in active:
            releases.add_metric(list(release), 1)
        by_state = GaugeMetricFamily(
            "tpf_workers",
            "Registered workers by release and effective state (HEALTHY, STALE, DRAINING, "
            "UNAVAILABLE).",
            labels=[*_RELEASE_LABELS, "state"],
        )
        for labels, count in sorted(workers.items()):
            by_state.add_metric(list(labels), count)
        return [releases, by_state]
