"""Plain JSON → TPF payload envelope, as TPF's SQS await-completion adapter wraps a response.

TPF's SQS completion body carries `responsePayload` as plain JSON and TPF's codec encodes the
parsed value: an object becomes a `java.util.Map` whose `items` are nested envelopes, an array a
`java.util.List`, and scalars their JDK types (TPF_WIRE §2, §9.6) — what `tpf_envelope.encode`
writes.
"""

from __future__ import annotations

from tpf.common.v1 import payload_pb2
from tpf_envelope import DEFAULT_MAX_DEPTH, encode
from tpf_errors import TpfError

MAX_DEPTH = DEFAULT_MAX_DEPTH


class PlainPayloadError(ValueError):
    """The value has no TPF form (blank key, non-finite number, too deep); says where."""


def wrap_plain_json(value: object) -> payload_pb2.PayloadEnvelope:
    """The envelope TPF's codec writes for a parsed JSON value (`json.loads` output)."""
    try:
        envelope = encode(value, max_depth=MAX_DEPTH)
    except (TpfError, TypeError) as error:
        raise PlainPayloadError(str(error)) from error
    return payload_pb2.PayloadEnvelope(
        payload_type_id=envelope.payload_type_id,
        payload_encoding=envelope.payload_encoding,
        payload=envelope.payload,
    )
