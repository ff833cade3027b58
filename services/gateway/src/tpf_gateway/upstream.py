"""Calls to the gRPC services behind the gateway, and what a failed call says.

One channel per upstream service (tpf_rpc's client_channel: retries on UNAVAILABLE, bearer
token, trace propagation). Methods are called by path with the generated message classes, so
the gateway needs no stub per service.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from types import MappingProxyType
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tpf_gateway.routes import Upstream
from tpf_rpc.channel import client_channel
from tpf_rpc.errors import error_info_of
from tpf_rpc.tls import ClientCertificates

# Above the services' own payload limit (4 MiB by default), so an oversized payload gets the
# service's reasoned PAYLOAD_TOO_LARGE instead of a transport error.
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_CHANNEL_OPTIONS = (
    ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
)


class UpstreamError(Exception):
    """A gRPC call that failed: its code, message and ErrorInfo (reason, domain, metadata)."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str = "",
        domain: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code.name} {reason}: {message}")
        self.code = code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.metadata: Mapping[str, str] = MappingProxyType(dict(metadata or {}))

    @classmethod
    def from_rpc_error(cls, error: grpc.aio.AioRpcError) -> UpstreamError:
        info = error_info_of(error)
        return cls(
            code=error.code(),
            message=error.details() or "",
            reason=info.reason if info is not None else "",
            domain=info.domain if info is not None else "",
            metadata=dict(info.metadata) if info is not None else None,
        )


class Upstreams:
    """The channels to the services; `call` runs one unary RPC and raises UpstreamError."""

    def __init__(
        self,
        targets: Mapping[Upstream, str],
        *,
        token: str | None,
        timeout_s: float,
        forward_caller_token: bool = True,
        tls: ClientCertificates | None = None,
    ) -> None:
        self._targets = dict(targets)
        self._timeout_s = timeout_s
        self._service_token = token
        self._forward = forward_caller_token
        # No channel-wide token: each call carries the identity it runs as.
        self._channels = {
            upstream: client_channel(target, token=None, tls=tls, options=_CHANNEL_OPTIONS)
            for upstream, target in targets.items()
        }

    @property
    def targets(self) -> Mapping[Upstream, str]:
        return MappingProxyType(self._targets)

    async def call(
        self,
        upstream: Upstream,
        method: MethodDescriptor,
        request: Message,
        *,
        caller_token: str | None = None,
    ) -> Any:
        """The response message of `method`; raises UpstreamError when the call fails.

        The call runs as the REST caller (their bearer token, so the services apply that
        token's roles and tenants) unless forwarding is off or there is none; then as the
        gateway's service token.
        """
        token = caller_token if self._forward and caller_token else self._service_token
        response_class = message_factory.GetMessageClass(method.output_type)
        callable_ = self._channels[upstream].unary_unary(
            f"/{method.containing_service.full_name}/{method.name}",
            request_serializer=_serialize,
            response_deserializer=response_class.FromString,
        )
        try:
            return await callable_(request, timeout=self._timeout_s, metadata=_authorization(token))
        except grpc.aio.AioRpcError as error:
            raise UpstreamError.from_rpc_error(error) from None

    async def stream(
        self,
        upstream: Upstream,
        method: MethodDescriptor,
        request: Message,
        *,
        caller_token: str | None = None,
    ) -> AsyncGenerator[Any, None]:
        """The messages of server-streaming `method`, as the caller (as `call` does), without
        a deadline: it lasts as long as the service streams. Raises UpstreamError when it
        fails; leaving the iteration early cancels the call."""
        token = caller_token if self._forward and caller_token else self._service_token
        response_class = message_factory.GetMessageClass(method.output_type)
        callable_ = self._channels[upstream].unary_stream(
            f"/{method.containing_service.full_name}/{method.name}",
            request_serializer=_serialize,
            response_deserializer=response_class.FromString,
        )
        call = callable_(request, metadata=_authorization(token))
        try:
            while (message := await call.read()) is not grpc.aio.EOF:
                yield message
        except grpc.aio.AioRpcError as error:
            raise UpstreamError.from_rpc_error(error) from None
        finally:
            call.cancel()

    async def serving(self, upstream: Upstream, *, timeout_s: float) -> tuple[bool, str]:
        """Whether the service's gRPC health says SERVING, and what went wrong if not."""
        stub = health_pb2_grpc.HealthStub(self._channels[upstream])
        try:
            response = await stub.Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout_s
            )
        except grpc.aio.AioRpcError as error:
            return False, f"{error.code().name}: {error.details()}"
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        return response.status == health_pb2.HealthCheckResponse.SERVING, status

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()


def _authorization(token: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()
