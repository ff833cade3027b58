"""The OpenAPI 3 document of the gateway, generated from the same route table it serves.

Schemas follow `tpf_json`: enum values without their prefix, 64-bit integers as integers,
fields that can be unset are `nullable`. The generated Python modules carry no proto comments,
so each operation points at its RPC, documented in the protos. Served at `/openapi.json`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from tpf_gateway.descriptors import enum_type, is_map, is_message, message_type
from tpf_gateway.problems import PROBLEM_CONTENT_TYPE, REASON_HEADER
from tpf_gateway.routes import Family, Route
from tpf_gateway.tpf_json import enum_short_names

OPENAPI_PATH = "/openapi.json"
Schema = dict[str, Any]

_INT32 = frozenset(
    {
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SFIXED32,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_FIXED32,
    }
)
_INT64 = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_SFIXED64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_FIXED64,
    }
)
_WELL_KNOWN: dict[str, Schema] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Value": {},
}
_SECURITY = {Family.CONTROL_PLANE: "controlPlaneToken", Family.ADMIN: "adminToken"}
# TPF_VIEWER_TOKEN: every GET outside /tpf/, of either family.
_VIEWER_SECURITY = "viewerToken"
# How deep nested message fields of a GET request become dotted query parameters.
_MAX_QUERY_DEPTH = 2


def build_openapi(routes: Sequence[Route], *, title: str = "TPF gateway") -> dict[str, Any]:
    builder = _Builder()
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.http_method.lower()] = builder.operation(route)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": title,
            "version": "1",
            "description": (
                "TPF's control-plane (/tpf/control-plane) and admin (/tpf/admin) APIs, wire "
                "compatible with TPF, and our own /v1 routes; generated from the protos' "
                "google.api.http options. /tpf errors are plain text with the reason in the "
                f"{REASON_HEADER} header; /v1 errors are RFC 9457 problem JSON."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": builder.schemas,
            "securitySchemes": {
                name: {"type": "http", "scheme": "bearer"}
                for name in (*_SECURITY.values(), _VIEWER_SECURITY)
            },
        },
    }


class _Builder:
    def __init__(self) -> None:
        self.schemas: dict[str, Schema] = {}

    def operation(self, route: Route) -> dict[str, Any]:
        request = route.method.input_type
        path_fields = route.path_field_paths()
        parameters: list[dict[str, Any]] = [
            {
                "name": variable.name,
                "in": "path",
                "required": True,
                "schema": {"type": "string", "minLength": 1},
            }
            for variable in route.variables
        ]
        operation: dict[str, Any] = {
            "operationId": route.operation_id,
            "summary": f"{route.method.containing_service.name}.{route.method.name}",
            "description": f"Calls gRPC {route.method.full_name} (see its comment in the protos).",
            "tags": [route.method.containing_service.name],
        }
        if route.body:
            operation["requestBody"] = {
                "required": False,
                "content": {"application/json": {"schema": self._body_schema(route, path_fields)}},
            }
        else:
            parameters += self._query_parameters(request, (), path_fields, depth=0)
        operation["parameters"] = parameters
        operation["responses"] = {
            "200": {
                "description": "Success",
                "content": {"application/json": {"schema": self._response_schema(route)}},
            },
            "default": _error_response(route),
        }
        accepted: list[dict[str, list[str]]] = [{_SECURITY[route.family]: []}]
        if not route.is_tpf and route.family is not Family.ADMIN:
            accepted.append({_SECURITY[Family.ADMIN]: []})
        if not route.is_tpf and route.http_method == "GET":
            accepted.append({_VIEWER_SECURITY: []})
        operation["security"] = accepted
        return operation

    def _body_schema(self, route: Route, path_fields: frozenset[tuple[str, ...]]) -> Schema:
        request = route.method.input_type
        if route.body != "*":
            return self._field_schema(request.fields_by_name[route.body], nullable=True)
        properties = {
            field.json_name: self._field_schema(field, nullable=True)
            for field in request.fields
            if (field.name,) not in path_fields
        }
        return {"type": "object", "properties": properties, "nullable": True}

    def _response_schema(self, route: Route) -> Schema:
        response = route.method.output_type
        if route.response_body:
            return self._field_schema(response.fields_by_name[route.response_body], nullable=True)
        return self._ref(response)

    def _query_parameters(
        self,
        message: Descriptor,
        prefix: tuple[str, ...],
        path_fields: frozenset[tuple[str, ...]],
        *,
        depth: int,
    ) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = []
        for field in message.fields:
            path = (*prefix, field.name)
            if path in path_fields:
                continue
            name = ".".join((*(_camel(part) for part in prefix), field.json_name))
            if _is_plain_message(field) and not field.is_repeated:
                if depth < _MAX_QUERY_DEPTH:
                    parameters += self._query_parameters(
                        message_type(field), path, path_fields, depth=depth + 1
                    )
                continue
            if _is_plain_message(field):
                continue
            parameters.append(
                {
                    "name": name,
                    "in": "query",
                    "required": False,
                    "schema": self._field_schema(field, nullable=False),
                    **({"explode": True} if field.is_repeated else {}),
                }
            )
        return parameters

    def _ref(self, message: Descriptor) -> Schema:
        name = message.full_name
        if name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[name])
        if name not in self.schemas:
            self.schemas[name] = {}  # reserve first: messages may refer to themselves
            self.schemas[name] = {
                "type": "object",
                "properties": {
                    field.json_name: self._field_schema(field, nullable=True)
                    for field in message.fields
                },
            }
        return {"$ref": f"#/components/schemas/{name}"}

    def _field_schema(self, field: FieldDescriptor, *, nullable: bool) -> Schema:
        if is_map(field):
            value_field = message_type(field).fields_by_name["value"]
            return {"type": "object", "additionalProperties": self._single_schema(value_field)}
        if field.is_repeated:
            return {"type": "array", "items": self._single_schema(field)}
        schema = self._single_schema(field)
        if nullable and field.has_presence:
            if "$ref" in schema:
                return {"allOf": [schema], "nullable": True}
            if schema:
                return {**schema, "nullable": True}
        return schema

    def _single_schema(self, field: FieldDescriptor) -> Schema:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            return self._ref(message_type(field))
        if field.type == FieldDescriptor.TYPE_ENUM:
            return {"type": "string", "enum": enum_short_names(enum_type(field))}
        if field.type == FieldDescriptor.TYPE_BOOL:
            return {"type": "boolean"}
        if field.type in _INT32:
            return {"type": "integer", "format": "int32"}
        if field.type in _INT64:
            return {"type": "integer", "format": "int64"}
        if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            return {"type": "number"}
        if field.type == FieldDescriptor.TYPE_BYTES:
            return {"type": "string", "format": "byte"}
        return {"type": "string"}


def _error_response(route: Route) -> dict[str, Any]:
    headers = {
        REASON_HEADER: {
            "description": "The machine-readable reason (ErrorReason name), when there is one.",
            "schema": {"type": "string"},
        }
    }
    if route.is_tpf:
        return {
            "description": "TPF's plain-text error message (empty for 401 and unknown releases "
            "or workers)",
            "headers": headers,
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    return {
        "description": "RFC 9457 problem",
        "headers": headers,
        "content": {
            PROBLEM_CONTENT_TYPE: {
                "schema": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "reason": {"type": "string"},
                        "domain": {"type": "string"},
                        "metadata": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        },
                    },
                }
            }
        },
    }


def _is_plain_message(field: FieldDescriptor) -> bool:
    return is_message(field) and message_type(field).full_name not in _WELL_KNOWN


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)
