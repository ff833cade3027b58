"""tpf_telemetry's span encoder builds the same OTLP request as the exporter's own, for TPF's
spans (its fast path) and for anything else (events, link attributes, trace state, lists)."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import (
    encode_spans as reference_encode_spans,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tpf_telemetry import continue_trace
from tpf_telemetry._span_encoding import FastOtlpGrpcSpanExporter, encode_spans

STORED = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _finished(make: str) -> tuple[ReadableSpan, ...]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "tpf-test", "n": 1}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tpf_test")
    other = provider.get_tracer("tpf_other", "1.2", schema_url="https://opentelemetry.io/s/1")
    if make == "tpf":
        # The shapes the suite makes: a server span, steps continuing a stored traceparent
        # and linked to the batch call, a failed step, a client span with a status code.
        with tracer.start_as_current_span(
            "tpf.coordinator.v1.WorkService/CompleteWork",
            kind=SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.method": "CompleteWork"},
        ) as batch:
            batch.set_attribute("rpc.grpc.status_code", 0)
            for index, outcome in enumerate(["step_completed", "pipeline_completed"]):
                with continue_trace(
                    other,
                    "complete step",
                    traceparent=STORED,
                    attributes={"tpf.execution_id": "e-1", "tpf.step_index": index},
                ) as step:
                    step.set_attribute("tpf.outcome", outcome)
                    step.set_attribute("tpf.ratio", 0.5)
                    step.set_attribute("tpf.retried", False)
                    step.set_attribute("tpf.delta", -3)
                    step.set_attribute("tpf.note", "commande réglée ✓" if index else "")
            with continue_trace(
                other, "run step", traceparent=STORED, kind=SpanKind.CONSUMER
            ) as run:
                run.set_status(StatusCode.ERROR, "TIMEOUT")
        tracer.start_span("no parent", kind=SpanKind.CLIENT).end()
    else:
        # What only the reference encoder handles: events, a recorded exception, attributes
        # on a link, trace state, sequence and bytes values.
        with tracer.start_as_current_span("with event") as span:
            span.add_event("retry", {"attempt": 2})
        try:
            with tracer.start_as_current_span("raises"):
                raise ValueError("boom")
        except ValueError:
            pass
        context = span.get_span_context()
        tracer.start_span("link attributes", links=[Link(context, {"why": "batch"})]).end()
        stated = TraceContextTextMapPropagator().extract(
            {"traceparent": STORED, "tracestate": "vendor=value"}
        )
        tracer.start_span("trace state", context=stated).end()
        tracer.start_span("lists", attributes={"names": ["a", "b"], "raw": b"\x01"}).end()
        # Beyond int64: the reference encoder logs it and leaves the attribute out.
        tracer.start_span("huge", attributes={"n": 2**70, "kept": 1}).end()
    return exporter.get_finished_spans()


@pytest.mark.parametrize("make", ["tpf", "other"])
def test_the_request_is_the_reference_encoders(make: str) -> None:
    spans = _finished(make)
    assert len(spans) >= 5
    if make == "other":
        assert any(s.events for s in spans)
        assert any(s.context is not None and s.context.trace_state for s in spans)
        assert any(link.attributes for s in spans for link in s.links)
    assert encode_spans(spans) == reference_encode_spans(spans)


def test_spans_of_two_scopes_keep_their_order_and_grouping() -> None:
    spans = _finished("tpf")
    request = encode_spans(spans)
    (resource_spans,) = request.resource_spans
    assert [s.scope.name for s in resource_spans.scope_spans] == ["tpf_other", "tpf_test"]
    assert sum(len(s.spans) for s in resource_spans.scope_spans) == len(spans)


def test_the_grpc_exporter_sends_what_the_encoder_makes() -> None:
    spans = _finished("tpf")
    exporter = FastOtlpGrpcSpanExporter(endpoint="http://127.0.0.1:9", insecure=True)
    try:
        assert exporter._translate_data(spans) == reference_encode_spans(spans)
    finally:
        exporter.shutdown()
