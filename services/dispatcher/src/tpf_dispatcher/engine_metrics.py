"""The dispatcher engine's counters and in-flight work, read from its snapshot at scrape time.

They are the counters GetDispatcherStatus reports, so the claim and report loops pay nothing
for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tpf_dispatcher.dispatcher import DispatcherState, Snapshot


class EngineCollector(Collector):
    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot

    def describe(self) -> Iterator[Metric]:
        return iter(self._families(None))

    def collect(self) -> Iterator[Metric]:
        return iter(self._families(self._snapshot()))

    @staticmethod
    def _families(snapshot: Snapshot | None) -> list[Metric]:
        in_flight = GaugeMetricFamily(
            "tpf_dispatcher_in_flight", "Claimed work items running or waiting to be reported."
        )
        capacity = GaugeMetricFamily(
            "tpf_dispatcher_max_in_flight", "The most work items this dispatcher holds at once."
        )
        draining = GaugeMetricFamily(
            "tpf_dispatcher_draining", "1 while the dispatcher drains (SIGTERM), else 0."
        )
        items = CounterMetricFamily(
            "tpf_dispatcher_work_items",
            "Work items by what happened to them: claimed, completed and failed (reported and "
            "accepted), rejected (stale), lease_lost, abandoned (unreported at shutdown), "
            "undelivered (the report could not be delivered).",
            labels=["event"],
        )
        if snapshot is not None:
            in_flight.add_metric([], snapshot.in_flight)
            capacity.add_metric([], snapshot.max_in_flight)
            draining.add_metric([], 1 if snapshot.state is DispatcherState.DRAINING else 0)
            for event, count in asdict(snapshot.counters).items():
                items.add_metric([event], count)
        return [in_flight, capacity, draining, items]
