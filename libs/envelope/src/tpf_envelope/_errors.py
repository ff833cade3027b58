"""The errors this package raises, built in one place so reasons, messages and metadata agree.

Reasons are `ErrorReason` names (proto/tpf/common/v1/error_reason.proto). Messages for the
encoding and type refusals are TPF's own text (TPF_WIRE §2), so gateways can pass them on.
"""

from tpf_errors import InvalidArgument, ResourceExhausted


def undecodable(path: str, type_id: str, detail: str) -> InvalidArgument:
    """The payload text at `path` does not parse, or does not fit `type_id`."""
    return InvalidArgument(
        "PAYLOAD_UNDECODABLE",
        f"Payload at {path} does not decode as {type_id}: {detail}.",
        path=path,
        payloadTypeId=type_id,
        detail=detail,
    )


def malformed_envelope(path: str, detail: str) -> InvalidArgument:
    """The object at `path` is not an envelope of exactly three non-null strings."""
    return InvalidArgument(
        "PAYLOAD_UNDECODABLE",
        f"Envelope at {path} is malformed: {detail}. An envelope has exactly the string fields "
        "payloadTypeId, payloadEncoding and payload.",
        path=path,
        detail=detail,
    )


def encoding_unsupported(path: str, encoding: str) -> InvalidArgument:
    """An envelope's encoding is not `application/tpf-transition+json` (TPF's message)."""
    return InvalidArgument(
        "PAYLOAD_ENCODING_UNSUPPORTED",
        f"Unsupported transition payload encoding: {encoding}",
        payloadEncoding=encoding,
        path=path,
    )


def type_unsupported(path: str, type_id: str) -> InvalidArgument:
    """A type id is neither built in nor under an allowed prefix (TPF's message)."""
    return InvalidArgument(
        "PAYLOAD_TYPE_UNSUPPORTED",
        f"Unsupported transition payload type: {type_id}",
        payloadTypeId=type_id,
        path=path,
    )


def too_deep(path: str, max_depth: int) -> InvalidArgument:
    """The value nests deeper than the configured limit at `path`."""
    return InvalidArgument(
        "PAYLOAD_UNDECODABLE",
        f"Payload at {path} is nested more than {max_depth} levels deep; flatten the payload.",
        path=path,
        maxDepth=max_depth,
    )


def too_large(size_bytes: int, limit_bytes: int) -> ResourceExhausted:
    """The payload text is longer than the configured limit."""
    return ResourceExhausted(
        "PAYLOAD_TOO_LARGE",
        f"Payload is {size_bytes} bytes, over the limit of {limit_bytes} bytes; "
        "send a smaller payload.",
        limitBytes=limit_bytes,
        sizeBytes=size_bytes,
    )


def unencodable(path: str, detail: str) -> InvalidArgument:
    """A Python value at `path` has no TPF envelope form (blank map key, NaN, ...).

    There is no separate "unencodable" reason: the value would be an undecodable payload.
    """
    return InvalidArgument(
        "PAYLOAD_UNDECODABLE",
        f"Value at {path} cannot be encoded as a TPF payload: {detail}.",
        path=path,
        detail=detail,
    )
