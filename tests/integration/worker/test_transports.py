"""The worker transports end to end: real servers on 127.0.0.1, real SQS (moto), TPF's rules.

The servers run a trivial handler that echoes the command's input as a COMPLETED result, so
every assertion is about the wire: signing, status codes, failure mapping and routing.
"""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import grpc
import pytest
from aiobotocore.session import get_session
from aiohttp import web
from org.pipelineframework.orchestrator.grpc import transition_worker_pb2 as pb
from org.pipelineframework.orchestrator.grpc import transition_worker_pb2_grpc as pb_grpc

from tests.harness.moto import MotoServer
from tests.harness.wait import wait_until
from tpf_envelope import ENVELOPE_ENCODING
from tpf_worker.protocol.capability import Capability
from tpf_worker.protocol.command import Command, encode_command
from tpf_worker.protocol.result import Result
from tpf_worker.signing import java_instant, sign, signature
from tpf_worker.transports import TransportFailure
from tpf_worker.transports.grpc import EXECUTE_PATH as GRPC_EXECUTE
from tpf_worker.transports.grpc import GrpcWorkerClient, GrpcWorkerServer
from tpf_worker.transports.local import LocalWorkerClient
from tpf_worker.transports.rest import (
    EXECUTE_PATH,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    RestWorkerClient,
    RestWorkerServer,
)
from tpf_worker.transports.sqs_client import SqsWorkerClient
from tpf_worker.transports.sqs_messages import REQUEST_PATH, SIGNATURE_METHOD, signed_bytes
from tpf_worker.transports.sqs_reply_router import SqsReplyRouter
from tpf_worker.transports.sqs_server import SqsWorkerServer
from tpf_worker.transports.sqs_settings import SqsConfig

SECRET = "test-worker-secret"
CAPABILITY = Capability("org.example.echo", "c1", "r1", artifact_id="echo.jar")


def command(execution_id: str = "e1", payload: str = '"hello"') -> Command:
    return Command(
        tenant_id="t1",
        execution_id=execution_id,
        pipeline_id=CAPABILITY.pipeline_id,
        contract_version="c1",
        release_version="r1",
        current_step_index=0,
        stop_before_step_index=-1,
        attempt=0,
        result_shape="SINGLE",
        execution_version=1,
        transition_key=f"{execution_id}:0:0",
        trace_id=f"{execution_id}:0:0",
        payload_type_id="java.lang.String",
        payload_encoding="application/tpf-transition+json",
        payload=payload,
    )


async def echo(cmd: Command) -> Result:
    return Result.completed([cmd.input_envelope()])


def blocking_handler(release: asyncio.Event) -> Callable[[Command], Awaitable[Result]]:
    async def handler(cmd: Command) -> Result:
        await release.wait()
        return await echo(cmd)

    return handler


# -- local ---------------------------------------------------------------------------------------


async def test_local_client_round_trips_through_the_codecs() -> None:
    client = LocalWorkerClient(echo, CAPABILITY)
    result = await client.execute(command(), timeout_s=1)
    assert result == Result.completed([command().input_envelope()])
    assert await client.capabilities(timeout_s=1) == CAPABILITY


# -- REST ----------------------------------------------------------------------------------------


@pytest.fixture
async def rest_url() -> AsyncIterator[str]:
    server = RestWorkerServer(echo, CAPABILITY, shared_secret=SECRET)
    port = await server.start("127.0.0.1", 0)
    yield f"http://127.0.0.1:{port}"
    await server.stop(1.0)


async def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + EXECUTE_PATH, data=body, headers=headers) as response,
    ):
        return response.status, await response.read()


def signed_headers(body: bytes, *, secret: str = SECRET) -> dict[str, str]:
    signed = sign(secret, "POST", EXECUTE_PATH, body)
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: signed.timestamp,
        NONCE_HEADER: signed.nonce,
        SIGNATURE_HEADER: signed.signature,
    }


async def test_rest_round_trip_and_capabilities(rest_url: str) -> None:
    client = RestWorkerClient(rest_url, shared_secret=SECRET)
    try:
        result = await client.execute(command(payload='"über"'), timeout_s=5)
        assert result.output_payloads == (command(payload='"über"').input_envelope(),)
        capability = await client.capabilities(timeout_s=5)
        assert capability == CAPABILITY
    finally:
        await client.close()


async def test_rest_rejects_bad_signature_with_401_and_empty_body(rest_url: str) -> None:
    body = encode_command(command())
    status, answer = await post(rest_url, body, signed_headers(body, secret="wrong"))
    assert (status, answer) == (401, b"")


async def test_rest_rejects_replayed_nonce(rest_url: str) -> None:
    body = encode_command(command())
    headers = signed_headers(body)
    assert (await post(rest_url, body, headers))[0] == 200
    assert await post(rest_url, body, headers) == (401, b"")


async def test_rest_rejects_stale_timestamp(rest_url: str) -> None:
    body = encode_command(command())
    stale = java_instant(datetime.now(UTC) - timedelta(minutes=3))
    nonce = str(uuid.uuid4())
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: stale,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: signature(SECRET, "POST", EXECUTE_PATH, stale, nonce, body),
    }
    assert await post(rest_url, body, headers) == (401, b"")


@pytest.mark.parametrize("header", [TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER])
async def test_rest_rejects_missing_signature_header(rest_url: str, header: str) -> None:
    body = encode_command(command())
    headers = signed_headers(body)
    del headers[header]
    assert await post(rest_url, body, headers) == (401, b"")


async def test_rest_refuses_a_non_json_content_type_with_415(rest_url: str) -> None:
    body = encode_command(command())
    headers = signed_headers(body) | {"Content-Type": "text/plain"}
    assert (await post(rest_url, body, headers))[0] == 415


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"tenantId":"t","extra":1}', b'{"tenantId":"t"}', b"null"],
)
async def test_rest_refuses_malformed_or_invalid_command_with_400(
    rest_url: str, body: bytes
) -> None:
    assert await post(rest_url, body, signed_headers(body)) == (400, b"")


@pytest.fixture
async def fake_worker() -> AsyncIterator[Callable[[int, bytes], Awaitable[str]]]:
    """A misbehaving HTTP worker that answers every execute with a chosen status and body."""
    runners: list[web.AppRunner] = []

    async def start(status: int, body: bytes) -> str:
        async def answer(_request: web.Request) -> web.Response:
            return web.Response(status=status, body=body, content_type="application/json")

        app = web.Application()
        app.router.add_post(EXECUTE_PATH, answer)
        app.router.add_get("/pipeline/worker/capabilities", answer)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (500, b"boom", "REST transition worker returned HTTP 500 for execution e1 "
                       "with response body omitted"),
        (200, b"garbage", "REST transition worker returned malformed JSON for execution e1 "
                          "with HTTP 200 and response body omitted"),
        (201, b'{"outcome":"COMPLETED","extra":true}',
         "REST transition worker returned malformed JSON for execution e1 "
         "with HTTP 201 and response body omitted"),
        (200, b'{"outcome":"FAILED"}', "REST transition worker returned malformed JSON for "
                                       "execution e1 with HTTP 200 and response body omitted"),
        (200, b"null", "REST transition worker returned an empty result for execution e1 "
                       "with HTTP 200 and response body omitted"),
    ],
)  # fmt: skip
async def test_rest_client_maps_bad_answers_to_tpf_failures(
    fake_worker: Callable[[int, bytes], Awaitable[str]], status: int, body: bytes, message: str
) -> None:
    client = RestWorkerClient(await fake_worker(status, body), shared_secret=SECRET)
    try:
        with pytest.raises(TransportFailure) as raised:
            await client.execute(command(), timeout_s=5)
    finally:
        await client.close()
    assert raised.value.error_code == "TransitionWorkerFailureException"
    assert raised.value.message == message


async def test_rest_client_maps_bad_capability_answers(
    fake_worker: Callable[[int, bytes], Awaitable[str]],
) -> None:
    client = RestWorkerClient(await fake_worker(503, b""), shared_secret=SECRET)
    try:
        with pytest.raises(TransportFailure, match="capabilities returned HTTP 503 with response"):
            await client.capabilities(timeout_s=5)
    finally:
        await client.close()


async def test_rest_client_times_out_instead_of_hanging() -> None:
    release = asyncio.Event()
    server = RestWorkerServer(blocking_handler(release), CAPABILITY, shared_secret=SECRET)
    port = await server.start()
    client = RestWorkerClient(f"http://127.0.0.1:{port}", shared_secret=SECRET)
    try:
        with pytest.raises(TransportFailure) as raised:
            await client.execute(command(), timeout_s=0.5)
        assert "Timeout" in raised.value.error_code
        assert raised.value.message
    finally:
        release.set()
        await client.close()
        await server.stop(1.0)


async def test_rest_client_names_the_raw_connect_error() -> None:
    client = RestWorkerClient("http://127.0.0.1:1", shared_secret=SECRET)
    try:
        with pytest.raises(TransportFailure) as raised:
            await client.execute(command(), timeout_s=5)
    finally:
        await client.close()
    assert raised.value.error_code == "ClientConnectorError"


# -- gRPC ----------------------------------------------------------------------------------------


@pytest.fixture
async def grpc_endpoint() -> AsyncIterator[str]:
    server = GrpcWorkerServer(echo, CAPABILITY, shared_secret=SECRET)
    port = await server.start("127.0.0.1", 0)
    yield f"127.0.0.1:{port}"
    await server.stop(1.0)


async def raw_execute(endpoint: str, request: pb.TransitionWorkerRequest) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(endpoint) as channel:
        stub = pb_grpc.TransitionWorkerServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.Execute(request, timeout=5)
    return raised.value


def grpc_request(body: bytes, *, secret: str = SECRET, version: str = "1") -> Any:
    signed = sign(secret, "GRPC", GRPC_EXECUTE, body)
    return pb.TransitionWorkerRequest(
        protocol_version=version,
        payload_encoding=ENVELOPE_ENCODING,
        command_envelope=body,
        timestamp=signed.timestamp,
        nonce=signed.nonce,
        signature=signed.signature,
    )


async def test_grpc_round_trip_and_capabilities(grpc_endpoint: str) -> None:
    client = GrpcWorkerClient(grpc_endpoint, shared_secret=SECRET)
    try:
        result = await client.execute(command(), timeout_s=5)
        assert result == Result.completed([command().input_envelope()])
        capability = await client.capabilities(timeout_s=5)
        assert capability == CAPABILITY
    finally:
        await client.close()


async def test_grpc_rejects_bad_signature_before_checking_protocol(grpc_endpoint: str) -> None:
    body = encode_command(command())
    error = await raw_execute(grpc_endpoint, grpc_request(body, secret="wrong", version="2"))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_grpc_rejects_replayed_nonce(grpc_endpoint: str) -> None:
    request = grpc_request(encode_command(command()))
    async with grpc.aio.insecure_channel(grpc_endpoint) as channel:
        await pb_grpc.TransitionWorkerServiceStub(channel).Execute(request, timeout=5)
    error = await raw_execute(grpc_endpoint, request)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    ("body", "version", "details"),
    [
        (b'{"tenantId":"t"}', "2", "Unsupported gRPC transition worker protocol envelope"),
        (b"{oops", "1", "Malformed gRPC transition worker command envelope"),
        (b'{"tenantId":"t","extra":1}', "1", "Malformed gRPC transition worker command envelope"),
        (b'{"tenantId":"t"}', "1", "Invalid gRPC transition worker command"),
    ],
)
async def test_grpc_refuses_bad_envelopes_with_tpf_messages(
    grpc_endpoint: str, body: bytes, version: str, details: str
) -> None:
    error = await raw_execute(grpc_endpoint, grpc_request(body, version=version))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == details


async def test_grpc_client_maps_every_failure_to_worker_failure() -> None:
    server = GrpcWorkerServer(echo, CAPABILITY, shared_secret="other-secret")
    port = await server.start()
    client = GrpcWorkerClient(f"127.0.0.1:{port}", shared_secret=SECRET)
    try:
        with pytest.raises(TransportFailure) as raised:
            await client.execute(command(), timeout_s=5)
    finally:
        await client.close()
        await server.stop(1.0)
    assert raised.value.error_code == "TransitionWorkerFailureException"
    assert raised.value.message == "gRPC transition worker failed for execution e1"


async def test_grpc_client_times_out_instead_of_hanging() -> None:
    release = asyncio.Event()
    server = GrpcWorkerServer(blocking_handler(release), CAPABILITY, shared_secret=SECRET)
    port = await server.start()
    client = GrpcWorkerClient(f"127.0.0.1:{port}", shared_secret=SECRET)
    try:
        with pytest.raises(TransportFailure, match="gRPC transition worker failed for execution"):
            await client.execute(command(), timeout_s=0.5)
    finally:
        release.set()
        await client.close()
        await server.stop(1.0)


# -- SQS -----------------------------------------------------------------------------------------


@pytest.fixture
def sqs_config(moto_server: MotoServer) -> SqsConfig:
    return SqsConfig(
        region=moto_server.region,
        endpoint_url=moto_server.endpoint_url,
        access_key_id=moto_server.access_key_id,
        secret_access_key=moto_server.secret_access_key,
    )


@pytest.fixture
async def sqs(moto_server: MotoServer) -> AsyncIterator[Any]:
    async with get_session().create_client("sqs", **moto_server.client_kwargs) as client:
        yield client


async def new_queue(sqs: Any, name: str) -> str:
    created = await sqs.create_queue(QueueName=f"{name}-{uuid.uuid4().hex[:12]}")
    return str(created["QueueUrl"])


async def queue_depth(sqs: Any, url: str) -> int:
    attributes = await sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )
    values = attributes["Attributes"]
    return int(values["ApproximateNumberOfMessages"]) + int(
        values["ApproximateNumberOfMessagesNotVisible"]
    )


@pytest.fixture
async def sqs_queues(sqs: Any, sqs_config: SqsConfig) -> AsyncIterator[tuple[str, str]]:
    """A request queue with a running echo worker, and its response queue."""
    requests = await new_queue(sqs, "requests")
    responses = await new_queue(sqs, "responses")
    server = SqsWorkerServer(
        echo,
        CAPABILITY,
        shared_secret=SECRET,
        request_queue_url=requests,
        config=sqs_config,
        response_queue_url=responses,
    )
    await server.start()
    yield requests, responses
    await server.stop(1.0)


async def test_sqs_round_trip(sqs_config: SqsConfig, sqs_queues: tuple[str, str]) -> None:
    requests, responses = sqs_queues
    router = SqsReplyRouter(responses, sqs_config, shared_secret=SECRET)
    client = SqsWorkerClient(requests, router, sqs_config, shared_secret=SECRET)
    try:
        result = await client.execute(command(), timeout_s=15)
    finally:
        await client.close()
        await router.stop()
    assert result == Result.completed([command().input_envelope()])


async def test_sqs_clients_sharing_a_response_queue_get_their_own_replies(
    sqs_config: SqsConfig, sqs_queues: tuple[str, str]
) -> None:
    requests, responses = sqs_queues
    # Two dispatchers, each with its own router, on one response queue.
    routers = [SqsReplyRouter(responses, sqs_config, shared_secret=SECRET) for _ in range(2)]
    clients = [SqsWorkerClient(requests, r, sqs_config, shared_secret=SECRET) for r in routers]
    try:
        calls = [
            client.execute(command(f"e{n}-{i}", f'"{n}-{i}"'), timeout_s=20)
            for i in range(3)
            for n, client in enumerate(clients)
        ]
        results = await asyncio.gather(*calls)
    finally:
        for client in clients:
            await client.close()
        for router in routers:
            await router.stop()
    expected = [f'"{n}-{i}"' for i in range(3) for n in range(2)]
    assert [result.output_payloads[0].payload for result in results] == expected


async def test_sqs_worker_drops_unauthenticated_requests(
    sqs: Any, sqs_queues: tuple[str, str]
) -> None:
    requests, responses = sqs_queues
    command_json = encode_command(command()).decode()
    timestamp = java_instant()
    body = json.dumps(
        {
            "requestId": "r-1",
            "protocolVersion": "1",
            "commandEncoding": ENVELOPE_ENCODING,
            "commandEnvelope": command_json,
            "timestamp": timestamp,
            "nonce": "n-1",
            "signature": signature(
                "wrong", SIGNATURE_METHOD, REQUEST_PATH, timestamp, "n-1",
                signed_bytes("r-1", command_json),
            ),
        }
    )  # fmt: skip
    await sqs.send_message(QueueUrl=requests, MessageBody=body)
    await sqs.send_message(QueueUrl=requests, MessageBody='{"requestId":"r-2","bogus":1}')

    async def drained() -> bool:
        return await queue_depth(sqs, requests) == 0

    await wait_until(drained, timeout_s=15, what="bad requests deleted")
    assert await queue_depth(sqs, responses) == 0


async def test_sqs_client_times_out_without_a_worker(sqs: Any, sqs_config: SqsConfig) -> None:
    requests = await new_queue(sqs, "idle-requests")
    responses = await new_queue(sqs, "idle-responses")
    router = SqsReplyRouter(responses, sqs_config, shared_secret=SECRET)
    client = SqsWorkerClient(requests, router, sqs_config, shared_secret=SECRET)
    try:
        with pytest.raises(TransportFailure) as raised:
            await client.execute(command("e9"), timeout_s=1.5)
    finally:
        await client.close()
        await router.stop()
    assert raised.value.error_code == "TransitionWorkerFailureException"
    assert raised.value.message == (
        "Timed out waiting for SQS transition worker response for execution e9"
    )
