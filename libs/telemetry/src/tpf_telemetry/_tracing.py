"""OpenTelemetry setup from the standard OTEL_* variables, and trace-id lookup.

The SDK's own auto-configuration (entry points, `opentelemetry-instrument`) is not used: each
service builds its provider here, so a misspelt variable stops it at startup with a clear
message instead of a warning and a silent fallback.
"""

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, TraceFlags

TRACES_EXPORTERS = ("none", "console", "otlp")
OTLP_PROTOCOLS = ("grpc", "http/protobuf")
# The spec's default transport; the exporters read OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT
# themselves (http://localhost:4318 for HTTP, localhost:4317 for gRPC when unset).
DEFAULT_OTLP_PROTOCOL = "http/protobuf"
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
DEFAULT_SAMPLER = "parentbased_always_on"


@dataclass(frozen=True, slots=True)
class TracingOptions:
    """Where spans go and which are kept, as the OTEL_* variables say."""

    exporters: tuple[str, ...]
    otlp_protocol: str
    sampler: Sampler


def parse_exporters(value: str) -> tuple[str, ...]:
    """`OTEL_TRACES_EXPORTER`'s comma-separated list; raises ValueError for an unknown name."""
    names = tuple(name.strip().lower() for name in value.split(",") if name.strip())
    for name in names:
        if name not in TRACES_EXPORTERS:
            raise ValueError(f"unknown traces exporter {name!r}; use one of {TRACES_EXPORTERS}")
    return tuple(name for name in names if name != "none") or ("none",)


def tracing_options(
    environ: Mapping[str, str] | None = None, *, exporter: str | None = None
) -> TracingOptions:
    """Read OTEL_TRACES_EXPORTER (unless `exporter` is given), OTEL_EXPORTER_OTLP_[TRACES_]
    PROTOCOL, OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG; raises ValueError naming the
    variable when one is invalid."""
    env = os.environ if environ is None else environ
    try:
        exporters = parse_exporters(
            exporter if exporter is not None else env.get("OTEL_TRACES_EXPORTER", "none")
        )
    except ValueError as error:
        raise ValueError(f"OTEL_TRACES_EXPORTER: {error}") from None
    protocol_variable = (
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
        if env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        else "OTEL_EXPORTER_OTLP_PROTOCOL"
    )
    protocol = env.get(protocol_variable, "").strip().lower() or DEFAULT_OTLP_PROTOCOL
    if protocol not in OTLP_PROTOCOLS:
        raise ValueError(
            f"{protocol_variable}: unknown protocol {protocol!r}; use {OTLP_PROTOCOLS}"
        )
    return TracingOptions(exporters, protocol, _sampler(env))


def _sampler(env: Mapping[str, str]) -> Sampler:
    name = env.get("OTEL_TRACES_SAMPLER", "").strip().lower() or DEFAULT_SAMPLER
    if name not in SAMPLERS:
        raise ValueError(f"OTEL_TRACES_SAMPLER: unknown sampler {name!r}; use one of {SAMPLERS}")
    if name.endswith("traceidratio"):
        raw = env.get("OTEL_TRACES_SAMPLER_ARG", "").strip() or "1.0"
        try:
            ratio = float(raw)
        except ValueError:
            ratio = -1.0
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"OTEL_TRACES_SAMPLER_ARG: {raw!r} is not a ratio from 0 to 1")
        ratio_sampler = TraceIdRatioBased(ratio)
        return ParentBased(ratio_sampler) if name.startswith("parentbased") else ratio_sampler
    root = ALWAYS_OFF if name.endswith("always_off") else ALWAYS_ON
    return ParentBased(root) if name.startswith("parentbased") else root


def _otlp_exporter(protocol: str) -> SpanExporter:
    # Imported on use: a service exporting nowhere does not load gRPC's or HTTP's client code.
    if protocol == "grpc":
        # The SDK's gRPC exporter with a faster span encoder (the export's largest cost).
        from tpf_telemetry._span_encoding import FastOtlpGrpcSpanExporter

        return FastOtlpGrpcSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    return HttpExporter()


def _processors(options: TracingOptions) -> list[SpanProcessor]:
    # Batching keeps export off the request path: spans are queued and sent every few seconds
    # (OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE).
    processors: list[SpanProcessor] = []
    for name in options.exporters:
        if name == "console":
            processors.append(BatchSpanProcessor(ConsoleSpanExporter()))
        elif name == "otlp":
            processors.append(BatchSpanProcessor(_otlp_exporter(options.otlp_protocol)))
    return processors


def _resource(service: str) -> Resource:
    """OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, with `service` as the default name."""
    detected = Resource.create()
    if str(detected.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        return detected.merge(Resource({SERVICE_NAME: service}))
    return detected


class QuietUntilHeard(Sampler):
    """`sampler` once the provider has a span processor; until then no new trace is recorded.

    A span recorded with no processor to hear it costs CPU for nothing (a service exporting
    nowhere spent about a tenth of its CPU so). Unrecorded spans still carry ids, which reach
    the logs and the wire, and a sampled parent is still followed (`ParentBased`), so a service
    further on that exports keeps the caller's trace. Adding a processor later (a test's
    in-memory exporter) makes it sample as configured from then on.
    """

    def __init__(self, sampler: Sampler) -> None:
        self.sampler = sampler
        self.heard = False
        self._quiet = ParentBased(ALWAYS_OFF)

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        chosen = self.sampler if self.heard else self._quiet
        return chosen.should_sample(*args, **kwargs)

    def get_description(self) -> str:
        return f"QuietUntilHeard{{{self.sampler.get_description()}}}"


class ServiceTracerProvider(TracerProvider):
    """A tracer provider whose QuietUntilHeard sampler starts sampling with its first
    processor."""

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        super().add_span_processor(span_processor)
        if isinstance(self.sampler, QuietUntilHeard):
            self.sampler.heard = True


def quiet_span(tracer: trace.Tracer, parent: Context | None = None) -> Span | None:
    """The span to use instead of starting one, when `tracer` records nothing yet.

    While its provider exports nowhere (QuietUntilHeard not heard), a span the SDK would start
    records nothing that anyone reads; what matters is its ids, which reach the logs and the
    wire. This span carries the same ids (the parent's trace and flags, a new span id) without
    the SDK's sampler, attributes and span object: about half of a small gRPC call's tracing
    cost. Returns None when the tracer does record (or is OpenTelemetry's no-op one); start a
    span as usual then. `parent` is the context to continue (default: the current one).
    """
    real: Any = getattr(tracer, "_tracer", tracer)  # a ProxyTracer resolves to the provider's
    sampler = getattr(real, "sampler", None)
    if not isinstance(sampler, QuietUntilHeard) or sampler.heard:
        return None
    ids = real.id_generator
    above = trace.get_current_span(parent).get_span_context()
    return NonRecordingSpan(
        SpanContext(
            trace_id=above.trace_id if above.is_valid else ids.generate_trace_id(),
            span_id=ids.generate_span_id(),
            is_remote=False,
            trace_flags=above.trace_flags if above.is_valid else TraceFlags(TraceFlags.DEFAULT),
            trace_state=above.trace_state if above.is_valid else None,
        )
    )


def configure_tracing(
    *, service: str, exporter: str | None = None, environ: Mapping[str, str] | None = None
) -> TracerProvider:
    """Build a tracer provider for `service` from the OTEL_* variables.

    `exporter` ("none", "console", "otlp" or a comma-separated list) replaces
    OTEL_TRACES_EXPORTER when given. Raises ValueError for an invalid variable.

    The first provider built in a process also becomes OpenTelemetry's global one (OTel
    refuses to replace it later), so `trace.get_tracer(__name__)` works anywhere. Pass the
    returned provider explicitly where it matters and call `shutdown()` on it at exit to
    flush buffered spans.
    """
    options = tracing_options(environ, exporter=exporter)
    provider = ServiceTracerProvider(
        resource=_resource(service), sampler=QuietUntilHeard(options.sampler)
    )
    for processor in _processors(options):
        provider.add_span_processor(processor)
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)
    return provider


def active_trace_id() -> str | None:
    """Hex trace id of the span active in this context, or None outside any span."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return trace.format_trace_id(span_context.trace_id)


def active_span_id() -> str | None:
    """Hex id of the span active in this context, or None outside any span."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return trace.format_span_id(span_context.span_id)


def current_trace_id() -> str:
    """Hex trace id of the active span, or a fresh random one to correlate a log and a reply."""
    return active_trace_id() or secrets.token_hex(16)
