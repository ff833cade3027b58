"""The aiohttp application: health, the OpenAPI document, every route, the operator console,
and the error edge.

`error_middleware` is the one place errors become HTTP answers: Problems raised by handlers,
binding errors (malformed JSON, wrong types), aiohttp's own 404/405/413, and, for a bug, a
generic 500 with a trace id, logged with its stack and never sent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web
from aiohttp.typedefs import Middleware
from opentelemetry import trace

from tpf_gateway.auth import TokenGuard
from tpf_gateway.binding import BindingError
from tpf_gateway.console import add_console
from tpf_gateway.health import Health
from tpf_gateway.http_metrics import HttpMetrics, metrics_middleware
from tpf_gateway.http_tracing import tracing_middleware
from tpf_gateway.openapi import OPENAPI_PATH, build_openapi
from tpf_gateway.problems import Problem, ProblemError, render
from tpf_gateway.routes import Family, Route
from tpf_gateway.transcoder import Transcoder
from tpf_gateway.upstream import Upstreams
from tpf_telemetry import current_trace_id

logger = logging.getLogger(__name__)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(
    routes: Sequence[Route],
    upstreams: Upstreams,
    guard: TokenGuard,
    *,
    enabled_families: Sequence[Family] = (Family.CONTROL_PLANE, Family.ADMIN),
    max_body_bytes: int,
    health_timeout_s: float = 2.0,
    metrics: HttpMetrics | None = None,
    tracer_provider: trace.TracerProvider | None = None,
) -> web.Application:
    """Without `tracer_provider`, requests are traced by the global one (if any is set)."""
    metering = [metrics_middleware(metrics)] if metrics is not None else []
    app = web.Application(
        middlewares=[
            tracing_middleware(tracer_provider),
            *metering,
            error_middleware(max_body_bytes),
        ],
        client_max_size=max_body_bytes,
    )
    Health(upstreams, timeout_s=health_timeout_s).add_routes(app)
    document = json.dumps(build_openapi(routes), separators=(",", ":")).encode()

    async def openapi(_: web.Request) -> web.Response:
        return web.Response(body=document, content_type="application/json")

    app.router.add_get(OPENAPI_PATH, openapi)
    Transcoder(routes, upstreams, guard, enabled_families=enabled_families).add_routes(app)
    add_console(app, upstreams, guard, enabled_families=enabled_families)
    return app


def error_middleware(max_body_bytes: int) -> Middleware:
    """The error edge; `max_body_bytes` is named in 413 answers."""

    @web.middleware
    async def middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
        tpf_style = request.path.startswith("/tpf/")
        try:
            return await handler(request)
        except ProblemError as error:
            return render(error.problem, tpf_style=tpf_style)
        except BindingError as error:
            problem = Problem(
                status=400,
                message=error.message,
                reason="FIELD_INVALID",
                metadata={"field": error.field} if error.field else {},
            )
            return render(problem, tpf_style=tpf_style)
        except web.HTTPRequestEntityTooLarge:
            problem = Problem(
                status=413,
                message=f"Request body is larger than {max_body_bytes} bytes",
                reason="PAYLOAD_TOO_LARGE",
                metadata={"limitBytes": str(max_body_bytes)},
            )
            return render(problem, tpf_style=tpf_style)
        except web.HTTPException as error:
            if error.status < 400:
                raise
            response = render(_http_problem(request, error), tpf_style=tpf_style)
            if "Allow" in error.headers:
                response.headers["Allow"] = error.headers["Allow"]
            return response
        # The edge every unexpected exception reaches: logged once with its stack, never sent.
        except Exception:
            # The request span's trace: the id leads to the span as well as the log line.
            trace_id = current_trace_id()
            logger.exception(
                "Unhandled error in %s %s; answered 500",
                request.method,
                request.path,
                extra={"trace_id": trace_id},
            )
            problem = Problem(
                status=500,
                message=f"An unexpected error occurred; report trace id {trace_id}.",
                reason="INTERNAL",
                metadata={"traceId": trace_id},
            )
            return render(problem, tpf_style=tpf_style)

    return middleware


def _http_problem(request: web.Request, error: web.HTTPException) -> Problem:
    if error.status == 404:
        message = (
            "Not Found"
            if request.path.startswith("/tpf/")
            else (f"No route for {request.method} {request.path}; see /openapi.json")
        )
        return Problem(status=404, message=message)
    if error.status == 405:
        return Problem(status=405, message=f"{request.method} is not allowed on {request.path}")
    return Problem(status=error.status, message=error.reason)
