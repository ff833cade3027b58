"""Typed errors domain code raises; tpf_rpc maps them to gRPC status with one ErrorInfo."""

from tpf_errors._error import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    MetadataValue,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    TpfError,
    Unauthenticated,
    Unavailable,
)
from tpf_errors._fields import field_invalid, field_required, field_too_long
from tpf_errors._kind import ErrorKind

__all__ = [
    "Aborted",
    "AlreadyExists",
    "ErrorKind",
    "FailedPrecondition",
    "InvalidArgument",
    "MetadataValue",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "TpfError",
    "Unauthenticated",
    "Unavailable",
    "field_invalid",
    "field_required",
    "field_too_long",
]
