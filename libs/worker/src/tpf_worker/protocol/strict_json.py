"""Reading and writing worker-protocol JSON as TPF's strict Jackson mapper does.

Field readers bind what Java would bind: a missing or null int is 0, a missing boolean false, a
missing list empty; anything of the wrong type raises `MalformedEnvelope`.
"""

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

from tpf_envelope import compact_json_text
from tpf_worker.protocol.malformed import MalformedEnvelope

INT_MIN: Final = -(2**31)
INT_MAX: Final = 2**31 - 1
LONG_MIN: Final = -(2**63)
LONG_MAX: Final = 2**63 - 1


def _refuse_constant(name: str) -> object:
    raise MalformedEnvelope(f"{name} is not a JSON number")


def parse_object(data: bytes | str, what: str) -> Mapping[str, Any]:
    """One JSON object; non-integer numbers stay exact (`Decimal`), NaN/Infinity are refused."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        parsed = json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)
    except MalformedEnvelope:
        raise
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError, JSONDecodeError
        raise MalformedEnvelope(f"{what} is not valid JSON: {error}") from None
    if not isinstance(parsed, dict):
        raise MalformedEnvelope(f"{what} must be a JSON object")
    return parsed


def json_bytes(obj: dict[str, Any], what: str) -> bytes:
    """Compact UTF-8 JSON of a document."""
    try:
        return compact_json_text(obj).encode("utf-8")
    except ValueError as error:
        raise MalformedEnvelope(f"{what} cannot be written as JSON: {error}") from None


def reject_unknown(obj: Mapping[str, Any], keys: Sequence[str], what: str) -> None:
    unknown = [key for key in obj if key not in keys]
    if unknown:
        raise MalformedEnvelope(f"{what} has unknown field {unknown[0]!r}")


def json_object(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MalformedEnvelope(f"{what} must be a JSON object")
    return value


def optional_str(obj: Mapping[str, Any], key: str, what: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise MalformedEnvelope(f"{what}.{key} must be a string")
    return value


def required_str(obj: Mapping[str, Any], key: str, what: str) -> str:
    value = optional_str(obj, key, what)
    if value is None:
        raise MalformedEnvelope(f"{what}.{key} is required")
    return value


def integer(obj: Mapping[str, Any], key: str, what: str, low: int, high: int) -> int:
    """A Java int/long field: missing or null binds as 0 (Jackson's primitive default)."""
    value = obj.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedEnvelope(f"{what}.{key} must be an integer")
    if not low <= value <= high:
        raise MalformedEnvelope(f"{what}.{key} is out of range")
    return value


def boolean(obj: Mapping[str, Any], key: str, what: str) -> bool:
    value = obj.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise MalformedEnvelope(f"{what}.{key} must be a boolean")
    return value


def str_list(obj: Mapping[str, Any], key: str, what: str) -> tuple[str, ...]:
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise MalformedEnvelope(f"{what}.{key} must be an array of strings")
    return tuple(value)


def ordered(obj: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """`obj` with its keys in TPF's order; absent keys stay absent."""
    return {key: obj[key] for key in keys if key in obj}
