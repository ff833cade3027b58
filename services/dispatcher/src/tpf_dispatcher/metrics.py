"""The dispatcher's worker-call metrics: step duration and transport errors by transport.

Transports are local, grpc, rest and sqs; no execution or worker ids become labels. The
engine's own counters are in engine_metrics.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

# Steps range from in-process calls to human-scale work behind REST or SQS.
_STEP_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class DispatcherMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        self.step_duration = Histogram(
            "tpf_step_duration_seconds",
            "Time a worker took to run one claimed work item, by transport and outcome "
            "(step_completed, pipeline_completed, await_requested, failed).",
            ["transport", "outcome"],
            buckets=_STEP_BUCKETS,
            registry=registry,
        )
        self.transport_errors = Counter(
            "tpf_dispatcher_transport_errors",
            "Worker calls that failed in transport (unreachable, timed out, refused, or a "
            "worker whose identity did not match), by transport.",
            ["transport"],
            registry=registry,
        )
