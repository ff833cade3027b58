"""gRPC server metrics: requests by method and status code, and their latency.

The labels are the service and method names the server registered (a fixed set) and the
status code name, so cardinality stays bounded whatever callers send.
"""

# grpc.RpcMethodHandler is generic only in the stubs, so annotations must stay unevaluated.
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram

from tpf_config import CommonSettings, ConfigError, env_var_name
from tpf_rpc._handlers import ServicerContext
from tpf_rpc.interceptors import _AroundInterceptor
from tpf_telemetry.metrics import MetricsEndpoint

# Claims long-poll up to 30 s by default, so the buckets reach past that.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class GrpcServerMetrics:
    """`tpf_grpc_server_requests_total` and `tpf_grpc_server_duration_seconds`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "tpf_grpc_server_requests",
            "gRPC calls handled, by service, method and status code.",
            ["grpc_service", "grpc_method", "grpc_code"],
            registry=registry,
        )
        self.duration = Histogram(
            "tpf_grpc_server_duration_seconds",
            "Time to handle a gRPC call, by service and method (long polls included).",
            ["grpc_service", "grpc_method"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )


class MetricsInterceptor(_AroundInterceptor):
    """Counts and times every call. Sits outside the error interceptor, so it sees the status
    code the client gets (an unexpected exception counts as INTERNAL)."""

    def __init__(self, metrics: GrpcServerMetrics) -> None:
        self._metrics = metrics

    @asynccontextmanager
    async def _around(
        self, details: grpc.HandlerCallDetails, context: ServicerContext
    ) -> AsyncIterator[None]:
        service, _, method = details.method.lstrip("/").rpartition("/")
        started = time.perf_counter()
        cancelled = False
        try:
            yield
        except asyncio.CancelledError:
            cancelled = True  # the client went away or the server is stopping
            raise
        finally:
            elapsed = time.perf_counter() - started
            code = grpc.StatusCode.CANCELLED if cancelled else context.code() or grpc.StatusCode.OK
            self._metrics.duration.labels(service, method).observe(elapsed)
            self._metrics.requests.labels(service, method, code.name).inc()


def start_metrics_endpoint(
    settings: CommonSettings, registry: CollectorRegistry
) -> MetricsEndpoint | None:
    """Serve `registry` at /metrics on TPF_METRICS_PORT; None when the port is 0 (off).

    Raises ConfigError naming the variables when the address cannot be bound.
    """
    if settings.metrics_port == 0:
        return None
    endpoint = MetricsEndpoint(registry, host=settings.metrics_host, port=settings.metrics_port)
    try:
        endpoint.start()
    except OSError as error:
        raise ConfigError(
            f"Cannot serve metrics on {settings.metrics_host}:{settings.metrics_port} "
            f"({error.strerror or error}); change "
            f"{env_var_name(type(settings), 'metrics_host')} or "
            f"{env_var_name(type(settings), 'metrics_port')}."
        ) from None
    return endpoint
