"""The gateway's HTTP metrics: requests by route template, method and status, and latency.

The route label is the template a request matched (`/tpf/control-plane/tenants/{tenantId}/
executions`), never the path, so tenants and ids do not multiply series; requests that match
no route share one label.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry, Counter, Histogram

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UNMATCHED_ROUTE = "unmatched"
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "tpf_http_requests",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "code"],
            registry=registry,
        )
        self.duration = Histogram(
            "tpf_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method.",
            ["route", "method"],
            buckets=_BUCKETS,
            registry=registry,
        )


def metrics_middleware(metrics: HttpMetrics) -> Middleware:
    """Outermost middleware: it sees the status the error edge chose."""

    @web.middleware
    async def middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as error:
            status = error.status
            raise
        finally:
            route = _route_of(request)
            metrics.duration.labels(route, request.method).observe(time.perf_counter() - started)
            metrics.requests.labels(route, request.method, str(status)).inc()

    return middleware


def _route_of(request: web.Request) -> str:
    resource = request.match_info.route.resource
    if resource is None:
        return UNMATCHED_ROUTE
    return resource.canonical
