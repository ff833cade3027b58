"""client_channel: how one TPF service calls another over gRPC.

Retries live in the channel's service config (gRPC's own retry with exponential backoff and
jitter), never in hand-written loops. Outgoing calls carry the bearer token and the current
W3C trace context, so a trace spans services.
"""

import json
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, Final

import grpc
from opentelemetry import propagate, trace

from tpf_rpc.client_tracing import ClientSpans
from tpf_rpc.renewing_channel import RenewingChannel
from tpf_rpc.tls import ClientCertificates

# Retried: UNAVAILABLE made by the gRPC library (the call reached no service; our mutating RPCs
# take request ids, so a replay is safe anyway). A service's own UNAVAILABLE (its database or
# the registry is down) carries server pushback (tpf_rpc.errors) and is not retried here: the
# service already waited, and one retry layer per call path keeps waits from multiplying.
# round_robin: a target naming several replicas (`dns:///` of a headless Service, or
# `ipv4:host:port,host:port`) spreads calls over every replica that answers and skips one that
# went away; with one address it behaves as the default pick_first.
_SERVICE_CONFIG: Final = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [
        {
            "name": [{}],
            "retryPolicy": {
                "maxAttempts": 4,
                "initialBackoff": "0.1s",
                "maxBackoff": "2s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ],
}
# For callers whose own loop is the one retry layer of their calls (the dispatcher): the same
# balancing, no retry policy, so the two never multiply each other's attempts.
_SERVICE_CONFIG_WITHOUT_RETRIES: Final[dict[str, Any]] = {
    "loadBalancingConfig": [{"round_robin": {}}]
}

# Codes after which the same call may work later: it may not have reached a healthy service
# (UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED), the service asked for a retry (ABORTED,
# RESOURCE_EXHAUSTED), or it lost its database mid-call (INTERNAL, UNKNOWN). The SQS bridge
# treats exactly these as transient (the dispatcher repeats only UNAVAILABLE and
# DEADLINE_EXCEEDED: tpf_dispatcher.retrying).
TRANSIENT_CODES: Final = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    }
)


def client_channel(
    target: str,
    *,
    token: str | None,
    tls: ClientCertificates | None = None,
    credentials: grpc.ChannelCredentials | None = None,
    options: Sequence[tuple[str, Any]] = (),
    tracer_provider: trace.TracerProvider | None = None,
    retries: bool = True,
) -> grpc.aio.Channel:
    """A channel to `target` ("host:port") with retries, bearer token and trace propagation.

    `retries` False leaves the retry policy out, for a caller that retries in its own loop.

    Plain text unless `tls` or `credentials` is given. With `tls` the channel follows its
    certificate files: after they change, calls go through a new connection made with the new
    files (RenewingChannel). The server's certificate must name the target's host. Close it
    with `await channel.close()`.
    """
    options = [
        ("grpc.enable_retries", 1 if retries else 0),
        # gRPC's default reconnect backoff grows to 120 s: a peer restarted during a redeploy
        # would stay unreachable for minutes after it is back. Calls fail fast while the
        # subchannel backs off, so keep the backoff short.
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 3000),
        (
            "grpc.service_config",
            json.dumps(_SERVICE_CONFIG if retries else _SERVICE_CONFIG_WITHOUT_RETRIES),
        ),
        *options,
    ]
    interceptors = _outgoing_metadata_interceptors(token, ClientSpans(tracer_provider))
    if tls is not None:
        return RenewingChannel(
            lambda renewed: grpc.aio.secure_channel(
                target, renewed, options=options, interceptors=interceptors
            ),
            tls,
        )
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
    return grpc.aio.secure_channel(target, credentials, options=options, interceptors=interceptors)


def trace_propagating_interceptors(
    tracer_provider: trace.TracerProvider | None = None,
) -> list[Any]:
    """Interceptors for a grpc.aio channel built elsewhere (a worker client): a CLIENT span
    per call and its `traceparent` in the metadata, without a bearer token."""
    return _outgoing_metadata_interceptors(None, ClientSpans(tracer_provider))


def _outgoing_metadata_interceptors(token: str | None, spans: ClientSpans) -> list[Any]:
    """One interceptor per call kind.

    grpc.aio files each channel interceptor under the *first* interceptor kind it is an instance
    of (an if/elif chain), so a single object implementing all four would only ever see unary
    calls: server-streaming calls (WatchExecution) would go out without a token.
    """
    return [
        _UnaryUnaryMetadata(token, spans),
        _UnaryStreamMetadata(token, spans),
        _StreamUnaryMetadata(token, spans),
        _StreamStreamMetadata(token, spans),
    ]


class _OutgoingMetadataInterceptor:
    """Wraps every call in a CLIENT span and adds `authorization: Bearer <token>` and that
    span's `traceparent`.

    An interceptor rather than call credentials, because gRPC refuses call credentials on
    plain-text channels and the embedded default runs without TLS.
    """

    def __init__(self, token: str | None, spans: ClientSpans) -> None:
        self._authorization = f"Bearer {token}" if token else None
        self._spans = spans

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        if self._authorization is not None:
            metadata["authorization"] = self._authorization
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        for key, value in carrier.items():
            metadata[key] = value
        return grpc.aio.ClientCallDetails(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            details.wait_for_ready,
        )

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        return await self._spans.unary(
            client_call_details.method,
            lambda: continuation(self._details(client_call_details), request),
        )

    async def intercept_unary_stream(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        return await self._spans.streaming(
            client_call_details.method,
            lambda: continuation(self._details(client_call_details), request),
        )

    async def intercept_stream_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: AsyncIterable[Any] | Iterable[Any],
    ) -> Any:
        return await self._spans.streaming(
            client_call_details.method,
            lambda: continuation(self._details(client_call_details), request_iterator),
        )

    async def intercept_stream_stream(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: AsyncIterable[Any] | Iterable[Any],
    ) -> AsyncIterator[Any] | Any:
        return await self._spans.streaming(
            client_call_details.method,
            lambda: continuation(self._details(client_call_details), request_iterator),
        )


class _UnaryUnaryMetadata(_OutgoingMetadataInterceptor, grpc.aio.UnaryUnaryClientInterceptor):
    """Adds the metadata to unary-unary calls."""


class _UnaryStreamMetadata(_OutgoingMetadataInterceptor, grpc.aio.UnaryStreamClientInterceptor):
    """Adds the metadata to unary-stream calls."""


class _StreamUnaryMetadata(_OutgoingMetadataInterceptor, grpc.aio.StreamUnaryClientInterceptor):
    """Adds the metadata to stream-unary calls."""


class _StreamStreamMetadata(_OutgoingMetadataInterceptor, grpc.aio.StreamStreamClientInterceptor):
    """Adds the metadata to stream-stream calls."""
