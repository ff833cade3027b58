"""The envelope value (TPF's `SerializedTransitionPayload`) and its camelCase JSON object form.

TPF_WIRE §2: a JSON object with exactly three non-null string fields. Unknown keys are refused,
as TPF's codec mapper refuses them in nested envelopes and worker documents; outer REST bodies,
which Quarkus binds leniently, may pass `ignore_unknown_keys=True`.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from tpf_envelope._errors import malformed_envelope
from tpf_envelope._json_text import json_kind, json_string_text
from tpf_envelope._path import ROOT

TRANSITION_ENCODING = "application/tpf-transition+json"
"""The only encoding a payload envelope may carry."""

ENVELOPE_ENCODING = "application/tpf-transition-envelope+json"
"""The encoding of worker-protocol documents (commands, results, capabilities), never payloads."""

_TYPE_ID_KEY = "payloadTypeId"
_ENCODING_KEY = "payloadEncoding"
_PAYLOAD_KEY = "payload"
_KEYS = (_TYPE_ID_KEY, _ENCODING_KEY, _PAYLOAD_KEY)


@dataclass(frozen=True, slots=True)
class Envelope:
    """One payload as it travels: a type id, an encoding, and the JSON text itself.

    `payload` is JSON *text* (a `str`), never a parsed value; nested envelopes live inside it.
    Constructing an envelope checks nothing; `decode` does.
    """

    payload_type_id: str
    payload_encoding: str
    payload: str


def to_json_dict(envelope: Envelope) -> dict[str, str]:
    """The camelCase JSON object form, keys in TPF's order."""
    return {
        _TYPE_ID_KEY: envelope.payload_type_id,
        _ENCODING_KEY: envelope.payload_encoding,
        _PAYLOAD_KEY: envelope.payload,
    }


def from_json_dict(obj: object, *, ignore_unknown_keys: bool = False, path: str = ROOT) -> Envelope:
    """Read the camelCase JSON object form; exactly the three keys, each a string.

    Raises `InvalidArgument` (PAYLOAD_UNDECODABLE) naming `path` and what is wrong. Checks only
    the shape; the encoding and type id are checked by `decode`.
    """
    if not isinstance(obj, Mapping):
        raise malformed_envelope(path, f"expected a JSON object, got {json_kind(obj)}")
    if not ignore_unknown_keys:
        unknown = sorted(str(key) for key in obj if key not in _KEYS)
        if unknown:
            raise malformed_envelope(path, f"unknown field {json_string_text(unknown[0])}")
    fields: list[str] = []
    for key in _KEYS:
        if key not in obj or obj[key] is None:
            raise malformed_envelope(path, f"{key} is required")
        value = obj[key]
        if not isinstance(value, str):
            raise malformed_envelope(path, f"{key} must be a string, got {json_kind(value)}")
        fields.append(value)
    type_id, encoding, payload = fields
    return Envelope(payload_type_id=type_id, payload_encoding=encoding, payload=payload)


def envelope_json_text(envelope: Envelope) -> str:
    """The compact JSON object text of `envelope`, as TPF nests it inside a payload."""
    return (
        f'{{"{_TYPE_ID_KEY}":{json_string_text(envelope.payload_type_id)},'
        f'"{_ENCODING_KEY}":{json_string_text(envelope.payload_encoding)},'
        f'"{_PAYLOAD_KEY}":{json_string_text(envelope.payload)}}}'
    )
