"""`plain`: a decoded value as plain JSON, the form TPF shows and Python steps receive.

TPF shows an interaction's `requestPayload` as the plain JSON of the await step's input, not as
an envelope (TPF_WIRE §5.1); a Python step receives the same plain form. Maps become dicts, lists
stay lists, application objects become their JSON, and input snapshots become
`{"shape", "payload", "items"}`.

Decimals: `plain` turns them into Python numbers (an `int` when written without a fraction, else
a `float`), which is what a step or a `google.protobuf.Struct` can hold; `1766412345.123456789`
then loses its last digits. `plain_json_text` writes them exactly instead.
"""

from decimal import Decimal
from typing import TypeAlias

from tpf_envelope._errors import unencodable
from tpf_envelope._json_text import JsonValue, compact_json_text
from tpf_envelope._path import ROOT, index_path, key_path
from tpf_envelope._values import ApplicationValue, InputSnapshot, Value

PlainJson: TypeAlias = bool | int | float | str | list["PlainJson"] | dict[str, "PlainJson"] | None

# Above this many digits an integral Decimal stays a float: int(Decimal("1E+999999999")) would
# build a billion-digit number.
_MAX_INT_DIGITS = 4300


def plain(value: Value) -> PlainJson:
    """`value` as plain JSON with Python numbers; raises PAYLOAD_UNDECODABLE for a number beyond
    a float's range (`1E+400`), which plain JSON consumers cannot hold."""
    return _plain(value, ROOT)


def plain_json_text(value: Value) -> str:
    """`value` as compact plain JSON text, decimals written exactly as decoded (`27.50`)."""
    return compact_json_text(_exact(value))


def _plain(value: object, path: str) -> PlainJson:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return _number(value, path)
    if isinstance(value, dict):
        return {str(key): _plain(item, key_path(path, str(key))) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item, index_path(path, index)) for index, item in enumerate(value)]
    if isinstance(value, ApplicationValue):
        return _plain(value.json_value, path)
    if isinstance(value, InputSnapshot):
        return {
            "shape": value.shape.value,
            "payload": _plain(value.payload, key_path(path, "payload")),
            "items": _plain(value.items, key_path(path, "items")),
        }
    raise TypeError(f"cannot make plain JSON of a {type(value).__name__} at {path}")


def _exact(value: object) -> JsonValue:
    if value is None or isinstance(value, bool | int | float | str | Decimal):
        return value
    if isinstance(value, dict):
        return {str(key): _exact(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_exact(item) for item in value]
    if isinstance(value, ApplicationValue):
        return _exact(value.json_value)
    if isinstance(value, InputSnapshot):
        return {
            "shape": value.shape.value,
            "payload": _exact(value.payload),
            "items": [_exact(item) for item in value.items],
        }
    raise TypeError(f"cannot make plain JSON of a {type(value).__name__}")


def _number(value: Decimal, path: str) -> int | float:
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= 0 and value.adjusted() < _MAX_INT_DIGITS:
        return int(value)
    result = float(value)
    if result in (float("inf"), float("-inf")):
        raise unencodable(path, f"the number {value} is beyond the range of a JSON double")
    return result
