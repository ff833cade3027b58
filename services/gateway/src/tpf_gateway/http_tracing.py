"""One SERVER span per HTTP request, continuing the caller's W3C `traceparent` and answering
with the gateway's own, so a REST client can find the trace of any call it made.

Health probes are not traced: a load balancer polling every few seconds would bury the
requests people look for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping

from aiohttp import web
from aiohttp.typedefs import Middleware
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, StatusCode

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UNTRACED_PREFIXES = ("/q/health",)


def tracing_middleware(tracer_provider: trace.TracerProvider | None = None) -> Middleware:
    """The outermost middleware: its span covers error rendering, and its status is the
    status the client got. Without a provider, the global one."""
    tracer = trace.get_tracer(__name__, tracer_provider=tracer_provider)

    @web.middleware
    async def middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
        if request.path.startswith(UNTRACED_PREFIXES):
            return await handler(request)
        route = _route_template(request)
        with tracer.start_as_current_span(
            f"{request.method} {route}" if route else request.method,
            context=propagate.extract(request.headers),
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": request.method,
                "url.path": request.path,
                "url.scheme": request.scheme,
                **({"http.route": route} if route else {}),
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                response = await handler(request)
            except web.HTTPException as error:
                # aiohttp's own answers (a redirect, a 404 the error edge let through).
                _finish(span, error.status, error.headers)
                raise
            # A prepared (streamed) response has sent its headers already.
            _finish(span, response.status, None if response.prepared else response.headers)
            return response

    return middleware


def _route_template(request: web.Request) -> str | None:
    """The matched route's template (`/tpf/control-plane/tenants/{tenantId}/executions`):
    bounded, unlike the path with its ids. None when no route matched."""
    route = request.match_info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else None


def _finish(span: Span, status: int, headers: MutableMapping[str, str] | None) -> None:
    span.set_attribute("http.response.status_code", status)
    # HTTP conventions: on a server span only 5xx is a failure; 4xx is the client's doing.
    if status >= 500:
        span.set_status(StatusCode.ERROR)
    if headers is not None:
        propagate.inject(headers)
