"""Protobuf messages ⇄ the JSON TPF writes and reads, declared once for every route.

The protobuf JSON mapping (google.protobuf.json_format) differs from TPF's JSON in four ways;
each rule below is the whole of one difference (TPF_WIRE §1):

1. Enum values are written without their prefix (`"QUEUED"`, not `"EXECUTION_STATUS_QUEUED"`);
   input accepts the short name (case-sensitive, as TPF) and the full proto name.
2. 64-bit integers are JSON numbers, not strings (`"version": 6`, `nextDueAtEpochMs` up to
   2^63-1).
3. Every field is written; fields that can be unset (messages, `optional` scalars) are `null`
   when unset (`"errorCode": null`, `"resultPayload": null`).
4. Numbers inside `google.protobuf.Struct`/`Value` (a plain `requestPayload`, a contract's
   canonical types) are written as integers when integral (`5`, not `5.0`).

Everything else (camelCase names, well-known types, bytes) is json_format's own mapping.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from typing import Any, TypeAlias

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from tpf_gateway.descriptors import (
    descriptor_of,
    enum_type,
    is_map,
    is_object_message,
    is_well_known,
    message_type,
)

Json: TypeAlias = Any

_STRUCT_TYPES = frozenset(
    {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"}
)
_INT64_TYPES = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64,
    }
)
# Integral doubles beyond this lose precision; they stay floats.
_MAX_SAFE_INTEGER = 2**53


def enum_prefix(enum: EnumDescriptor) -> str:
    """`EXECUTION_STATUS_` for `ExecutionStatus`: the prefix buf's ENUM_VALUE_PREFIX demands."""
    snake = "".join(
        f"_{char}" if char.isupper() and index > 0 else char for index, char in enumerate(enum.name)
    )
    return f"{snake.upper()}_"


def enum_short_name(enum: EnumDescriptor, number: int) -> Json:
    """The TPF name of an enum value; an unknown number stays a number (AIP-180: enums grow)."""
    value = enum.values_by_number.get(number)
    if value is None:
        return number
    return value.name.removeprefix(enum_prefix(enum))


def enum_short_names(enum: EnumDescriptor) -> list[str]:
    return [value.name.removeprefix(enum_prefix(enum)) for value in enum.values]


def message_to_json(message: Message) -> dict[str, Json]:
    """`message` as TPF's JSON object (rules 1-4 above)."""
    descriptor = descriptor_of(message)
    if is_well_known(descriptor):
        raise TypeError(f"{descriptor.full_name} is not an object message")
    return {field.json_name: field_to_json(message, field) for field in descriptor.fields}


def field_to_json(message: Message, field: FieldDescriptor) -> Json:
    """One field of `message` in TPF's JSON (`null` when unset and able to be unset)."""
    value = getattr(message, field.name)
    if is_map(field):
        value_field = message_type(field).fields_by_name["value"]
        return {str(key): _value_to_json(value_field, item) for key, item in value.items()}
    if field.is_repeated:
        return [_value_to_json(field, item) for item in value]
    if field.has_presence and not message.HasField(field.name):
        return None
    return _value_to_json(field, value)


def _value_to_json(field: FieldDescriptor, value: Any) -> Json:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if is_object_message(field):
            return message_to_json(value)
        return _well_known_to_json(value)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return enum_short_name(enum_type(field), value)
    if field.type in _INT64_TYPES:
        return int(value)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(value).decode("ascii")
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return _finite_or_name(float(value))
    return value


def _well_known_to_json(message: Message) -> Json:
    converted = json_format.MessageToDict(message)
    if message.DESCRIPTOR.full_name in _STRUCT_TYPES:
        return _integral_numbers_as_ints(converted)
    return converted


def _integral_numbers_as_ints(value: Json) -> Json:
    if isinstance(value, float) and value.is_integer() and abs(value) <= _MAX_SAFE_INTEGER:
        return int(value)
    if isinstance(value, dict):
        return {key: _integral_numbers_as_ints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral_numbers_as_ints(item) for item in value]
    return value


def _finite_or_name(value: float) -> Json:
    # JSON has no NaN or Infinity; json_format writes them as these strings.
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


class JsonShapeError(ValueError):
    """A JSON input value where the schema needs an object (`"inputPayload": "x"`)."""


def json_to_proto_input(descriptor: Descriptor, value: Json, *, drop_unknown: bool) -> Json:
    """A TPF JSON object rewritten for a strict json_format.ParseDict.

    Short enum names get their prefix; with `drop_unknown`, keys that name no field are dropped
    at every level (json_format's own ignore_unknown_fields would also drop unknown enum names
    and iterate a string given for an object). Raises JsonShapeError when a message field holds
    something other than an object or null; other wrong types are left for ParseDict to report.
    """
    return _object_input(descriptor, value, descriptor.name, drop_unknown=drop_unknown)


def _object_input(descriptor: Descriptor, value: Json, path: str, *, drop_unknown: bool) -> Json:
    if not isinstance(value, Mapping):
        raise JsonShapeError(f"{path} must be a JSON object")
    fields = {**descriptor.fields_by_name, **{f.json_name: f for f in descriptor.fields}}
    result: dict[str, Json] = {}
    for key, item in value.items():
        field = fields.get(key)
        if field is None:
            if not drop_unknown:
                result[key] = item
            continue
        result[key] = _field_input(field, item, f"{path}.{key}", drop_unknown=drop_unknown)
    return result


def _field_input(field: FieldDescriptor, value: Json, path: str, *, drop_unknown: bool) -> Json:
    if value is None:
        return None
    if is_map(field):
        value_field = message_type(field).fields_by_name["value"]
        if isinstance(value, Mapping):
            return {
                key: _single_input(value_field, item, f"{path}.{key}", drop_unknown=drop_unknown)
                for key, item in value.items()
            }
        return value
    if field.is_repeated and isinstance(value, list):
        return [
            _single_input(field, item, f"{path}[{index}]", drop_unknown=drop_unknown)
            for index, item in enumerate(value)
        ]
    return _single_input(field, value, path, drop_unknown=drop_unknown)


def _single_input(field: FieldDescriptor, value: Json, path: str, *, drop_unknown: bool) -> Json:
    if field.type == FieldDescriptor.TYPE_ENUM and isinstance(value, str):
        return full_enum_name(enum_type(field), value)
    if is_object_message(field) and value is not None:
        return _object_input(message_type(field), value, path, drop_unknown=drop_unknown)
    return value


def full_enum_name(enum: EnumDescriptor, name: str) -> str:
    """`QUEUED` → `EXECUTION_STATUS_QUEUED`; a full or unknown name is returned unchanged."""
    prefixed = f"{enum_prefix(enum)}{name}"
    if name not in enum.values_by_name and prefixed in enum.values_by_name:
        return prefixed
    return name
