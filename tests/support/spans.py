"""Spans made through the process's global tracer provider, recorded in memory.

Product code takes its tracers from the global provider (set once per process by the first
configure_tracing). Tests of that code add an in-memory exporter to it, setting a plain SDK
provider first when none is set yet.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def global_sdk_provider() -> TracerProvider:
    """The global provider, an SDK one (set now when none is set)."""
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(TracerProvider())
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider), f"global provider is {provider!r}"
    return provider


@pytest.fixture
def recorded_spans() -> Iterator[InMemorySpanExporter]:
    """Every span the global provider ends during the test."""
    exporter = InMemorySpanExporter()
    global_sdk_provider().add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()  # its processor stays registered, exporting nothing


def in_trace(spans: tuple[ReadableSpan, ...], trace_id: int) -> list[ReadableSpan]:
    return [s for s in spans if s.context is not None and s.context.trace_id == trace_id]


def parent_of(span: ReadableSpan, spans: tuple[ReadableSpan, ...]) -> ReadableSpan | None:
    if span.parent is None:
        return None
    return next(
        (s for s in spans if s.context is not None and s.context.span_id == span.parent.span_id),
        None,
    )
