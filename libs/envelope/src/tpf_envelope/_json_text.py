"""Strict JSON text in and compact JSON text out, with exact decimal numbers both ways.

Parsing refuses what Jackson refuses in TPF's payloads (NaN, Infinity, trailing text) and keeps
every non-integer number as a `Decimal`, so `27.50` and `1766412345.123456789` survive a round
trip. Writing is compact (`,` and `:` without spaces) and leaves non-ASCII characters as they are,
like Jackson and the TPF demo client.
"""

import json
import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TypeAlias

JsonValue: TypeAlias = (
    bool | int | float | Decimal | str | list["JsonValue"] | dict[str, "JsonValue"] | None
)


class JsonTextError(ValueError):
    """JSON text could not be read or written; the message says why, without a location."""


def _refuse_constant(name: str) -> JsonValue:
    raise JsonTextError(f"{name} is not a JSON number")


def parse_json_text(text: str) -> JsonValue:
    """Parse one JSON value; non-integer numbers become `Decimal`, NaN and Infinity fail."""
    try:
        parsed: JsonValue = json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)
    except RecursionError:
        raise JsonTextError("the JSON is nested too deeply to read") from None
    except JsonTextError:
        raise
    except ValueError as error:  # JSONDecodeError, and ints longer than Python's digit limit
        raise JsonTextError(f"not valid JSON ({error})") from None
    return parsed


def json_string_text(text: str) -> str:
    """`text` as a JSON string literal, non-ASCII characters unescaped."""
    return json.dumps(text, ensure_ascii=False)


def compact_json_text(value: JsonValue) -> str:
    """Compact JSON text for `value`; `Decimal` is written exactly (`27.50` stays `27.50`).

    Tuples are written as arrays. Raises `JsonTextError` for NaN/Infinity, non-string keys and
    values that are not JSON.
    """
    if _plain(value):
        # The C encoder writes the same text as the writer below for everything it accepts,
        # and refuses NaN/Infinity and non-JSON types, which the writer then reports. It would
        # quietly convert non-string keys and cannot write a Decimal exactly: `_plain` sends
        # those to the writer.
        try:
            return _FAST.encode(value)
        except (TypeError, ValueError):
            pass
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts)


_FAST = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _plain(value: object) -> bool:
    """Whether `value` holds no Decimal and no object key other than a `str`."""
    pending = [value]
    while pending:
        current = pending.pop()
        if isinstance(current, dict):
            for key in current:
                if not isinstance(key, str):
                    return False
            items: Iterable[object] = current.values()
        elif isinstance(current, list | tuple):
            items = current
        else:
            if isinstance(current, Decimal):
                return False
            continue
        for item in items:
            if isinstance(item, dict | list | tuple):
                pending.append(item)
            elif isinstance(item, Decimal):
                return False
    return True


def _write(value: object, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(json_string_text(value))
    elif isinstance(value, int):
        out.append(int.__repr__(value))  # int's own repr, so IntEnum members write as numbers
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise JsonTextError(f"{value!r} is not a JSON number")
        out.append(float.__repr__(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise JsonTextError(f"Decimal {value} is not a JSON number")
        out.append(str(value))
    elif isinstance(value, dict):
        out.append("{")
        for position, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise JsonTextError(f"object key {key!r} is not a string")
            if position:
                out.append(",")
            out.append(json_string_text(key))
            out.append(":")
            _write(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for position, item in enumerate(value):
            if position:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise JsonTextError(f"a {type(value).__name__} is not a JSON value")


def json_nesting_depth(value: JsonValue, *, stop_above: int) -> int:
    """How many arrays/objects nest in `value` (a scalar is 0, `[[]]` is 2).

    Walks iteratively and stops counting once the depth exceeds `stop_above`, so a hostile
    value costs no more than the limit it breaks.
    """
    deepest = 0
    pending: list[tuple[JsonValue, int]] = [(value, 0)]
    while pending:
        current, depth = pending.pop()
        children: list[JsonValue]
        if isinstance(current, dict):
            children = list(current.values())
        elif isinstance(current, list):
            children = current
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest > stop_above:
            return deepest
        pending.extend((child, depth) for child in children)
    return deepest


def json_kind(value: object) -> str:
    """How an error message names the kind of a (parsed JSON) value: `an array`, `null`, ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__}"
