"""The one mapping from TpfError to gRPC status: a code plus exactly one google.rpc.ErrorInfo.

AIP-193 shape: the status message is the error's how-to-fix message, and the ErrorInfo holds
the machine-readable reason, the service's domain (`tpf.<service>`) and the metadata.

A status travels in HTTP/2 trailers, which peers refuse past their metadata limit (8 KiB by
default); the client then sees INTERNAL instead of our answer. So no input is echoed unbounded:
the message and each metadata value are cut, with a marker, here and nowhere else, and a status
still too large for the trailers goes without its details, as the plain code and message.
"""

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from tpf.common.v1 import error_reason_pb2
from tpf_errors import ErrorKind, TpfError

REASON_PREFIX = "ERROR_REASON_"

KIND_TO_CODE: MappingProxyType[ErrorKind, grpc.StatusCode] = MappingProxyType(
    {
        ErrorKind.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
        ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
        ErrorKind.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
        ErrorKind.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
        ErrorKind.ABORTED: grpc.StatusCode.ABORTED,
        ErrorKind.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
        ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
        ErrorKind.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
        ErrorKind.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
        ErrorKind.INTERNAL: grpc.StatusCode.INTERNAL,
    }
)


def is_known_reason(reason: str) -> bool:
    """Whether `reason` (prefix-less) is a value of the proto enum `ErrorReason`."""
    try:
        error_reason_pb2.ErrorReason.Value(f"{REASON_PREFIX}{reason}")
    except ValueError:
        return False
    return True


MAX_MESSAGE_CHARS = 1024
MAX_METADATA_VALUE_CHARS = 256
# Our share of the trailers (the message, percent-encoded, and the details, base64-encoded),
# well inside the 8 KiB a peer accepts by default.
MAX_STATUS_BYTES = 4096
_SHORTEST_MESSAGE_CHARS = 80
_DETAILS_KEY = "grpc-status-details-bin"
# Server pushback (gRFC A6): a negative value tells the caller's channel not to retry.
_NO_RETRY = ("grpc-retry-pushback-ms", "-1")


@dataclass(frozen=True, slots=True)
class _Status(grpc.Status):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...]


def bounded(text: str, limit: int) -> str:
    """`text` if it has at most `limit` characters; else its start and a marker saying how many
    characters were cut, `limit` characters in all."""
    if len(text) <= limit:
        return text
    marker = f"... [{len(text)} characters, cut]"
    return text[: max(0, limit - len(marker))] + marker


def to_status(error: TpfError, *, domain: str) -> grpc.Status:
    """Build the status to abort with: kind's code, error message, one ErrorInfo.

    The message and metadata values are bounded (MAX_MESSAGE_CHARS, MAX_METADATA_VALUE_CHARS);
    a status whose details would still overflow the trailers is sent without them. UNAVAILABLE
    carries server pushback: the service has already waited for what it lacks (a pool
    connection, its own channel's retries), so a caller's channel must not repeat the call on
    top of that: one retry budget per call path.

    Raises ValueError if the reason is not in `ErrorReason`: reasons are a published
    contract, so an unlisted one is a bug to fix in the proto first.
    """
    if not is_known_reason(error.reason) or error.reason == "UNSPECIFIED":
        raise ValueError(
            f"error reason {error.reason!r} is not in tpf.common.v1.ErrorReason; "
            f"add {REASON_PREFIX}{error.reason} to proto/tpf/common/v1/error_reason.proto"
        )
    if not domain:
        raise ValueError("error domain must be set, e.g. 'tpf.registry'")
    code = KIND_TO_CODE[error.kind]
    extra = (_NO_RETRY,) if code is grpc.StatusCode.UNAVAILABLE else ()
    info = error_details_pb2.ErrorInfo(
        reason=error.reason, domain=domain, metadata=_bounded_metadata(error.metadata)
    )
    message = bounded(error.message, MAX_MESSAGE_CHARS)
    while True:
        status = status_pb2.Status(code=code.value[0], message=message)
        status.details.add().Pack(info)
        details = status.SerializeToString()
        if _encoded_size(message) + _base64_size(details) <= MAX_STATUS_BYTES:
            return _Status(code, message, ((_DETAILS_KEY, details), *extra))
        if len(message) <= _SHORTEST_MESSAGE_CHARS:
            # The ErrorInfo alone is too large: send what fits.
            return plain_status(code, message, trailing_metadata=extra)
        # Characters that percent-encode long (non-ASCII): halve until it fits.
        message = bounded(message, len(message) // 2)


def plain_status(
    code: grpc.StatusCode,
    message: str,
    *,
    trailing_metadata: tuple[tuple[str, str], ...] = (),
) -> grpc.Status:
    """A status without details, its message cut to fit the trailers."""
    while _encoded_size(message) > MAX_STATUS_BYTES:
        message = bounded(message, len(message) // 2)
    return _Status(code, message, trailing_metadata)


def _bounded_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    return {key: bounded(value, MAX_METADATA_VALUE_CHARS) for key, value in metadata.items()}


def _encoded_size(message: str) -> int:
    """Bytes of `message` in the grpc-message trailer: printable ASCII as is, the rest of its
    UTF-8 bytes (and '%') percent-encoded."""
    return sum(1 if 0x20 <= b <= 0x7E and b != 0x25 else 3 for b in message.encode())


def _base64_size(data: bytes) -> int:
    return len(base64.b64encode(data))


def internal_error(trace_id: str) -> TpfError:
    """The generic INTERNAL error sent for bugs; the trace id finds the stack in the logs."""
    return TpfError(
        ErrorKind.INTERNAL,
        "INTERNAL",
        f"Internal error; report trace id {trace_id} to the operators.",
        {"traceId": trace_id},
    )


def error_info_of(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo | None:
    """Client side: the ErrorInfo carried by a failed call, or None if it has none, or if its
    details belong to another status than the one the call ended with (a status replaced on
    the way, e.g. by the transport): a reason is never reported for the wrong code."""
    try:
        status: status_pb2.Status | None = rpc_status.from_call(error)
    except ValueError:
        return None
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None
