"""TPF's gRPC worker protocol: `org.pipelineframework.orchestrator.grpc.TransitionWorkerService`.

The JSON documents travel as bytes in the request/response messages, signed with HMAC in message
fields (TPF_WIRE §9.5). Server status codes and messages are TPF's own, so a TPF coordinator
can call our workers and our dispatcher can call TPF workers; the signature is checked before
the protocol fields, as TPF does.
"""

import asyncio
import logging
from datetime import timedelta
from typing import Final

import grpc
from opentelemetry import trace
from org.pipelineframework.orchestrator.grpc import (
    transition_worker_pb2 as pb,
)
from org.pipelineframework.orchestrator.grpc import (
    transition_worker_pb2_grpc as pb_grpc,
)

from tpf_envelope import ENVELOPE_ENCODING
from tpf_rpc.channel import trace_propagating_interceptors
from tpf_rpc.interceptors import TracingInterceptor
from tpf_rpc.renewing_channel import RenewingChannel
from tpf_rpc.tls import ClientCertificates, ServerCertificates
from tpf_worker.nonces import NonceCache
from tpf_worker.protocol.capability import Capability, decode_capability, encode_capability
from tpf_worker.protocol.command import Command, decode_command, encode_command
from tpf_worker.protocol.malformed import InvalidCommand, MalformedEnvelope
from tpf_worker.protocol.result import Result, decode_result, encode_result
from tpf_worker.protocol.version import PROTOCOL_VERSION
from tpf_worker.signing import SignatureRejected, Verifier, sign
from tpf_worker.tracing import transport_span
from tpf_worker.transports import WORKER_FAILURE, CommandHandler, TransportFailure

__all__ = ["CAPABILITIES_PATH", "EXECUTE_PATH", "GrpcWorkerClient", "GrpcWorkerServer"]

logger = logging.getLogger(__name__)

_SERVICE: Final = "org.pipelineframework.orchestrator.grpc.TransitionWorkerService"
EXECUTE_PATH: Final = f"/{_SERVICE}/Execute"
CAPABILITIES_PATH: Final = f"/{_SERVICE}/Capabilities"
_METHOD: Final = "GRPC"
_MIN_INBOUND_BYTES: Final = 1024


class _Servicer(pb_grpc.TransitionWorkerServiceServicer):
    def __init__(self, handler: CommandHandler, capability: Capability, verifier: Verifier) -> None:
        self._handler = handler
        self._capability = capability
        self._verifier = verifier

    async def _authenticate(
        self,
        context: grpc.aio.ServicerContext[object, object],
        path: str,
        request: pb.TransitionWorkerRequest | pb.TransitionWorkerCapabilitiesRequest,
        body: bytes,
    ) -> None:
        try:
            await self._verifier.verify(
                _METHOD, path, request.timestamp, request.nonce, request.signature, body
            )
        except SignatureRejected as rejected:
            logger.warning("gRPC worker request rejected: %s", rejected.reason)
            # TPF answers a bare UNAUTHENTICATED, no description.
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "")

    async def Execute(
        self,
        request: pb.TransitionWorkerRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> pb.TransitionWorkerResponse:
        body = request.command_envelope
        await self._authenticate(context, EXECUTE_PATH, request, body)
        if (
            request.protocol_version != PROTOCOL_VERSION
            or request.payload_encoding != ENVELOPE_ENCODING
        ):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "Unsupported gRPC transition worker protocol envelope",
            )
        try:
            command = decode_command(body)
        except InvalidCommand:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "Invalid gRPC transition worker command"
            )
        except MalformedEnvelope:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "Malformed gRPC transition worker command envelope",
            )
        try:
            with transport_span(command):
                result = await self._handler(command)
            result_bytes = encode_result(result)
        except Exception:  # any handler bug becomes TPF's INTERNAL answer, logged once here
            logger.exception(
                "gRPC transition worker command failed for execution %s", command.execution_id
            )
            await context.abort(
                grpc.StatusCode.INTERNAL, "Failed executing gRPC transition worker command"
            )
        return pb.TransitionWorkerResponse(
            protocol_version=PROTOCOL_VERSION,
            payload_encoding=ENVELOPE_ENCODING,
            result_envelope=result_bytes,
        )

    async def Capabilities(
        self,
        request: pb.TransitionWorkerCapabilitiesRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> pb.TransitionWorkerCapabilitiesResponse:
        await self._authenticate(context, CAPABILITIES_PATH, request, b"")
        if request.protocol_version != PROTOCOL_VERSION:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "Unsupported gRPC transition worker capability protocol",
            )
        return pb.TransitionWorkerCapabilitiesResponse(
            protocol_version=PROTOCOL_VERSION,
            payload_encoding=ENVELOPE_ENCODING,
            capability_envelope=encode_capability(self._capability),
        )


class GrpcWorkerServer:
    """Serves one worker over gRPC: plain text, or TLS with `tls` (which also requires client
    certificates when it names a client CA; rotated files are served without a restart)."""

    def __init__(
        self,
        handler: CommandHandler,
        capability: Capability,
        *,
        shared_secret: str,
        tolerance: timedelta = timedelta(minutes=2),
        tls: ServerCertificates | None = None,
        nonces: NonceCache | None = None,
    ) -> None:
        if not shared_secret:
            raise ValueError("gRPC transition worker shared secret is unavailable")
        self._servicer = _Servicer(
            handler, capability, Verifier(shared_secret, tolerance=tolerance, nonces=nonces)
        )
        self._tls = tls
        self._server: grpc.aio.Server | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Start serving; returns the bound port (useful with `port=0`)."""
        # A SERVER span per call, continuing the caller's traceparent (gRPC metadata).
        server = grpc.aio.server(interceptors=[TracingInterceptor(trace.get_tracer_provider())])
        pb_grpc.add_TransitionWorkerServiceServicer_to_server(self._servicer, server)
        address = f"{host}:{port}"
        if self._tls is None:
            bound = server.add_insecure_port(address)
        else:
            bound = server.add_secure_port(address, self._tls.grpc_credentials())
        await server.start()
        self._server = server
        return bound

    async def stop(self, grace_s: float = 5.0) -> None:
        """Refuse new calls and let in-flight ones finish within `grace_s`."""
        if self._server is not None:
            await self._server.stop(grace_s)
            self._server = None


def _target(endpoint: str) -> str:
    """`host:port` or a gRPC target URI; http(s) URLs are reduced to their authority."""
    for scheme in ("http://", "https://"):
        if endpoint.startswith(scheme):
            return endpoint[len(scheme) :].rstrip("/")
    return endpoint


class GrpcWorkerClient:
    """Calls a TPF-protocol gRPC worker; every failure is a `TransitionWorkerFailureException`.

    `plaintext=False` speaks TLS, checking the worker against `tls`'s CA (and presenting its
    client certificate), or against the system's trusted CAs without `tls`.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        shared_secret: str,
        plaintext: bool = True,
        tls: ClientCertificates | None = None,
        max_inbound_bytes: int = 4_194_304,
    ) -> None:
        options = [("grpc.max_receive_message_length", max(_MIN_INBOUND_BYTES, max_inbound_bytes))]
        target = _target(endpoint)
        interceptors = trace_propagating_interceptors()
        self._channel: grpc.aio.Channel
        if plaintext:
            self._channel = grpc.aio.insecure_channel(
                target, options=options, interceptors=interceptors
            )
        elif tls is not None:
            # Follows tls's files through rotation (a client kept for the process's life).
            self._channel = RenewingChannel(
                lambda credentials: grpc.aio.secure_channel(
                    target, credentials, options=options, interceptors=interceptors
                ),
                tls,
            )
        else:
            self._channel = grpc.aio.secure_channel(
                target,
                grpc.ssl_channel_credentials(),
                options=options,
                interceptors=interceptors,
            )
        self._stub = pb_grpc.TransitionWorkerServiceStub(self._channel)
        self._secret = shared_secret

    async def execute(self, command: Command, *, timeout_s: float) -> Result:
        execution_id = command.execution_id
        body = encode_command(command)
        signed = sign(self._secret, _METHOD, EXECUTE_PATH, body)
        request = pb.TransitionWorkerRequest(
            protocol_version=PROTOCOL_VERSION,
            payload_encoding=ENVELOPE_ENCODING,
            command_envelope=body,
            timestamp=signed.timestamp,
            nonce=signed.nonce,
            signature=signed.signature,
        )
        try:
            async with asyncio.timeout(timeout_s):
                response = await self._stub.Execute(request, timeout=timeout_s)
        except (grpc.aio.AioRpcError, TimeoutError) as error:
            logger.info("gRPC worker call failed for execution %s: %s", execution_id, error)
            raise TransportFailure(
                WORKER_FAILURE, f"gRPC transition worker failed for execution {execution_id}"
            ) from None
        if (
            response.protocol_version != PROTOCOL_VERSION
            or response.payload_encoding != ENVELOPE_ENCODING
        ):
            raise TransportFailure(
                WORKER_FAILURE,
                "gRPC transition worker returned unsupported protocol envelope for execution "
                f"{execution_id}",
            )
        try:
            return decode_result(response.result_envelope)
        except MalformedEnvelope:
            raise TransportFailure(
                WORKER_FAILURE,
                "gRPC transition worker returned malformed result envelope for execution "
                f"{execution_id}",
            ) from None

    async def capabilities(self, *, timeout_s: float) -> Capability:
        signed = sign(self._secret, _METHOD, CAPABILITIES_PATH, b"")
        request = pb.TransitionWorkerCapabilitiesRequest(
            protocol_version=PROTOCOL_VERSION,
            timestamp=signed.timestamp,
            nonce=signed.nonce,
            signature=signed.signature,
        )
        try:
            async with asyncio.timeout(timeout_s):
                response = await self._stub.Capabilities(request, timeout=timeout_s)
        except (grpc.aio.AioRpcError, TimeoutError):
            raise TransportFailure(
                WORKER_FAILURE, "gRPC transition worker capabilities call failed"
            ) from None
        if (
            response.protocol_version != PROTOCOL_VERSION
            or response.payload_encoding != ENVELOPE_ENCODING
        ):
            raise TransportFailure(
                WORKER_FAILURE, "gRPC transition worker capabilities used an unsupported protocol"
            )
        try:
            return decode_capability(response.capability_envelope)
        except MalformedEnvelope:
            raise TransportFailure(
                WORKER_FAILURE, "gRPC transition worker capabilities returned malformed JSON"
            ) from None

    async def close(self) -> None:
        await self._channel.close()
