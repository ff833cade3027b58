"""Tracing setup from the OTEL_* variables, trace-id lookup and trace continuation."""

import re

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision

from tests.support.spans import global_sdk_provider
from tpf_telemetry import (
    active_span_id,
    active_trace_id,
    configure_tracing,
    context_of_sqs_message,
    continue_trace,
    current_trace_id,
    current_traceparent,
    quiet_span,
    sqs_attribute_names,
    sqs_message_attributes,
    traceparent_context,
    tracing_options,
)
from tpf_telemetry._span_encoding import FastOtlpGrpcSpanExporter as GrpcExporter

HEX_TRACE_ID = re.compile(r"[0-9a-f]{32}")
OTEL_VARIABLES = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
)


@pytest.fixture(autouse=True)
def _clean_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # The providers built here must not become the process's global one (the first would,
    # and it is shut down at the end of its test), so another test's spans still record.
    global_sdk_provider()


def _exporter_types(provider: TracerProvider) -> list[type]:
    # The SDK keeps its processors privately; this is the one place a test needs to look.
    processors = provider._active_span_processor._span_processors
    return [type(p.span_exporter) for p in processors]  # type: ignore[attr-defined]


@pytest.mark.parametrize("exporter", ["none", "console"])
def test_configure_tracing_builds_a_provider_named_for_the_service(exporter: str) -> None:
    provider = configure_tracing(service="tpf-registry", exporter=exporter)
    try:
        assert isinstance(provider, TracerProvider)
        assert provider.resource.attributes["service.name"] == "tpf-registry"
    finally:
        provider.shutdown()


def test_unknown_exporter_is_refused() -> None:
    with pytest.raises(ValueError, match=r"OTEL_TRACES_EXPORTER.*jaeger"):
        configure_tracing(service="s", exporter="jaeger")


@pytest.mark.parametrize(
    ("protocol", "expected"), [("grpc", GrpcExporter), ("http/protobuf", HttpExporter)]
)
def test_otlp_exporter_follows_the_protocol_variable(
    monkeypatch: pytest.MonkeyPatch, protocol: str, expected: type
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    # Nothing listens there; no span is made, so nothing is sent.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    provider = configure_tracing(service="s")
    try:
        assert _exporter_types(provider) == [expected]
    finally:
        provider.shutdown()


def test_otlp_defaults_to_http_and_may_be_combined_with_console(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    provider = configure_tracing(service="s", exporter="console,otlp")
    try:
        assert [t.__name__ for t in _exporter_types(provider)] == [
            "ConsoleSpanExporter",
            "OTLPSpanExporter",
        ]
        assert _exporter_types(provider)[1] is HttpExporter
    finally:
        provider.shutdown()


def test_the_traces_protocol_variable_wins_over_the_general_one() -> None:
    options = tracing_options(
        {
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
        }
    )
    assert options.otlp_protocol == "grpc"
    assert options.exporters == ("none",)


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "OTEL_EXPORTER_OTLP_PROTOCOL"),
        ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER"),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
            "OTEL_TRACES_SAMPLER_ARG",
        ),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"},
            "OTEL_TRACES_SAMPLER_ARG",
        ),
    ],
)
def test_invalid_variables_are_named(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ValueError, match=variable):
        tracing_options(environ)


def test_samplers_follow_the_variables() -> None:
    trace_id = 0x0123456789ABCDEF0123456789ABCDEF

    def decision(environ: dict[str, str]) -> Decision:
        sampler = tracing_options(environ).sampler
        return sampler.should_sample(None, trace_id, "span").decision

    assert decision({}) is Decision.RECORD_AND_SAMPLE
    assert decision({"OTEL_TRACES_SAMPLER": "always_off"}) is Decision.DROP
    ratio = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}
    assert decision(ratio) is Decision.DROP
    assert decision({**ratio, "OTEL_TRACES_SAMPLER_ARG": "1"}) is Decision.RECORD_AND_SAMPLE


def test_exporting_nowhere_records_no_new_trace_until_a_processor_listens() -> None:
    provider = configure_tracing(service="s", exporter="none")
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("root") as root:
        assert not root.is_recording()
        assert root.get_span_context().is_valid, "ids still reach the logs and the wire"
    sampled_parent = trace.set_span_in_context(
        trace.NonRecordingSpan(
            trace.SpanContext(
                0x0123456789ABCDEF0123456789ABCDEF,
                0x0123456789ABCDEF,
                is_remote=True,
                trace_flags=trace.TraceFlags(1),
            )
        )
    )
    with tracer.start_as_current_span("child", context=sampled_parent) as child:
        assert child.is_recording(), "a sampled caller is followed"
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with tracer.start_as_current_span("heard") as heard:
        assert heard.is_recording()
    assert [s.name for s in exporter.get_finished_spans()] == ["heard"]
    provider.shutdown()


def test_a_quiet_span_carries_the_ids_a_started_one_would() -> None:
    provider = configure_tracing(service="s", exporter="none")
    tracer = provider.get_tracer("test")
    fresh = quiet_span(tracer)
    assert fresh is not None and not fresh.is_recording()
    fresh_ids = fresh.get_span_context()
    assert fresh_ids.is_valid and not fresh_ids.trace_flags.sampled
    above = trace.SpanContext(
        0x0123456789ABCDEF0123456789ABCDEF,
        0x0123456789ABCDEF,
        is_remote=True,
        trace_flags=trace.TraceFlags(1),
    )
    child = quiet_span(tracer, trace.set_span_in_context(trace.NonRecordingSpan(above)))
    assert child is not None
    ids = child.get_span_context()
    assert (ids.trace_id, ids.trace_flags.sampled) == (above.trace_id, True)
    assert ids.span_id not in (0, above.span_id)
    with trace.use_span(trace.NonRecordingSpan(above)):
        current = quiet_span(tracer)  # continues the current span by default
        assert current is not None and current.get_span_context().trace_id == above.trace_id
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    assert quiet_span(tracer) is None, "heard: spans are started as usual"
    assert quiet_span(trace.NoOpTracer()) is None
    provider.shutdown()


def test_exporting_somewhere_samples_as_configured() -> None:
    provider = configure_tracing(service="s", exporter="console")
    with provider.get_tracer("test").start_as_current_span("root") as root:
        assert root.is_recording()
    provider.shutdown()


def test_service_name_and_resource_attributes_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging")
    provider = configure_tracing(service="tpf-coordinator", exporter="none")
    assert provider.resource.attributes["service.name"] == "tpf-coordinator"
    assert provider.resource.attributes["deployment.environment"] == "staging"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "coordinator-eu")
    renamed = configure_tracing(service="tpf-coordinator", exporter="none")
    assert renamed.resource.attributes["service.name"] == "coordinator-eu"


def test_current_trace_id_is_the_active_spans() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("rpc") as span:
        expected = format(span.get_span_context().trace_id, "032x")
        assert current_trace_id() == expected
        assert active_trace_id() == expected
        assert active_span_id() == format(span.get_span_context().span_id, "016x")


def test_outside_a_span_each_trace_id_is_fresh() -> None:
    assert active_trace_id() is None
    assert active_span_id() is None
    first, second = current_trace_id(), current_trace_id()
    assert HEX_TRACE_ID.fullmatch(first) and HEX_TRACE_ID.fullmatch(second)
    assert first != second


def test_sqs_message_attributes_carry_the_context_there_and_back() -> None:
    tracer, _ = _recording_tracer()
    nothing = context_of_sqs_message({"MessageAttributes": {"other": {"DataType": "Number"}}})
    assert not trace.get_current_span(nothing).get_span_context().is_valid
    with tracer.start_as_current_span("send") as sent:
        attributes = sqs_message_attributes()
    assert set(attributes) <= set(sqs_attribute_names())
    assert attributes["traceparent"]["DataType"] == "String"
    received = context_of_sqs_message({"MessageAttributes": attributes})
    carried = trace.get_current_span(received).get_span_context()
    assert carried.trace_id == sent.get_span_context().trace_id
    assert carried.span_id == sent.get_span_context().span_id


def _recording_tracer() -> tuple[trace.Tracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test"), exporter


def _by_name(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    return next(s for s in spans if s.name == name)


def test_a_stored_traceparent_is_continued_and_the_call_linked() -> None:
    tracer, exporter = _recording_tracer()
    with tracer.start_as_current_span("submit"):
        stored = current_traceparent()
    assert stored is not None
    with (
        tracer.start_as_current_span("claim batch"),
        continue_trace(tracer, "claim step", traceparent=stored),
    ):
        pass
    spans = exporter.get_finished_spans()
    submit, batch, step = (_by_name(spans, n) for n in ("submit", "claim batch", "claim step"))
    assert step.context is not None and submit.context is not None and batch.context is not None
    assert step.context.trace_id == submit.context.trace_id
    assert step.parent is not None and step.parent.span_id == submit.context.span_id
    assert [link.context.span_id for link in step.links] == [batch.context.span_id]


@pytest.mark.parametrize(
    "stored", [None, "", "00-garbage", "00-" + "0" * 32 + "-" + "0" * 16 + "-01"]
)
def test_without_a_usable_traceparent_the_span_is_a_child_of_the_call(stored: str | None) -> None:
    assert traceparent_context(stored) is None
    tracer, exporter = _recording_tracer()
    with (
        tracer.start_as_current_span("call") as call,
        continue_trace(tracer, "step", traceparent=stored) as step,
    ):
        pass
    assert step.get_span_context().trace_id == call.get_span_context().trace_id
    (finished_step,) = [s for s in exporter.get_finished_spans() if s.name == "step"]
    assert not finished_step.links
