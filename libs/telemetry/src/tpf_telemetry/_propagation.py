"""W3C trace context kept beside durable work, and spans that continue it.

An execution outlives the request that submitted it: its steps are claimed, run and completed
by other calls, long after. The submit's `traceparent` is stored with the execution, and each
later span about it starts as a child of that stored context, linked to the call it runs in
(a claim or a completion batch serves many executions, so it cannot be their parent).
"""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from tpf_telemetry._tracing import quiet_span

# Always W3C, whatever OTEL_PROPAGATORS says: the stored value is a `traceparent` header.
_W3C = TraceContextTextMapPropagator()


def current_traceparent() -> str | None:
    """The W3C `traceparent` of the active span, or None outside a (sampled or not) span."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier.get("traceparent")


def traceparent_context(traceparent: str | None) -> Context | None:
    """A context whose parent is the span `traceparent` names; None when it is absent or
    malformed (a stored value is never trusted to be well formed)."""
    if not traceparent:
        return None
    context = _W3C.extract({"traceparent": traceparent})
    if not trace.get_current_span(context).get_span_context().is_valid:
        return None
    return context


@contextmanager
def continue_trace(
    tracer: trace.Tracer,
    name: str,
    *,
    traceparent: str | None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, AttributeValue] | None = None,
    start_time: int | None = None,
) -> Iterator[Span]:
    """A span, made current, that continues the trace `traceparent` names.

    It links to the span active here (the claim or completion call it runs in) when that
    belongs to another trace. Without a usable `traceparent` (an execution stored before
    traces were kept) it is simply a child of the active span.
    """
    parent = traceparent_context(traceparent)
    quiet = quiet_span(tracer, parent)
    if quiet is not None:
        with trace.use_span(quiet, end_on_exit=False):
            yield quiet
        return
    links: list[Link] = []
    if parent is not None:
        here = trace.get_current_span().get_span_context()
        there = trace.get_current_span(parent).get_span_context()
        if here.is_valid and here.trace_id != there.trace_id:
            links.append(Link(here))
    with tracer.start_as_current_span(
        name,
        context=parent,
        kind=kind,
        links=links,
        attributes=attributes,
        start_time=start_time,
    ) as span:
        yield span


def sqs_message_attributes() -> dict[str, dict[str, str]]:
    """The active context as SQS message attributes (`traceparent`, `tracestate`), to send
    beside a message body that must stay as it is."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {name: {"DataType": "String", "StringValue": value} for name, value in carrier.items()}


def sqs_attribute_names() -> list[str]:
    """The message attributes to ask ReceiveMessage for, so the context arrives."""
    return sorted(propagate.get_global_textmap().fields)


def context_of_sqs_message(message: Mapping[str, Any]) -> Context:
    """The context a received SQS message carries in its attributes (none: an empty one,
    so a span started in it begins a new trace)."""
    attributes = message.get("MessageAttributes") or {}
    carrier = {
        name: value["StringValue"]
        for name, value in attributes.items()
        if isinstance(value, Mapping) and isinstance(value.get("StringValue"), str)
    }
    return propagate.extract(carrier)
