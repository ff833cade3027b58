"""`encode`: a Python value to the envelope TPF would emit for it (TPF_WIRE §2, encode direction).

Mappings become `java.util.Map` envelopes of nested envelopes, lists and tuples `java.util.List`,
sets `java.util.Set`, `None` the `null` envelope; scalars map as the TPF demo client maps them
(`bool` before `int`). JSON text is compact with non-ASCII characters unescaped, as Jackson writes
it, so re-encoding a decoded demo payload gives back the same text.
"""

import math
import unicodedata
from collections.abc import Iterable, Mapping
from decimal import Decimal

from tpf_envelope import _type_ids
from tpf_envelope._envelope import TRANSITION_ENCODING, Envelope, envelope_json_text
from tpf_envelope._errors import too_deep, unencodable
from tpf_envelope._json_text import (
    JsonTextError,
    compact_json_text,
    json_nesting_depth,
    json_string_text,
)
from tpf_envelope._limits import DEFAULT_MAX_DEPTH
from tpf_envelope._path import ROOT, index_path, key_path
from tpf_envelope._values import ApplicationValue, InputShape, InputSnapshot

_LONG_MIN = -(2**63)
_LONG_MAX = 2**63 - 1

# Java's Character.isWhitespace, which String.isBlank uses: Unicode space, line and paragraph
# separators except the no-break ones, plus these controls. Python's str.isspace differs.
_JAVA_WHITESPACE_CONTROLS = frozenset("\t\n\u000b\f\r\u001c\u001d\u001e\u001f")
_NO_BREAK_SPACES = frozenset("\u00a0\u2007\u202f")
_SEPARATOR_CATEGORIES = frozenset({"Zs", "Zl", "Zp"})


def encode(value: object, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Envelope:
    """The envelope for `value`.

    Accepts None, bool, int (`java.lang.Long`, or `java.math.BigInteger` outside Long's range),
    float, Decimal, str, Mapping with non-blank string keys, list, tuple, set, frozenset,
    `ApplicationValue` and `InputSnapshot`. Raises `TypeError` for other types and
    `InvalidArgument` PAYLOAD_UNDECODABLE, naming the path, for values with no TPF form (blank
    map key, NaN or infinite number, nesting deeper than `max_depth`).
    """
    return _Encoder(max_depth).envelope(value, ROOT, 1)


class _Encoder:
    __slots__ = ("_max_depth",)

    def __init__(self, max_depth: int) -> None:
        self._max_depth = max_depth

    def envelope(self, value: object, path: str, depth: int) -> Envelope:
        if depth > self._max_depth:
            raise too_deep(path, self._max_depth)
        type_id, text = self._typed_text(value, path, depth)
        return Envelope(type_id, TRANSITION_ENCODING, text)

    def _typed_text(self, value: object, path: str, depth: int) -> tuple[str, str]:
        if value is None:
            return _type_ids.NULL, "null"
        if isinstance(value, bool):
            return _type_ids.BOOLEAN, "true" if value else "false"
        if isinstance(value, int):
            type_id = _type_ids.LONG if _LONG_MIN <= value <= _LONG_MAX else _type_ids.BIG_INTEGER
            return type_id, int.__repr__(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise unencodable(path, f"{value!r} has no JSON form")
            return _type_ids.DOUBLE, float.__repr__(value)
        if isinstance(value, Decimal):
            if not value.is_finite():
                raise unencodable(path, f"Decimal {value} has no JSON form")
            return _type_ids.BIG_DECIMAL, str(value)
        if isinstance(value, str):
            return _type_ids.STRING, json_string_text(value)
        if isinstance(value, ApplicationValue):
            return value.type_id, self._application_text(value, path, depth)
        if isinstance(value, InputSnapshot):
            return _type_ids.INPUT_SNAPSHOT, self._snapshot_text(value, path, depth)
        if isinstance(value, Mapping):
            return _type_ids.MAP, self._map_text(value, path, depth)
        if isinstance(value, set | frozenset):
            return _type_ids.SET, self._list_text(_stable_order(value), path, depth)
        if isinstance(value, list | tuple):
            return _type_ids.LIST, self._list_text(value, path, depth)
        raise TypeError(
            f"cannot encode a {type(value).__name__} at {path}: wrap application objects in "
            "ApplicationValue, or pass plain JSON values"
        )

    def _map_text(self, value: Mapping[object, object], path: str, depth: int) -> str:
        entries: list[str] = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise unencodable(path, f"map keys must be strings, got a {type(key).__name__}")
            if _is_java_blank(key):
                raise unencodable(path, f"map keys must not be blank, got {json_string_text(key)}")
            child = self.envelope(item, key_path(path, key), depth + 1)
            entries.append(f"{json_string_text(key)}:{envelope_json_text(child)}")
        return '{"items":{' + ",".join(entries) + "}}"

    def _list_text(self, items: Iterable[object], path: str, depth: int) -> str:
        return '{"items":' + self._envelope_array(items, path, depth) + "}"

    def _envelope_array(self, items: Iterable[object], path: str, depth: int) -> str:
        texts = [
            envelope_json_text(self.envelope(item, index_path(path, index), depth + 1))
            for index, item in enumerate(items)
        ]
        return "[" + ",".join(texts) + "]"

    def _snapshot_text(self, snapshot: InputSnapshot, path: str, depth: int) -> str:
        if snapshot.shape is InputShape.MULTI:
            items = self._envelope_array(snapshot.items, key_path(path, "items"), depth)
            return '{"shape":"MULTI","payload":null,"items":' + items + "}"
        payload = self.envelope(snapshot.payload, key_path(path, "payload"), depth + 1)
        return f'{{"shape":"{snapshot.shape}","payload":{envelope_json_text(payload)},"items":[]}}'

    def _application_text(self, value: ApplicationValue, path: str, depth: int) -> str:
        room = self._max_depth - depth + 1
        if json_nesting_depth(value.json_value, stop_above=room) > room:
            raise too_deep(path, self._max_depth)
        try:
            return compact_json_text(value.json_value)
        except JsonTextError as error:
            raise unencodable(path, str(error)) from None


def _stable_order(items: set[object] | frozenset[object]) -> list[object]:
    """Sorted when the items compare, so equal sets always give the same text."""
    try:
        return sorted(items)  # type: ignore[type-var]  # mixed types raise TypeError, handled
    except TypeError:
        return list(items)


def _is_java_blank(text: str) -> bool:
    """Java's `String.isBlank`: empty or only `Character.isWhitespace` characters."""
    return all(_is_java_whitespace(char) for char in text)


def _is_java_whitespace(char: str) -> bool:
    if char in _JAVA_WHITESPACE_CONTROLS:
        return True
    return unicodedata.category(char) in _SEPARATOR_CATEGORIES and char not in _NO_BREAK_SPACES
