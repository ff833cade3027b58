"""Prometheus metrics: a registry per service, its /metrics endpoint, periodic gauges.

Every TPF metric is named `tpf_*`, counters end in `_total`, durations in `_seconds`, and no
label carries an unbounded value (no execution, interaction or request ids). docs/operations.md
lists every metric.
"""

from tpf_telemetry.metrics._endpoint import MetricsEndpoint, metrics_text
from tpf_telemetry.metrics._periodic import PeriodicRefresh
from tpf_telemetry.metrics._pool import PoolStatsCollector
from tpf_telemetry.metrics._registry import new_registry

__all__ = [
    "MetricsEndpoint",
    "PeriodicRefresh",
    "PoolStatsCollector",
    "metrics_text",
    "new_registry",
]
