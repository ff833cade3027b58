"""The coordinator's claim latency over a window, from its Prometheus histogram.

`tpf_claim_duration_seconds` times one claim transaction (select, lease, build the work items),
long-poll waiting excluded. Reading `/metrics` just before and just after a timed window and
subtracting gives the claims of that window alone: their count, exact mean (`_sum / _count`)
and percentiles estimated inside the histogram's buckets by linear interpolation, as
Prometheus' `histogram_quantile` does (so p50 is only as fine as the buckets around it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

METRIC = "tpf_claim_duration_seconds"


@dataclass(frozen=True)
class ClaimHistogram:
    """Cumulative bucket counts by upper bound (seconds), plus sum and count."""

    buckets: tuple[tuple[float, float], ...]
    total_s: float
    count: float

    def minus(self, earlier: ClaimHistogram) -> ClaimHistogram:
        before = dict(earlier.buckets)
        return ClaimHistogram(
            tuple((bound, n - before.get(bound, 0.0)) for bound, n in self.buckets),
            self.total_s - earlier.total_s,
            self.count - earlier.count,
        )

    def quantile(self, q: float) -> float | None:
        """`histogram_quantile(q)` in seconds; None without observations."""
        if self.count <= 0 or not self.buckets:
            return None
        rank = q * self.count
        lower_bound, lower_count = 0.0, 0.0
        for bound, cumulative in self.buckets:
            if cumulative >= rank:
                if math.isinf(bound):
                    return lower_bound  # beyond the last finite bucket: its bound, as Prometheus
                inside = cumulative - lower_count
                share = 0.0 if inside <= 0 else (rank - lower_count) / inside
                return lower_bound + (bound - lower_bound) * share
            lower_bound, lower_count = bound, cumulative
        return lower_bound

    def figures(self) -> dict[str, float | int | None]:
        def ms(value: float | None) -> float | None:
            return None if value is None else round(value * 1000, 3)

        return {
            "claims": int(self.count),
            "mean_ms": ms(self.total_s / self.count) if self.count > 0 else None,
            "p50_ms": ms(self.quantile(0.50)),
            "p90_ms": ms(self.quantile(0.90)),
            "p99_ms": ms(self.quantile(0.99)),
        }


def parse(text: str) -> ClaimHistogram:
    buckets: list[tuple[float, float]] = []
    total_s = count = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != METRIC:
            continue
        for sample in family.samples:
            if sample.name == f"{METRIC}_bucket":
                buckets.append((float(sample.labels["le"]), float(sample.value)))
            elif sample.name == f"{METRIC}_sum":
                total_s = float(sample.value)
            elif sample.name == f"{METRIC}_count":
                count = float(sample.value)
    return ClaimHistogram(tuple(sorted(buckets)), total_s, count)


class ClaimLatency:
    """Scrapes one coordinator's `/metrics` on demand (not periodically: two reads per run)."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def read(self) -> ClaimHistogram:
        url = f"http://127.0.0.1:{self.port}/metrics"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            response.raise_for_status()
            return parse(await response.text())
