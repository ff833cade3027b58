"""TpfError and one convenience subclass per client-facing kind.

Domain code raises these without importing grpc; `tpf_rpc` turns them into a
`google.rpc.Status` at the server edge. Whether `reason` is a value of the proto enum
`ErrorReason` is checked there, because this package depends on nothing.
"""

import re
from collections.abc import Mapping
from typing import ClassVar

from tpf_errors._kind import ErrorKind

# AIP-193: UPPER_SNAKE_CASE, at most 63 characters.
_REASON_PATTERN = re.compile(r"[A-Z][A-Z0-9_]{0,62}")
_PROTO_PREFIX = "ERROR_REASON_"

MetadataValue = str | int


class TpfError(Exception):
    """An error a client can act on: a kind, a stable reason, a how-to-fix message, metadata.

    `reason` is an `ErrorReason` value name without its `ERROR_REASON_` prefix
    (`RELEASE_NOT_FOUND`). `metadata` keys are lowerCamel and carry every dynamic value the
    message mentions, so clients never parse the message.
    """

    def __init__(
        self,
        kind: ErrorKind,
        reason: str,
        message: str,
        metadata: Mapping[str, MetadataValue] | None = None,
    ) -> None:
        if reason.startswith(_PROTO_PREFIX) or not _REASON_PATTERN.fullmatch(reason):
            raise ValueError(
                f"error reason {reason!r} must be an ErrorReason name without the "
                f"{_PROTO_PREFIX} prefix, UPPER_SNAKE_CASE, at most 63 characters"
            )
        super().__init__(message)
        self.kind = kind
        self.reason = reason
        self.message = message
        self.metadata: dict[str, str] = {key: str(value) for key, value in (metadata or {}).items()}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(kind={self.kind.value}, reason={self.reason!r}, "
            f"message={self.message!r}, metadata={self.metadata!r})"
        )


class _KindedError(TpfError):
    """Base of the convenience subclasses: the kind is fixed by the class."""

    error_kind: ClassVar[ErrorKind]

    # reason and message are positional-only so a metadata key may be named like them.
    def __init__(self, reason: str, message: str, /, **metadata: MetadataValue) -> None:
        super().__init__(self.error_kind, reason, message, metadata)


class InvalidArgument(_KindedError):
    error_kind = ErrorKind.INVALID_ARGUMENT


class NotFound(_KindedError):
    error_kind = ErrorKind.NOT_FOUND


class AlreadyExists(_KindedError):
    error_kind = ErrorKind.ALREADY_EXISTS


class FailedPrecondition(_KindedError):
    error_kind = ErrorKind.FAILED_PRECONDITION


class Aborted(_KindedError):
    error_kind = ErrorKind.ABORTED


class ResourceExhausted(_KindedError):
    error_kind = ErrorKind.RESOURCE_EXHAUSTED


class Unavailable(_KindedError):
    error_kind = ErrorKind.UNAVAILABLE


class Unauthenticated(_KindedError):
    error_kind = ErrorKind.UNAUTHENTICATED


class PermissionDenied(_KindedError):
    error_kind = ErrorKind.PERMISSION_DENIED
