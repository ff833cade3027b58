"""`decode`: an envelope to its Python value, checking what TPF's codec checks (TPF_WIRE §2).

Order of checks per envelope, as in TPF: encoding, then type id, then the text. Nested envelopes
(Map, List, Set, input snapshot) are decoded recursively with the same rules, and every error
names the path of the envelope that failed (`$.accepted.orderId`).
"""

from collections.abc import Sequence
from dataclasses import dataclass

from tpf_envelope._envelope import TRANSITION_ENCODING, Envelope, from_json_dict
from tpf_envelope._errors import encoding_unsupported, too_deep, type_unsupported, undecodable
from tpf_envelope._json_text import (
    JsonTextError,
    JsonValue,
    json_kind,
    json_nesting_depth,
    parse_json_text,
)
from tpf_envelope._limits import DEFAULT_MAX_DEPTH, DEFAULT_MAX_PAYLOAD_BYTES, check_payload_size
from tpf_envelope._path import ROOT, index_path, key_path
from tpf_envelope._scalars import ScalarMismatch, decode_scalar
from tpf_envelope._type_ids import (
    COLLECTION_TYPE_IDS,
    DEFAULT_ALLOWED_PREFIXES,
    INPUT_SNAPSHOT,
    JDK_SCALAR_TYPE_IDS,
    MAP,
    NULL,
    is_java_binary_name,
)
from tpf_envelope._values import ApplicationValue, Decoded, InputShape, InputSnapshot, Value

# Python's default recursion limit is 1000 frames; each level of nesting costs about three.
MAX_SUPPORTED_DEPTH = 200

_ITEMS = "items"
_SNAPSHOT_FIELDS = frozenset({"shape", "payload", "items"})


def decode(
    envelope: Envelope,
    *,
    allowed_prefixes: Sequence[str] = DEFAULT_ALLOWED_PREFIXES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_size_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
) -> Decoded:
    """Decode `envelope` and everything nested in it.

    Raises `ResourceExhausted` PAYLOAD_TOO_LARGE when the payload text is over `max_size_bytes`;
    `InvalidArgument` PAYLOAD_ENCODING_UNSUPPORTED, PAYLOAD_TYPE_UNSUPPORTED (an application type
    id outside `allowed_prefixes`) or PAYLOAD_UNDECODABLE (text that does not parse or fit its
    type, a malformed nested envelope, nesting deeper than `max_depth`).
    """
    check_payload_size(envelope, limit_bytes=max_size_bytes)
    if not 1 <= max_depth <= MAX_SUPPORTED_DEPTH:
        raise ValueError(f"max_depth must be between 1 and {MAX_SUPPORTED_DEPTH}, not {max_depth}")
    reader = _Reader(prefixes=effective_prefixes(allowed_prefixes), max_depth=max_depth)
    return Decoded(envelope.payload_type_id, reader.value(envelope, ROOT, 1), envelope)


def effective_prefixes(allowed_prefixes: Sequence[str]) -> tuple[str, ...]:
    """The prefixes TPF would use: blank entries dropped, none left means the default."""
    if isinstance(allowed_prefixes, str):
        raise TypeError("allowed_prefixes is a sequence of prefixes, not one string")
    kept = tuple(prefix for prefix in allowed_prefixes if prefix.strip())
    return kept or DEFAULT_ALLOWED_PREFIXES


def collection_item_envelopes(envelope: Envelope) -> list[Envelope]:
    """The item envelopes of a List or Set envelope, as sent; decode it first to validate it."""
    parsed = _parse(envelope, ROOT)
    items = _list_items(parsed, envelope.payload_type_id, ROOT)
    return [from_json_dict(item, path=index_path(ROOT, index)) for index, item in enumerate(items)]


@dataclass(frozen=True, slots=True)
class _Reader:
    prefixes: tuple[str, ...]
    max_depth: int

    def value(self, envelope: Envelope, path: str, depth: int) -> Value:
        if depth > self.max_depth:
            raise too_deep(path, self.max_depth)
        if envelope.payload_encoding != TRANSITION_ENCODING:
            raise encoding_unsupported(path, envelope.payload_encoding)
        type_id = envelope.payload_type_id
        if type_id == NULL:
            parsed = _parse(envelope, path)
            if parsed is not None:
                raise undecodable(path, NULL, f"expected the text null, got {json_kind(parsed)}")
            return None
        if type_id == MAP:
            return self._map(envelope, path, depth)
        if type_id in COLLECTION_TYPE_IDS:
            return self._list(envelope, path, depth)
        if type_id == INPUT_SNAPSHOT:
            return self._snapshot(envelope, path, depth)
        if type_id in JDK_SCALAR_TYPE_IDS:
            try:
                return decode_scalar(type_id, _parse(envelope, path))
            except ScalarMismatch as mismatch:
                raise undecodable(path, type_id, str(mismatch)) from None
        return self._application(envelope, path, depth)

    def _nested(self, obj: JsonValue, path: str, depth: int) -> Value:
        return self.value(from_json_dict(obj, path=path), path, depth + 1)

    def _map(self, envelope: Envelope, path: str, depth: int) -> dict[str, Value]:
        entries = _map_items(_parse(envelope, path), path)
        return {key: self._nested(obj, key_path(path, key), depth) for key, obj in entries.items()}

    def _list(self, envelope: Envelope, path: str, depth: int) -> list[Value]:
        # A Set decodes to a list in wire order. TPF's LinkedHashSet would also drop items Java
        # thinks equal; Java equality of application objects is unknowable here, so we keep all.
        items = _list_items(_parse(envelope, path), envelope.payload_type_id, path)
        return [
            self._nested(obj, index_path(path, index), depth) for index, obj in enumerate(items)
        ]

    def _snapshot(self, envelope: Envelope, path: str, depth: int) -> InputSnapshot:
        parsed = _parse(envelope, path)
        if not isinstance(parsed, dict):
            raise undecodable(
                path, INPUT_SNAPSHOT, f'expected {{"shape": ..., ...}}, got {json_kind(parsed)}'
            )
        unknown = sorted(set(parsed) - _SNAPSHOT_FIELDS)
        if unknown:
            raise undecodable(path, INPUT_SNAPSHOT, f'unknown field "{unknown[0]}"')
        shape_name = parsed.get("shape")
        if shape_name not in {shape.value for shape in InputShape}:
            raise undecodable(
                path, INPUT_SNAPSHOT, f"shape must be UNI, MULTI or RAW, got {shape_name!r}"
            )
        shape = InputShape(str(shape_name))
        payload = parsed.get("payload")
        items = parsed.get(_ITEMS)
        if items is None:
            items = []
        if not isinstance(items, list):
            raise undecodable(
                path, INPUT_SNAPSHOT, f"items must be an array, got {json_kind(items)}"
            )
        if shape is InputShape.MULTI:
            if payload is not None:
                raise undecodable(
                    path, INPUT_SNAPSHOT, "a MULTI snapshot keeps its inputs in items, not payload"
                )
            items_path = key_path(path, _ITEMS)
            return InputSnapshot(
                shape,
                None,
                tuple(
                    self._nested(obj, index_path(items_path, index), depth)
                    for index, obj in enumerate(items)
                ),
            )
        if items:
            raise undecodable(
                path, INPUT_SNAPSHOT, f"a {shape} snapshot carries its input in payload, not items"
            )
        if payload is None:
            raise undecodable(path, INPUT_SNAPSHOT, f"a {shape} snapshot needs a payload envelope")
        return InputSnapshot(shape, self._nested(payload, key_path(path, "payload"), depth))

    def _application(self, envelope: Envelope, path: str, depth: int) -> ApplicationValue:
        type_id = envelope.payload_type_id
        if not is_java_binary_name(type_id) or not type_id.startswith(self.prefixes):
            raise type_unsupported(path, type_id)
        parsed = _parse(envelope, path)
        if parsed is None:
            raise undecodable(path, type_id, "the text is null; a null payload has type id null")
        # The object itself sits at this envelope's level; each JSON level below adds one.
        room = self.max_depth - depth + 1
        if json_nesting_depth(parsed, stop_above=room) > room:
            raise too_deep(path, self.max_depth)
        return ApplicationValue(type_id, parsed)


def _parse(envelope: Envelope, path: str) -> JsonValue:
    try:
        return parse_json_text(envelope.payload)
    except JsonTextError as error:
        raise undecodable(path, envelope.payload_type_id, str(error)) from None


def _items_field(parsed: JsonValue, type_id: str, path: str) -> JsonValue:
    """The `items` of a `{"items": ...}` container payload; missing or null reads as empty."""
    if not isinstance(parsed, dict):
        raise undecodable(path, type_id, f'expected {{"items": ...}}, got {json_kind(parsed)}')
    unknown = sorted(key for key in parsed if key != _ITEMS)
    if unknown:
        raise undecodable(path, type_id, f'unknown field "{unknown[0]}"; only "items" is allowed')
    return parsed.get(_ITEMS)


def _map_items(parsed: JsonValue, path: str) -> dict[str, JsonValue]:
    items = _items_field(parsed, MAP, path)
    if items is None:
        return {}
    if not isinstance(items, dict):
        raise undecodable(path, MAP, f"items must be an object, got {json_kind(items)}")
    return items


def _list_items(parsed: JsonValue, type_id: str, path: str) -> list[JsonValue]:
    items = _items_field(parsed, type_id, path)
    if items is None:
        return []
    if not isinstance(items, list):
        raise undecodable(path, type_id, f"items must be an array, got {json_kind(items)}")
    return items
