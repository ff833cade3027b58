"""serve() in-process on a free port, driven by a real grpc.aio client.

The probe service is registered through a generic handler with raw-bytes messages, so the test
needs no generated code: each method exercises one path of the interceptors.
"""

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from opentelemetry.trace import StatusCode as SpanStatusCode

from tests.harness.ports import free_port
from tests.harness.wait import wait_until
from tpf_config import ROLE_ADMIN, ROLE_WORKER, CommonSettings, ConfigError
from tpf_errors import ErrorKind, NotFound, TpfError
from tpf_rpc.auth import current_principal
from tpf_rpc.channel import client_channel
from tpf_rpc.errors import MAX_MESSAGE_CHARS, MAX_METADATA_VALUE_CHARS, error_info_of
from tpf_rpc.server import serve

SERVICE = "tpf.test.v1.ProbeService"
OTHER_SERVICE = "tpf.test.v1.OtherService"
DOMAIN = "tpf.probe"
ADMIN_TOKEN = "admin-secret-0123456789"
WORKER_TOKEN = "worker-secret-0123456789"
SECRET_DETAIL = "db password is hunter2"


@dataclass
class ProbeService:
    """Handlers whose behavior the tests choose by method name."""

    release_slow: asyncio.Event = field(default_factory=asyncio.Event)
    slow_started: asyncio.Event = field(default_factory=asyncio.Event)

    async def ok(self, request: bytes, context: Any) -> bytes:
        return current_principal().subject.encode() + b":" + request

    async def not_found(self, request: bytes, context: Any) -> bytes:
        raise NotFound(
            "RELEASE_NOT_FOUND",
            "Release 1.2.3 does not exist; list releases to find one.",
            releaseVersion="1.2.3",
        )

    async def echo_not_found(self, request: bytes, context: Any) -> bytes:
        """Echoes the request into the message and the metadata, as an unknown id is."""
        text = request.decode()
        raise NotFound("EXECUTION_NOT_FOUND", f"Execution not found: {text}", executionId=text)

    async def crash(self, request: bytes, context: Any) -> bytes:
        raise RuntimeError(SECRET_DETAIL)

    async def unknown_reason(self, request: bytes, context: Any) -> bytes:
        raise TpfError(ErrorKind.NOT_FOUND, "NO_SUCH_REASON", "never listed")

    async def admin_only(self, request: bytes, context: Any) -> bytes:
        current_principal().require_role(ROLE_ADMIN)
        return b"done"

    async def stream_then_fail(self, request: bytes, context: Any) -> AsyncIterator[bytes]:
        yield b"first"
        raise NotFound("EXECUTION_NOT_FOUND", "Execution e-1 is gone.", executionId="e-1")

    async def slow(self, request: bytes, context: Any) -> bytes:
        self.slow_started.set()
        await self.release_slow.wait()
        return b"finished"

    def register(self, server: grpc.aio.Server) -> None:
        unary = grpc.unary_unary_rpc_method_handler
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    SERVICE,
                    {
                        "Ok": unary(self.ok),
                        "NotFound": unary(self.not_found),
                        "EchoNotFound": unary(self.echo_not_found),
                        "Crash": unary(self.crash),
                        "UnknownReason": unary(self.unknown_reason),
                        "AdminOnly": unary(self.admin_only),
                        "StreamThenFail": grpc.unary_stream_rpc_method_handler(
                            self.stream_then_fail
                        ),
                        "Slow": unary(self.slow),
                    },
                ),
            )
        )


@dataclass
class RunningServer:
    port: int
    probe: ProbeService
    task: "asyncio.Task[None]"
    stopped: list[str]

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


def _settings(port: int, **overrides: Any) -> CommonSettings:
    tokens = [
        {"token": ADMIN_TOKEN, "subject": "ops", "roles": [ROLE_ADMIN], "tenants": ["*"]},
        {"token": WORKER_TOKEN, "subject": "w1", "roles": [ROLE_WORKER], "tenants": ["t-a"]},
    ]
    values: dict[str, Any] = {
        "grpc_host": "127.0.0.1",
        "grpc_port": port,
        "auth_tokens": json.dumps(tokens),
        "shutdown_grace_s": 5.0,
        **overrides,
    }
    return CommonSettings(**values)


async def _health(channel: grpc.aio.Channel, service: str = "") -> int:
    response = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=service), timeout=5, wait_for_ready=True
    )
    status: int = response.status
    return status


@asynccontextmanager
async def running_server(
    *,
    stop_event: asyncio.Event | None = None,
    tracer_provider: TracerProvider | None = None,
    server_options: tuple[tuple[str, Any], ...] = (),
    **overrides: Any,
) -> AsyncIterator[RunningServer]:
    """serve() in a task, ready once health answers; stopped on exit through `stop_event`
    or, when the test lets serve() own its stop (signals), by cancelling the task."""
    port = free_port()
    probe = ProbeService()
    stopped: list[str] = []

    async def on_stop() -> None:
        stopped.append("on_stop")

    task = asyncio.create_task(
        serve(
            settings=_settings(port, **overrides),
            tracer_provider=tracer_provider,
            server_options=server_options,
            service_name="probe",
            domain=DOMAIN,
            register=probe.register,
            service_full_names=[SERVICE, OTHER_SERVICE],
            on_stop=on_stop,
            stop_event=stop_event,
        )
    )
    running = RunningServer(port, probe, task, stopped)
    try:
        # The first connection attempt may precede the bind; retry quickly instead of after
        # gRPC's default 1 s reconnect backoff.
        fast_reconnect = [("grpc.initial_reconnect_backoff_ms", 20)]
        async with grpc.aio.insecure_channel(running.target, options=fast_reconnect) as channel:
            await _health(channel)
        yield running
    finally:
        probe.release_slow.set()
        if stop_event is not None:
            stop_event.set()
        elif not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=10)


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[RunningServer]:
    async with running_server(stop_event=asyncio.Event()) as running:
        yield running


@pytest.fixture
async def channel(server: RunningServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(server.target) as channel:
        yield channel


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def _unary(
    channel: grpc.aio.Channel, method: str
) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
    return channel.unary_unary(f"/{SERVICE}/{method}")


def _only_error_info(error: grpc.aio.AioRpcError) -> Any:
    status = rpc_status.from_call(error)
    assert status is not None, "no google.rpc.Status in trailing metadata"
    assert len(status.details) == 1
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return info


async def test_ok_call_runs_as_the_token_principal(channel: grpc.aio.Channel) -> None:
    response = await _unary(channel, "Ok")(b"ping", metadata=_bearer(ADMIN_TOKEN))
    assert response == b"ops:ping"


async def test_tpf_error_becomes_its_code_with_exactly_one_error_info(
    channel: grpc.aio.Channel,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _unary(channel, "NotFound")(b"", metadata=_bearer(ADMIN_TOKEN))
    error = raised.value
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "Release 1.2.3 does not exist; list releases to find one."
    info = _only_error_info(error)
    assert (info.reason, info.domain) == ("RELEASE_NOT_FOUND", DOMAIN)
    assert dict(info.metadata) == {"releaseVersion": "1.2.3"}
    assert error_info_of(error) == info


@pytest.mark.parametrize("text", ["x" * 3_500, "x" * 100_000, "é😀" * 3_000])
async def test_an_error_echoing_long_input_keeps_its_code_and_reason(
    channel: grpc.aio.Channel, text: str
) -> None:
    """Unbounded, the echo overflowed the trailers and the client saw INTERNAL."""
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _unary(channel, "EchoNotFound")(text.encode(), metadata=_bearer(ADMIN_TOKEN))
    error = raised.value
    assert error.code() == grpc.StatusCode.NOT_FOUND
    details = error.details() or ""
    assert details.startswith("Execution not found: ")
    assert details.endswith(" characters, cut]")
    assert len(details) <= MAX_MESSAGE_CHARS
    info = _only_error_info(error)
    assert info.reason == "EXECUTION_NOT_FOUND"
    assert len(info.metadata["executionId"]) <= MAX_METADATA_VALUE_CHARS
    assert info.metadata["executionId"].startswith(text[:100])


async def test_error_info_is_readable_from_the_aio_call(channel: grpc.aio.Channel) -> None:
    call = _unary(channel, "NotFound")(b"", metadata=_bearer(ADMIN_TOKEN))
    with pytest.raises(grpc.aio.AioRpcError):
        await call
    status: status_pb2.Status = await rpc_status.aio.from_call(call)
    assert status.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert len(status.details) == 1


async def test_unexpected_exception_is_internal_with_trace_id_and_no_stack(
    channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.ERROR, logger="tpf_rpc"),
        pytest.raises(grpc.aio.AioRpcError) as raised,
    ):
        await _unary(channel, "Crash")(b"", metadata=_bearer(ADMIN_TOKEN))
    error = raised.value
    assert error.code() == grpc.StatusCode.INTERNAL
    info = _only_error_info(error)
    assert (info.reason, info.domain) == ("INTERNAL", DOMAIN)
    trace_id = info.metadata["traceId"]
    assert trace_id in (error.details() or "")
    client_visible = f"{error.details()} {error.debug_error_string()} {info}"
    assert SECRET_DETAIL not in client_visible
    assert "Traceback" not in client_visible
    logged = [r for r in caplog.records if r.exc_info and SECRET_DETAIL in str(r.exc_info[1])]
    assert len(logged) == 1, "the crash must be logged exactly once, with its exception"
    assert logged[0].trace_id == trace_id  # type: ignore[attr-defined]


async def test_error_with_unlisted_reason_is_internal(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _unary(channel, "UnknownReason")(b"", metadata=_bearer(ADMIN_TOKEN))
    assert raised.value.code() == grpc.StatusCode.INTERNAL
    assert _only_error_info(raised.value).reason == "INTERNAL"


async def test_stream_error_after_first_message_keeps_its_status(
    channel: grpc.aio.Channel,
) -> None:
    stream: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(
        f"/{SERVICE}/StreamThenFail"
    )
    call = stream(b"", metadata=_bearer(ADMIN_TOKEN))
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for message in call:
            received.append(message)
    assert received == [b"first"]
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert _only_error_info(raised.value).reason == "EXECUTION_NOT_FOUND"


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ((), "TOKEN_MISSING"),
        (_bearer("not-a-known-token"), "TOKEN_INVALID"),
        ((("authorization", f"Basic {ADMIN_TOKEN}"),), "TOKEN_INVALID"),
    ],
)
async def test_calls_without_a_valid_token_are_unauthenticated(
    channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...], reason: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _unary(channel, "Ok")(b"", metadata=metadata)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    info = _only_error_info(raised.value)
    assert (info.reason, info.domain) == (reason, DOMAIN)


async def test_role_check_in_handler_is_permission_denied(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _unary(channel, "AdminOnly")(b"", metadata=_bearer(WORKER_TOKEN))
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    info = _only_error_info(raised.value)
    assert info.reason == "ROLE_REQUIRED"
    assert dict(info.metadata) == {"requiredRole": ROLE_ADMIN}
    assert await _unary(channel, "AdminOnly")(b"", metadata=_bearer(ADMIN_TOKEN)) == b"done"


async def test_client_channel_sends_the_bearer_token(server: RunningServer) -> None:
    async with client_channel(server.target, token=WORKER_TOKEN) as channel:
        assert await _unary(channel, "Ok")(b"x") == b"w1:x"


async def test_health_serves_overall_and_each_service_without_a_token(
    channel: grpc.aio.Channel,
) -> None:
    serving = health_pb2.HealthCheckResponse.SERVING
    for service in ("", SERVICE, OTHER_SERVICE):
        assert await _health(channel, service) == serving


async def test_reflection_lists_the_services_without_a_token(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = set()
    async for response in responses:
        names |= {s.name for s in response.list_services_response.service}
    assert names == {
        SERVICE,
        OTHER_SERVICE,
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }


async def test_auth_disabled_runs_calls_as_anonymous_admin() -> None:
    async with (
        running_server(stop_event=asyncio.Event(), auth_tokens=None, auth_disabled=True) as running,
        grpc.aio.insecure_channel(running.target) as channel,
    ):
        assert await _unary(channel, "Ok")(b"x") == b"anonymous:x"
        assert await _unary(channel, "AdminOnly")(b"") == b"done"


async def test_serve_refuses_to_start_without_tokens() -> None:
    port = free_port()
    stopped: list[bool] = []

    async def on_stop() -> None:
        stopped.append(True)

    with pytest.raises(ConfigError, match="TPF_AUTH_TOKENS"):
        await serve(
            settings=_settings(port, auth_tokens=None),
            service_name="probe",
            domain=DOMAIN,
            register=ProbeService().register,
            service_full_names=[SERVICE],
            on_stop=on_stop,
        )
    assert stopped == [True]
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "nothing may listen"


async def test_serve_refuses_an_invalid_otel_variable_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "sometimes")
    stopped: list[bool] = []

    async def on_stop() -> None:
        stopped.append(True)

    with pytest.raises(ConfigError, match="OTEL_TRACES_SAMPLER"):
        await serve(
            settings=_settings(free_port()),
            service_name="probe",
            domain=DOMAIN,
            register=ProbeService().register,
            service_full_names=[SERVICE],
            on_stop=on_stop,
        )
    assert stopped == [True]


async def test_serve_refuses_a_port_already_in_use(server: RunningServer) -> None:
    with pytest.raises(ConfigError, match="TPF_GRPC_PORT"):
        await serve(
            settings=_settings(server.port),
            service_name="probe",
            domain=DOMAIN,
            register=ProbeService().register,
            service_full_names=[SERVICE],
        )


async def test_stop_turns_health_not_serving_lets_inflight_finish_then_runs_on_stop() -> None:
    stop_event = asyncio.Event()
    async with running_server(stop_event=stop_event) as running:
        channel = grpc.aio.insecure_channel(running.target)
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=SERVICE)
        )
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
        slow = asyncio.ensure_future(_unary(channel, "Slow")(b"", metadata=_bearer(ADMIN_TOKEN)))
        await running.probe.slow_started.wait()

        stop_event.set()

        assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()  # an open Watch would hold shutdown for the whole grace period
        assert not running.task.done(), "serve must wait for the in-flight call"
        assert running.stopped == []
        running.probe.release_slow.set()
        assert await slow == b"finished"
        await asyncio.wait_for(running.task, timeout=10)
        assert running.stopped == ["on_stop"]
        await channel.close()


async def test_sigterm_stops_the_server_gracefully() -> None:
    signalled: list[int] = []

    def fallback(signum: int, frame: object) -> None:
        """Catches SIGTERM if serve() failed to install its handler, instead of killing pytest."""
        signalled.append(signum)

    previous = signal.signal(signal.SIGTERM, fallback)
    try:
        async with running_server() as running:
            # serve() installs its handler just after the server starts answering.
            await wait_until(
                lambda: signal.getsignal(signal.SIGTERM) is not fallback,
                what="serve() handles SIGTERM",
            )
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.wait_for(running.task, timeout=10)
            assert running.stopped == ["on_stop"]
            assert signalled == [], "SIGTERM must reach serve(), not the previous handler"
    finally:
        signal.signal(signal.SIGTERM, previous)


async def test_each_rpc_gets_a_client_and_a_server_span_in_the_callers_trace() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with (
        running_server(stop_event=asyncio.Event(), tracer_provider=provider) as running,
        client_channel(running.target, token=ADMIN_TOKEN, tracer_provider=provider) as channel,
    ):
        with provider.get_tracer("test").start_as_current_span("caller") as caller:
            assert await _unary(channel, "Ok")(b"") == b"ops:"
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await _unary(channel, "NotFound")(b"")
        with pytest.raises(grpc.aio.AioRpcError) as crashed:
            await _unary(channel, "Crash")(b"")
        stream: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(
            f"/{SERVICE}/StreamThenFail"
        )
        with pytest.raises(grpc.aio.AioRpcError):
            async for _ in stream(b""):
                pass
    spans = {(span.name, span.kind): span for span in exporter.get_finished_spans()}
    ok = spans[(f"{SERVICE}/Ok", SpanKind.SERVER)]
    ok_client = spans[(f"{SERVICE}/Ok", SpanKind.CLIENT)]
    assert ok.attributes is not None and ok_client.attributes is not None
    assert ok.context.trace_id == ok_client.context.trace_id == caller.get_span_context().trace_id
    assert ok_client.parent is not None
    assert ok_client.parent.span_id == caller.get_span_context().span_id
    assert ok.parent is not None and ok.parent.span_id == ok_client.context.span_id
    assert ok.attributes["rpc.grpc.status_code"] == 0
    assert ok_client.attributes["rpc.grpc.status_code"] == 0
    assert ok_client.attributes["rpc.method"] == "Ok"

    not_found = spans[(f"{SERVICE}/NotFound", SpanKind.SERVER)]
    assert not_found.attributes is not None
    assert not_found.attributes["rpc.grpc.status_code"] == raised.value.code().value[0]
    assert not_found.status.status_code == SpanStatusCode.UNSET, "a client error is no fault"
    not_found_client = spans[(f"{SERVICE}/NotFound", SpanKind.CLIENT)]
    assert not_found_client.status.status_code == SpanStatusCode.ERROR, "but the client failed"

    crash = spans[(f"{SERVICE}/Crash", SpanKind.SERVER)]
    assert crash.status.status_code == SpanStatusCode.ERROR
    assert _only_error_info(crashed.value).metadata["traceId"] == format(
        crash.context.trace_id, "032x"
    )
    # A streaming call's span ends with the stream.
    streamed = spans[(f"{SERVICE}/StreamThenFail", SpanKind.CLIENT)]
    assert streamed.end_time is not None
    assert spans[(f"{SERVICE}/StreamThenFail", SpanKind.SERVER)].parent is not None


async def test_server_options_reach_the_grpc_server() -> None:
    async with (
        running_server(
            stop_event=asyncio.Event(), server_options=(("grpc.max_receive_message_length", 1024),)
        ) as running,
        grpc.aio.insecure_channel(running.target) as channel,
    ):
        ok = _unary(channel, "Ok")
        assert await ok(b"x" * 512, metadata=_bearer(ADMIN_TOKEN)) == b"ops:" + b"x" * 512
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await ok(b"x" * 4096, metadata=_bearer(ADMIN_TOKEN))
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
