"""Tracing setup and trace-id lookup."""

import re

import pytest
from opentelemetry.sdk.trace import TracerProvider

from tpf_telemetry import active_trace_id, configure_tracing, current_trace_id

HEX_TRACE_ID = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize("exporter", ["none", "console"])
def test_configure_tracing_builds_a_provider_named_for_the_service(exporter: str) -> None:
    provider = configure_tracing(service="tpf-registry", exporter=exporter)
    try:
        assert isinstance(provider, TracerProvider)
        assert provider.resource.attributes["service.name"] == "tpf-registry"
    finally:
        provider.shutdown()


def test_unknown_exporter_is_refused() -> None:
    with pytest.raises(ValueError, match="otlp"):
        configure_tracing(service="s", exporter="otlp")


def test_current_trace_id_is_the_active_spans() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("rpc") as span:
        expected = format(span.get_span_context().trace_id, "032x")
        assert current_trace_id() == expected
        assert active_trace_id() == expected


def test_outside_a_span_each_trace_id_is_fresh() -> None:
    assert active_trace_id() is None
    first, second = current_trace_id(), current_trace_id()
    assert HEX_TRACE_ID.fullmatch(first) and HEX_TRACE_ID.fullmatch(second)
    assert first != second
