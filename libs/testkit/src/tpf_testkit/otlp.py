"""A test OTLP receiver: the collector's TraceService (opentelemetry-proto) on 127.0.0.1.

Services started with `OTEL_TRACES_EXPORTER=otlp`, `OTEL_EXPORTER_OTLP_PROTOCOL=grpc` and
`OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint` export their spans here; tests read them back
as `ReceivedSpan`s. It runs on its own thread (a plain grpc.server), so it serves synchronous
and asynchronous tests alike, and the bench.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

_HOST = "127.0.0.1"

# opentelemetry-proto's Span.SpanKind values, by the names the SDK uses.
_KINDS = {
    trace_pb2.Span.SPAN_KIND_INTERNAL: "INTERNAL",
    trace_pb2.Span.SPAN_KIND_SERVER: "SERVER",
    trace_pb2.Span.SPAN_KIND_CLIENT: "CLIENT",
    trace_pb2.Span.SPAN_KIND_PRODUCER: "PRODUCER",
    trace_pb2.Span.SPAN_KIND_CONSUMER: "CONSUMER",
}


@dataclass(frozen=True, slots=True)
class ReceivedLink:
    trace_id: str
    span_id: str


@dataclass(frozen=True, slots=True)
class ReceivedSpan:
    """One exported span, ids in lowercase hex ('' for no parent)."""

    service: str
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: Mapping[str, Any] = field(default_factory=dict)
    links: tuple[ReceivedLink, ...] = ()
    error: bool = False


def _value(value: common_pb2.AnyValue) -> Any:
    which = value.WhichOneof("value")
    return getattr(value, which) if which else None


def _attributes(pairs: Sequence[common_pb2.KeyValue]) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def decode(request: trace_service_pb2.ExportTraceServiceRequest) -> list[ReceivedSpan]:
    spans: list[ReceivedSpan] = []
    for resource_spans in request.resource_spans:
        service = str(_attributes(resource_spans.resource.attributes).get("service.name", ""))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        service=service,
                        name=span.name,
                        kind=_KINDS.get(span.kind, "UNSPECIFIED"),
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        attributes=_attributes(span.attributes),
                        links=tuple(
                            ReceivedLink(link.trace_id.hex(), link.span_id.hex())
                            for link in span.links
                        ),
                        error=span.status.code == trace_pb2.Status.STATUS_CODE_ERROR,
                    )
                )
    return spans


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self._receiver.add(request)
        return trace_service_pb2.ExportTraceServiceResponse()


class OtlpReceiver:
    """Collects every span exported to it; `endpoint` is what OTEL_EXPORTER_OTLP_ENDPOINT takes.

    With `keep=False` it only counts them (the bench: decoding every span would cost the
    driving process CPU it needs).
    """

    def __init__(self, *, keep: bool = True) -> None:
        self._lock = threading.Lock()
        self._keep = keep
        self._spans: list[ReceivedSpan] = []
        self._count = 0
        self._exports = 0
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        # opentelemetry-proto ships untyped gRPC stubs.
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _TraceService(self), self._server
        )
        self.port = self._server.add_insecure_port(f"{_HOST}:0")

    @property
    def endpoint(self) -> str:
        return f"http://{_HOST}:{self.port}"

    def environment(self, *, prompt: bool = True) -> dict[str, str]:
        """The variables that make a process export its spans here. `prompt`: every 200 ms
        rather than the default 5 s, so a test waits little."""
        env = {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint,
        }
        if prompt:
            env["OTEL_BSP_SCHEDULE_DELAY"] = "200"
        return env

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop(grace=1).wait()

    def add(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        count = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
        spans = decode(request) if self._keep else []
        with self._lock:
            self._spans.extend(spans)
            self._count += count
            self._exports += 1

    @property
    def count(self) -> int:
        """Spans received (kept or not)."""
        with self._lock:
            return self._count

    @property
    def exports(self) -> int:
        with self._lock:
            return self._exports

    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    def in_trace(self, trace_id: str) -> list[ReceivedSpan]:
        return [s for s in self.spans() if s.trace_id == trace_id]
