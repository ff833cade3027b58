"""The one mapping from TpfError to gRPC status: a code plus exactly one google.rpc.ErrorInfo.

AIP-193 shape: the status message is the error's how-to-fix message, and the ErrorInfo holds
the machine-readable reason, the service's domain (`tpf.<service>`) and the metadata.
"""

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


def to_status(error: TpfError, *, domain: str) -> grpc.Status:
    """Build the status to abort with: kind's code, error message, one ErrorInfo.

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
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=domain, metadata=error.metadata)
    status = status_pb2.Status(code=code.value[0], message=error.message)
    status.details.add().Pack(info)
    result: grpc.Status = rpc_status.to_status(status)
    return result


def internal_error(trace_id: str) -> TpfError:
    """The generic INTERNAL error sent for bugs; the trace id finds the stack in the logs."""
    return TpfError(
        ErrorKind.INTERNAL,
        "INTERNAL",
        f"Internal error; report trace id {trace_id} to the operators.",
        {"traceId": trace_id},
    )


def error_info_of(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo | None:
    """Client side: the ErrorInfo carried by a failed call, or None if it has none."""
    status: status_pb2.Status | None = rpc_status.from_call(error)
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None
