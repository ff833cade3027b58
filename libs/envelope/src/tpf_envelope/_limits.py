"""How big and how deep a payload may be, and when a caller should store it out of line.

Size is the UTF-8 length of the outer envelope's `payload` text. Nested envelopes live inside
that text, so one number bounds the whole value; the type id and encoding are not counted.
"""

from tpf_envelope._envelope import Envelope
from tpf_envelope._errors import too_large

DEFAULT_MAX_DEPTH = 64
"""Most levels a decoded value may nest: each envelope and each JSON array/object inside an
application object counts one; the outer envelope is level 1."""

DEFAULT_MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
"""Largest payload text `decode` accepts by default: gRPC's default message size."""

DEFAULT_OFFLOAD_THRESHOLD_BYTES = 256 * 1024
"""Payloads larger than this go to the artifact store and the row keeps a reference (DESIGN §5)."""


def payload_size_bytes(envelope: Envelope) -> int:
    """UTF-8 length of the payload text (lone surrogates, legal in Java strings, count 3)."""
    return len(envelope.payload.encode("utf-8", "surrogatepass"))


def check_payload_size(envelope: Envelope, *, limit_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> int:
    """Return the payload's size; raise `ResourceExhausted` (PAYLOAD_TOO_LARGE) above the limit."""
    size_bytes = payload_size_bytes(envelope)
    if size_bytes > limit_bytes:
        raise too_large(size_bytes, limit_bytes)
    return size_bytes


def should_offload(
    envelope: Envelope, *, threshold_bytes: int = DEFAULT_OFFLOAD_THRESHOLD_BYTES
) -> bool:
    """True if the payload is larger than the offload threshold and belongs in the object store."""
    return payload_size_bytes(envelope) > threshold_bytes
