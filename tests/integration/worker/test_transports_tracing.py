"""Worker calls carry the caller's trace beside the TPF envelopes, on every transport: gRPC
metadata, HTTP headers, SQS message attributes. The worker's span continues it, and the
envelopes stay exactly TPF's (the echo handler gets the command unchanged)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.integration.worker.test_transports import (
    CAPABILITY,
    SECRET,
    command,
    echo,
    new_queue,
    sqs,
    sqs_config,
)
from tests.support.spans import in_trace, parent_of, recorded_spans
from tpf_worker.protocol.command import Command
from tpf_worker.protocol.result import Result
from tpf_worker.tracing import execute_span
from tpf_worker.transports.grpc import GrpcWorkerClient, GrpcWorkerServer
from tpf_worker.transports.rest import RestWorkerClient, RestWorkerServer
from tpf_worker.transports.sqs_client import SqsWorkerClient
from tpf_worker.transports.sqs_reply_router import SqsReplyRouter
from tpf_worker.transports.sqs_server import SqsWorkerServer
from tpf_worker.transports.sqs_settings import SqsConfig

__all__ = ["recorded_spans", "sqs", "sqs_config"]  # fixtures, used by name

received: list[Command] = []


async def recording_echo(cmd: Command) -> Result:
    # Inside the worker's span: the handler runs in the continued trace, and (as in the worker
    # runtime) `execute_span` hands back the transport's span instead of making another.
    received.append(cmd)
    with execute_span(cmd) as span:
        assert span is trace.get_current_span()
        assert span.get_span_context().is_valid
        return await echo(cmd)


@pytest.fixture(autouse=True)
def _fresh_received() -> None:
    received.clear()


async def _call(client: Any, exporter: InMemorySpanExporter) -> tuple[int, int]:
    """Execute in a caller span; (trace id, caller span id)."""
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("run step") as caller:
        result = await client.execute(command(), timeout_s=15)
    assert result == Result.completed([command().input_envelope()])
    assert received == [command()], "the command arrives exactly as sent"
    context = caller.get_span_context()
    return context.trace_id, context.span_id


def _worker_span(exporter: InMemorySpanExporter, trace_id: int, kind: SpanKind) -> Any:
    spans = exporter.get_finished_spans()
    in_call = in_trace(spans, trace_id)
    (worker,) = [s for s in in_call if s.kind is kind]
    # The transport's span is the command's: it names the execution and step, and there is no
    # `execute step` span under it.
    assert worker.attributes is not None
    assert worker.attributes["tpf.execution_id"] == command().execution_id
    assert worker.attributes["tpf.step_index"] == command().current_step_index
    assert [s.name for s in in_call if s.name == "execute step"] == []
    return worker, spans


@pytest.fixture
async def grpc_target() -> AsyncIterator[str]:
    server = GrpcWorkerServer(recording_echo, CAPABILITY, shared_secret=SECRET)
    port = await server.start("127.0.0.1", 0)
    yield f"127.0.0.1:{port}"
    await server.stop(1.0)


async def test_grpc_worker_continues_the_trace_from_metadata(
    grpc_target: str, recorded_spans: InMemorySpanExporter
) -> None:
    client = GrpcWorkerClient(grpc_target, shared_secret=SECRET)
    try:
        trace_id, caller_id = await _call(client, recorded_spans)
    finally:
        await client.close()
    server, spans = _worker_span(recorded_spans, trace_id, SpanKind.SERVER)
    assert server.name.endswith("TransitionWorkerService/Execute")
    client_span = parent_of(server, spans)
    assert client_span is not None and client_span.kind is SpanKind.CLIENT
    assert client_span.parent is not None and client_span.parent.span_id == caller_id


async def test_rest_worker_continues_the_trace_from_headers(
    recorded_spans: InMemorySpanExporter,
) -> None:
    server = RestWorkerServer(recording_echo, CAPABILITY, shared_secret=SECRET)
    port = await server.start("127.0.0.1", 0)
    client = RestWorkerClient(f"http://127.0.0.1:{port}", shared_secret=SECRET)
    try:
        trace_id, caller_id = await _call(client, recorded_spans)
    finally:
        await client.close()
        await server.stop(1.0)
    worker, spans = _worker_span(recorded_spans, trace_id, SpanKind.SERVER)
    assert worker.name == "POST /pipeline/worker/transitions/execute"
    client_span = parent_of(worker, spans)
    assert client_span is not None and client_span.kind is SpanKind.CLIENT
    assert client_span.attributes is not None
    assert client_span.attributes["http.response.status_code"] == 200
    assert client_span.parent is not None and client_span.parent.span_id == caller_id


async def test_sqs_worker_continues_the_trace_from_message_attributes(
    sqs: Any, sqs_config: SqsConfig, recorded_spans: InMemorySpanExporter
) -> None:
    requests, responses = await new_queue(sqs, "requests"), await new_queue(sqs, "responses")
    server = SqsWorkerServer(
        recording_echo,
        CAPABILITY,
        shared_secret=SECRET,
        request_queue_url=requests,
        config=sqs_config,
        response_queue_url=responses,
    )
    await server.start()
    router = SqsReplyRouter(responses, sqs_config, shared_secret=SECRET)
    client = SqsWorkerClient(requests, router, sqs_config, shared_secret=SECRET)
    try:
        trace_id, caller_id = await _call(client, recorded_spans)
    finally:
        await client.close()
        await router.stop()
        await server.stop(1.0)
    consumer, _ = _worker_span(recorded_spans, trace_id, SpanKind.CONSUMER)
    assert consumer.parent is not None and consumer.parent.span_id == caller_id
