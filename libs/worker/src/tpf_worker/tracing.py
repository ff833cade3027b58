"""Spans of a worker call on both ends, and the W3C context beside (never inside) the TPF
envelopes: gRPC metadata (tpf_rpc's interceptors), HTTP headers, SQS message attributes.

The dispatcher's CLIENT span carries its context to the worker, whose SERVER (or CONSUMER)
span continues it and is the command's span: it covers the pipeline code, so no `execute
step` span is made under it (one span less per step to make and export). A pipeline the
dispatcher hosts has no such span around it, and gets `execute step`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from aiohttp import web
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, StatusCode

from tpf_worker.protocol.command import Command

# A proxy: it uses whichever provider the process configured (none set: no spans).
_tracer = trace.get_tracer("tpf_worker")

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Set while a transport's SERVER or CONSUMER span stands for the command being run.
_transport_span: ContextVar[bool] = ContextVar("tpf_worker_transport_span", default=False)


def _command_attributes(command: Command) -> dict[str, str | int]:
    # Which execution and step: the dispatcher's `run step` and the coordinator's `claim step`
    # carry the rest (tenant, pipeline, release, attempt). Each attribute costs CPU to make
    # and to export on every step.
    return {
        "tpf.execution_id": command.execution_id,
        "tpf.step_index": command.current_step_index,
    }


@contextmanager
def transport_span(command: Command) -> Iterator[None]:
    """Around a transport's call of the command handler: its current span (the SERVER or
    CONSUMER span of the request) gets the command's attributes and stands for the command,
    so `execute_span` inside makes no span of its own."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes(_command_attributes(command))
    token = _transport_span.set(True)
    try:
        yield
    finally:
        _transport_span.reset(token)


@contextmanager
def execute_span(command: Command) -> Iterator[Span]:
    """`execute step`: the pipeline code running `command`'s steps, in the current context;
    inside `transport_span`, the transport's span instead."""
    if _transport_span.get():
        yield trace.get_current_span()
        return
    with _tracer.start_as_current_span(
        "execute step", attributes=_command_attributes(command)
    ) as span:
        yield span


@contextmanager
def client_call(name: str, attributes: dict[str, str | int]) -> Iterator[dict[str, str]]:
    """A CLIENT span for one call to a worker; yields the headers that carry its context."""
    with _tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes):
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        yield carrier


@contextmanager
def consumer_span(name: str, parent: Context, attributes: dict[str, str | int]) -> Iterator[Span]:
    """A CONSUMER span continuing the context a message carried (`parent`)."""
    with _tracer.start_as_current_span(
        name, context=parent, kind=SpanKind.CONSUMER, attributes=attributes
    ) as span:
        yield span


def record_http_status(status: int) -> None:
    """On the current CLIENT span: the answer's status; any non-2xx is a failed call."""
    span = trace.get_current_span()
    span.set_attribute("http.response.status_code", status)
    if not 200 <= status < 300:
        span.set_status(StatusCode.ERROR)


@web.middleware
async def server_span_middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """A REST worker's SERVER span per request, continuing the dispatcher's `traceparent`."""
    with _tracer.start_as_current_span(
        f"{request.method} {request.path}",
        context=propagate.extract(request.headers),
        kind=SpanKind.SERVER,
        attributes={"http.request.method": request.method, "url.path": request.path},
    ) as span:
        response = await handler(request)
        span.set_attribute("http.response.status_code", response.status)
        if response.status >= 500:
            span.set_status(StatusCode.ERROR)
        return response
