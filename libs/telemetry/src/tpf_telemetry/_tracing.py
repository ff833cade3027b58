"""OpenTelemetry setup and trace-id lookup."""

import secrets

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

TRACES_EXPORTERS = ("none", "console")


def configure_tracing(*, service: str, exporter: str) -> TracerProvider:
    """Build a tracer provider for `service` exporting to `exporter` ("none" or "console").

    The first provider built in a process also becomes OpenTelemetry's global one (OTel
    refuses to replace it later), so `trace.get_tracer(__name__)` works anywhere. Pass the
    returned provider explicitly where it matters and call `shutdown()` on it at exit to
    flush buffered spans.
    """
    if exporter not in TRACES_EXPORTERS:
        raise ValueError(f"unknown traces exporter {exporter!r}; use one of {TRACES_EXPORTERS}")
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    if exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)
    return provider


def active_trace_id() -> str | None:
    """Hex trace id of the span active in this context, or None outside any span."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return trace.format_trace_id(span_context.trace_id)


def current_trace_id() -> str:
    """Hex trace id of the active span, or a fresh random one to correlate a log and a reply."""
    return active_trace_id() or secrets.token_hex(16)
