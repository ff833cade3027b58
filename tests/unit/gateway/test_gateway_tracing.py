"""The gateway's HTTP SERVER span: the caller's `traceparent` is continued, the gateway's own
is answered, the route template names the span, and health probes are not traced.

The upstreams are free ports nobody listens on (a real UNAVAILABLE, answered 503).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tests.harness.ports import free_port
from tpf_gateway.app import build_app
from tpf_gateway.auth import TokenGuard
from tpf_gateway.routes import Family, Upstream, build_route_table
from tpf_gateway.upstream import Upstreams

Client = TestClient[web.Request, web.Application]
CP = {"Authorization": "Bearer cp-token"}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN_ID = "00f067aa0ba902b7"


@pytest.fixture
async def traced() -> AsyncIterator[tuple[Client, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    upstreams = Upstreams(
        {
            Upstream.COORDINATOR: f"127.0.0.1:{free_port()}",
            Upstream.REGISTRY: f"127.0.0.1:{free_port()}",
        },
        token="service-token",
        timeout_s=5.0,
    )
    app = build_app(
        build_route_table(),
        upstreams,
        TokenGuard(tokens={Family.CONTROL_PLANE: "cp-token", Family.ADMIN: "admin-token"}),
        max_body_bytes=4096,
        health_timeout_s=0.5,
        tracer_provider=provider,
    )
    async with TestClient(TestServer(app)) as client:
        yield client, exporter
    await upstreams.close()


def _server_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]


async def test_the_callers_trace_is_continued_and_the_gateways_span_answered(
    traced: tuple[Client, InMemorySpanExporter],
) -> None:
    client, exporter = traced
    response = await client.get(
        "/tpf/control-plane/tenants/t-1/executions/e-1",
        headers={**CP, "traceparent": f"00-{TRACE_ID}-{CALLER_SPAN_ID}-01"},
    )
    assert response.status == 503  # nothing listens upstream
    (span,) = _server_spans(exporter)
    assert span.name == "GET /tpf/control-plane/tenants/{tenantId}/executions/{executionId}"
    assert span.context is not None and span.parent is not None
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert format(span.parent.span_id, "016x") == CALLER_SPAN_ID
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 503
    assert span.attributes["url.path"] == "/tpf/control-plane/tenants/t-1/executions/e-1"
    assert span.status.status_code is StatusCode.ERROR
    version, trace_id, span_id, flags = response.headers["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "01")
    assert span_id == format(span.context.span_id, "016x")


async def test_a_request_without_traceparent_starts_a_trace_and_gets_its_id(
    traced: tuple[Client, InMemorySpanExporter],
) -> None:
    client, exporter = traced
    response = await client.post(
        "/tpf/control-plane/tenants/t-1/executions", data=b"{oops", headers=CP
    )
    assert response.status == 400
    (span,) = _server_spans(exporter)
    assert span.parent is None and span.context is not None
    assert response.headers["traceparent"].split("-")[1] == format(span.context.trace_id, "032x")
    assert span.status.status_code is StatusCode.UNSET, "a client error is no server fault"


async def test_an_unknown_path_is_named_by_its_method_only(
    traced: tuple[Client, InMemorySpanExporter],
) -> None:
    client, exporter = traced
    response = await client.get("/no/such/thing/e-1")
    assert response.status == 404
    (span,) = _server_spans(exporter)
    assert span.name == "GET"
    assert "traceparent" in response.headers


async def test_health_probes_are_not_traced(
    traced: tuple[Client, InMemorySpanExporter],
) -> None:
    client, exporter = traced
    await client.get("/q/health/live")
    await client.get("/q/health/ready")
    assert _server_spans(exporter) == []
