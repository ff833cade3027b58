"""An HTTP request → the gRPC request message of its route (google.api.http semantics).

Path variables bind their fields; with `body: "*"` the JSON body fills every other field; with
`body: "<field>"` it fills that field; the rest comes from query parameters, named by their JSON
or proto name (dotted for nested fields, repeated by repeating the parameter). Path values win
over body values.

TPF binds its outer request bodies ignoring unknown properties and its query strings ignoring
unknown parameters (Quarkus defaults, TPF_WIRE §1), so `/tpf/...` routes do too; our `/v1/...`
routes refuse both, so a typo is an error rather than a silently ignored filter.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from tpf_gateway.descriptors import enum_type, is_message, message_type
from tpf_gateway.routes import Route
from tpf_gateway.tpf_json import JsonShapeError, full_enum_name, json_to_proto_input


class BindingError(ValueError):
    """The request cannot become the RPC's request: a 400 with this message."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True, slots=True)
class HttpInput:
    """What binding reads from an HTTP request."""

    path_params: Mapping[str, str]
    query: Sequence[tuple[str, str]]
    body: bytes


_TRUE = frozenset({"true"})
_FALSE = frozenset({"false"})
_INTEGER_TYPES = frozenset(
    {
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED32,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED32,
        FieldDescriptor.TYPE_SFIXED64,
    }
)
_FLOAT_TYPES = frozenset({FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT})
# Well-known message types a single query value can fill (their JSON form is a string).
_SCALAR_MESSAGES = frozenset(
    {"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"}
)


def bind_request(route: Route, http: HttpInput) -> Message:
    """The request message for `route`; raises BindingError with a client-facing message."""
    request_class = _message_class(route.method.input_type)
    request = request_class()
    ignore_unknown = route.is_tpf
    if route.body:
        body = _parse_body(http.body)
        if body is not None:
            _merge_body(route, request, body, ignore_unknown=ignore_unknown)
    else:
        _merge_query(route, request, http.query, ignore_unknown=ignore_unknown)
    for variable in route.variables:
        value = http.path_params.get(variable.name, "")
        _set_path(request, variable.field_path, value)
    return request


def _message_class(descriptor: Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(descriptor)


def _parse_body(body: bytes) -> Any:
    """The JSON body, or None for an empty one (TPF: an empty body is a null request)."""
    if not body.strip():
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BindingError("Request body is not UTF-8 text") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        raise BindingError(f"Request body is not valid JSON: {error}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _merge_body(route: Route, request: Message, body: Any, *, ignore_unknown: bool) -> None:
    if route.body == "*":
        target, descriptor, where = request, route.method.input_type, "Request body"
    else:
        field = route.method.input_type.fields_by_name[route.body]
        if field.type != FieldDescriptor.TYPE_MESSAGE:
            raise BindingError(f"Route body {route.body} is not a message field")
        target = getattr(request, route.body)
        descriptor, where = message_type(field), f"Request body ({field.json_name})"
    if not isinstance(body, dict):
        raise BindingError(f"{where} must be a JSON object")
    try:
        value = json_to_proto_input(descriptor, body, drop_unknown=ignore_unknown)
    except JsonShapeError as error:
        raise BindingError(f"Invalid request: {error}") from None
    _parse_into(target, value)


def _parse_into(target: Message, value: dict[str, Any]) -> None:
    try:
        json_format.ParseDict(value, target)
    except json_format.ParseError as error:
        raise BindingError(_parse_error_message(str(error))) from None
    except (TypeError, ValueError, RecursionError) as error:
        # json_format lets a few Python errors through for values of the wrong shape.
        raise BindingError(f"Request has a value of the wrong type: {error}") from None


def _parse_error_message(detail: str) -> str:
    # json_format names fields by their full message path, which is a readable pointer.
    return f"Invalid request: {detail}"


def _merge_query(
    route: Route, request: Message, query: Sequence[tuple[str, str]], *, ignore_unknown: bool
) -> None:
    bound_by_path = route.path_field_paths()
    nested: dict[str, Any] = {}
    for name, raw in query:
        fields = _resolve_query_name(route.method.input_type, name)
        if fields is None or tuple(f.name for f in fields) in bound_by_path:
            if ignore_unknown:
                continue
            raise BindingError(f"Unknown query parameter {name}", field=name)
        leaf = fields[-1]
        value = _query_value(leaf, raw, name)
        container = nested
        for parent in fields[:-1]:
            child = container.setdefault(parent.name, {})
            if not isinstance(child, dict):
                raise BindingError(f"Query parameter {name} conflicts with another", field=name)
            container = child
        if leaf.is_repeated:
            container.setdefault(leaf.name, []).append(value)
        elif leaf.name in container:
            raise BindingError(f"Query parameter {name} is given more than once", field=name)
        else:
            container[leaf.name] = value
    if nested:
        _parse_into(request, nested)


def _resolve_query_name(descriptor: Descriptor, name: str) -> list[FieldDescriptor] | None:
    fields: list[FieldDescriptor] = []
    current: Descriptor | None = descriptor
    for part in name.split("."):
        if current is None:
            return None
        field = current.fields_by_name.get(part) or next(
            (f for f in current.fields if f.json_name == part), None
        )
        if field is None:
            return None
        fields.append(field)
        current = message_type(field) if _is_nested_message(field) else None
    return None if _is_nested_message(fields[-1]) else fields


def _is_nested_message(field: FieldDescriptor) -> bool:
    """A message a query value cannot fill itself; its fields are named with dots."""
    return is_message(field) and message_type(field).full_name not in _SCALAR_MESSAGES


def _query_value(field: FieldDescriptor, raw: str, name: str) -> Any:
    """A query string as the JSON value json_format expects for `field`."""
    if field.type == FieldDescriptor.TYPE_BOOL:
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        raise BindingError(f"Query parameter {name} must be true or false", field=name)
    if field.type in _INTEGER_TYPES:
        try:
            return int(raw.strip(), 10)
        except ValueError:
            raise BindingError(f"Query parameter {name} must be an integer", field=name) from None
    if field.type in _FLOAT_TYPES:
        try:
            return float(raw)
        except ValueError:
            raise BindingError(f"Query parameter {name} must be a number", field=name) from None
    if field.type == FieldDescriptor.TYPE_ENUM:
        return full_enum_name(enum_type(field), raw)
    return raw


def _set_path(request: Message, field_path: tuple[str, ...], value: str) -> None:
    target = request
    for name in field_path[:-1]:
        target = getattr(target, name)
    setattr(target, field_path[-1], value)
