"""One CLIENT span per outgoing gRPC call, whose context the call carries as `traceparent`.

Used by `client_channel`'s interceptors (and by any grpc.aio channel built elsewhere through
`trace_propagating_interceptors`). A unary call's span ends with the call and records its
status code; a streaming call's span ends when the stream is done.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from tpf_telemetry import quiet_span

_Invoke = Callable[[], Awaitable[Any]]


def _method_name(method: str | bytes) -> str:
    text = method.decode() if isinstance(method, bytes) else method
    return text.lstrip("/")


class ClientSpans:
    """Makes the CLIENT spans; without a provider, the global one (none set: no spans, and
    the caller's own context is propagated unchanged)."""

    def __init__(self, tracer_provider: trace.TracerProvider | None = None) -> None:
        self._tracer = trace.get_tracer(__name__, tracer_provider=tracer_provider)

    def _start(self, method: str | bytes) -> trace.Span:
        quiet = quiet_span(self._tracer)
        if quiet is not None:
            return quiet
        full_method = _method_name(method)
        service, _, name = full_method.rpartition("/")
        return self._tracer.start_span(
            full_method,
            kind=SpanKind.CLIENT,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
        )

    async def unary(self, method: str | bytes, invoke: _Invoke) -> Any:
        """Run `invoke` (which sends the call) inside the span and wait for its answer."""
        span = self._start(method)
        with trace.use_span(span, end_on_exit=True, record_exception=False):
            call = await invoke()
            try:
                await call
            except grpc.aio.AioRpcError as error:
                _record_code(span, error.code())
            else:
                _record_code(span, grpc.StatusCode.OK)
            # The caller awaits the call again and gets the same answer (or error).
            return call

    async def streaming(self, method: str | bytes, invoke: _Invoke) -> Any:
        """Run `invoke` inside the span, which ends when the stream is done."""
        span = self._start(method)
        try:
            with trace.use_span(span, end_on_exit=False, record_exception=False):
                call = await invoke()
        except BaseException:
            span.end()
            raise
        call.add_done_callback(lambda _: span.end())
        return call


def _record_code(span: trace.Span, code: grpc.StatusCode) -> None:
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    # OTel RPC conventions: on the client, every status but OK is an error.
    if code is not grpc.StatusCode.OK:
        span.set_status(StatusCode.ERROR, code.name)
