"""Decoding the eighteen JDK scalar type ids TPF always accepts (TPF_WIRE §2).

Each decoder takes the parsed JSON of the payload text and returns the Python value, or raises
`ScalarMismatch` saying what the type needs. We are stricter than Jackson's defaults in one
respect: no scalar coercion (`"42"` is not a `java.lang.Long`, `42.0` is not an `Integer`), because
TPF itself never writes such payloads and a client that does has a bug worth reporting.
"""

import re
import struct
from collections.abc import Callable
from decimal import Decimal

from tpf_envelope import _time_values, _type_ids
from tpf_envelope._json_text import JsonValue, json_kind
from tpf_envelope._values import Value

_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")


class ScalarMismatch(ValueError):
    """The parsed JSON does not fit the scalar type; the message says what was expected."""


def decode_scalar(type_id: str, value: JsonValue) -> Value:
    """The Python value of a JDK scalar payload whose text parsed to `value`."""
    try:
        return _DECODERS[type_id](value)
    except _time_values.TimeValueError as error:
        raise ScalarMismatch(str(error)) from None


def _string(value: JsonValue) -> str:
    return _require_string(value, "a JSON string")


def _boolean(value: JsonValue) -> bool:
    if not isinstance(value, bool):
        raise ScalarMismatch(f"expected true or false, got {json_kind(value)}")
    return value


def _integral(bits: int) -> Callable[[JsonValue], int]:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def decode(value: JsonValue) -> int:
        number = _require_integer(value)
        if not low <= number <= high:
            raise ScalarMismatch(f"{number} is outside the {bits}-bit range {low}..{high}")
        return number

    return decode


def _big_integer(value: JsonValue) -> int:
    return _require_integer(value)


def _double(value: JsonValue) -> float:
    number = _require_number(value)
    try:
        result = float(number)
    except OverflowError:
        result = float("inf")
    if result in (float("inf"), float("-inf")):
        raise ScalarMismatch(f"{number} is outside the range of a 64-bit double")
    return result


def _float(value: JsonValue) -> float:
    result = _double(value)
    try:
        struct.pack("<f", result)
    except OverflowError:
        raise ScalarMismatch(f"{result!r} is outside the range of a 32-bit float") from None
    return result


def _big_decimal(value: JsonValue) -> Decimal:
    number = _require_number(value)
    return number if isinstance(number, Decimal) else Decimal(number)


def _character(value: JsonValue) -> str:
    text = _require_string(value, "a one-character JSON string")
    # A Java char is one UTF-16 code unit: astral characters take two and do not fit.
    if len(text) != 1 or ord(text) > 0xFFFF:
        raise ScalarMismatch(f"expected exactly one UTF-16 character, got {text!r}")
    return text


def _uuid(value: JsonValue) -> str:
    text = _require_string(value, "a UUID string")
    if _UUID.fullmatch(text) is None:
        raise ScalarMismatch(
            f"expected a UUID such as 8f3c1e2a-0b4d-4c5e-9f60-718293a4b5c6, got {text!r}"
        )
    return text


def _path(value: JsonValue) -> str:
    return _require_string(value, "a path string")


def _as_value(value: list[int] | str) -> Value:
    if isinstance(value, str):
        return value
    fields: list[Value] = list(value)
    return fields


def _require_string(value: JsonValue, expected: str) -> str:
    if not isinstance(value, str):
        raise ScalarMismatch(f"expected {expected}, got {json_kind(value)}")
    return value


def _require_integer(value: JsonValue) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ScalarMismatch(f"expected a JSON integer, got {_describe_number(value)}")
    return value


def _require_number(value: JsonValue) -> int | Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ScalarMismatch(f"expected a JSON number, got {json_kind(value)}")
    return value


def _describe_number(value: JsonValue) -> str:
    return f"the number {value}" if isinstance(value, Decimal) else json_kind(value)


_DECODERS: dict[str, Callable[[JsonValue], Value]] = {
    _type_ids.STRING: _string,
    _type_ids.BOOLEAN: _boolean,
    _type_ids.LONG: _integral(64),
    _type_ids.INTEGER: _integral(32),
    _type_ids.SHORT: _integral(16),
    _type_ids.BYTE: _integral(8),
    _type_ids.BIG_INTEGER: _big_integer,
    _type_ids.DOUBLE: _double,
    _type_ids.FLOAT: _float,
    _type_ids.BIG_DECIMAL: _big_decimal,
    _type_ids.CHARACTER: _character,
    _type_ids.UUID: _uuid,
    _type_ids.PATH: _path,
    _type_ids.INSTANT: _time_values.instant,
    _type_ids.OFFSET_DATE_TIME: _time_values.offset_date_time,
    _type_ids.ZONED_DATE_TIME: _time_values.zoned_date_time,
    _type_ids.LOCAL_DATE_TIME: lambda value: _as_value(_time_values.local_date_time(value)),
    _type_ids.LOCAL_DATE: lambda value: _as_value(_time_values.local_date(value)),
}
