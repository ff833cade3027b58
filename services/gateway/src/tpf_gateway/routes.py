"""The route table: every `google.api.http` rule of the served gRPC services, read at start.

Nothing here is written per endpoint. Each RPC's http option (and its `additional_bindings`)
becomes one `Route`: verb, path template, body and response_body selectors, the method to call
and the API family whose bearer token guards it. Literal path segments are matched before
variables, so TPF's `GET .../releases/active` shadows `GET .../releases/{releaseVersion}`
(TPF_WIRE §6.1).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

# googleapis-common-protos ships no type stubs for google.api.
from google.api import annotations_pb2, http_pb2  # type: ignore[import-untyped]
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor

from tpf.coordinator.v1 import (
    dead_letter_service_pb2,
    execution_service_pb2,
    interaction_service_pb2,
    release_drift_service_pb2,
)
from tpf.registry.v1 import release_service_pb2, worker_service_pb2

# A `{field}` or `{field=pattern}` variable; our templates bind one segment per variable.
_VARIABLE = re.compile(r"\{([a-z_][a-z0-9_.]*)(?:=([^}]*))?\}")


class Family(StrEnum):
    """Which bearer token guards a route (TPF_WIRE §1.1)."""

    CONTROL_PLANE = "control-plane"
    ADMIN = "admin"


class Upstream(StrEnum):
    """Which service process answers a route."""

    COORDINATOR = "coordinator"
    REGISTRY = "registry"


@dataclass(frozen=True, slots=True)
class ServiceBinding:
    """A gRPC service the gateway serves: where it runs and which token family guards it."""

    full_name: str
    upstream: Upstream
    family: Family


# The services whose http rules become routes. ExecutionService and InteractionService are the
# control plane, and so is our read-only release drift (its RPC takes the control-plane role);
# redrive, dead letters, releases and workers are TPF's admin API.
SERVICE_BINDINGS: tuple[ServiceBinding, ...] = (
    ServiceBinding(
        "tpf.coordinator.v1.ExecutionService", Upstream.COORDINATOR, Family.CONTROL_PLANE
    ),
    ServiceBinding(
        "tpf.coordinator.v1.InteractionService", Upstream.COORDINATOR, Family.CONTROL_PLANE
    ),
    ServiceBinding("tpf.coordinator.v1.DeadLetterService", Upstream.COORDINATOR, Family.ADMIN),
    ServiceBinding(
        "tpf.coordinator.v1.ReleaseDriftService", Upstream.COORDINATOR, Family.CONTROL_PLANE
    ),
    ServiceBinding("tpf.registry.v1.ReleaseService", Upstream.REGISTRY, Family.ADMIN),
    ServiceBinding("tpf.registry.v1.WorkerService", Upstream.REGISTRY, Family.ADMIN),
)
_FILES = (
    execution_service_pb2.DESCRIPTOR,
    interaction_service_pb2.DESCRIPTOR,
    dead_letter_service_pb2.DESCRIPTOR,
    release_drift_service_pb2.DESCRIPTOR,
    release_service_pb2.DESCRIPTOR,
    worker_service_pb2.DESCRIPTOR,
)


class RouteTableError(ValueError):
    """An http rule the gateway cannot serve (a bug in the protos, caught at start)."""


@dataclass(frozen=True, slots=True)
class PathVariable:
    """One `{field}` of a template: the request field path it binds and its route name."""

    field_path: tuple[str, ...]
    # Name of the variable in the aiohttp route and the OpenAPI document (the JSON name).
    name: str


@dataclass(frozen=True, slots=True)
class Route:
    """One HTTP binding of one RPC."""

    http_method: str
    template: str
    method: MethodDescriptor
    body: str
    response_body: str
    binding: ServiceBinding
    variables: tuple[PathVariable, ...]
    # The template in aiohttp and OpenAPI form: `{tenantId}` instead of `{tenant_id}`.
    path: str

    @property
    def family(self) -> Family:
        return self.binding.family

    @property
    def upstream(self) -> Upstream:
        return self.binding.upstream

    @property
    def is_tpf(self) -> bool:
        """A route of TPF's own API, answered with TPF's plain-text errors."""
        return self.template.startswith("/tpf/")

    @property
    def key(self) -> str:
        """`VERB template`, the key of per-route adaptations."""
        return f"{self.http_method} {self.template}"

    @property
    def grpc_path(self) -> str:
        """`/package.Service/Method`, as gRPC addresses the method."""
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def operation_id(self) -> str:
        suffix = "" if self.is_tpf else "V1"
        return f"{self.method.name}{suffix}"

    def path_field_paths(self) -> frozenset[tuple[str, ...]]:
        return frozenset(variable.field_path for variable in self.variables)


def build_route_table(
    bindings: Sequence[ServiceBinding] = SERVICE_BINDINGS,
) -> tuple[Route, ...]:
    """Every http rule of `bindings`, most specific path first.

    Raises RouteTableError for a rule the gateway cannot serve (a streaming RPC, a body or
    response_body naming no field, a variable naming no field, two rules on one path).
    """
    services = {
        service.full_name: service for file in _FILES for service in file.services_by_name.values()
    }
    routes: list[Route] = []
    for binding in bindings:
        service = services.get(binding.full_name)
        if service is None:
            raise RouteTableError(f"service {binding.full_name} is not in the generated protos")
        for method in service.methods:
            options = method.GetOptions()
            if not options.HasExtension(annotations_pb2.http):
                continue
            rule = options.Extensions[annotations_pb2.http]
            for each in (rule, *rule.additional_bindings):
                routes.append(_route(binding, method, each))
    _reject_duplicates(routes)
    return tuple(sorted(routes, key=_specificity))


def route_for(
    method_full_name: str,
    rule: http_pb2.HttpRule,
    bindings: Sequence[ServiceBinding] = SERVICE_BINDINGS,
) -> Route:
    """A route for one more http rule of a served RPC, declared in code rather than in the
    protos (the operator console's own routes); its family and upstream are its service's.

    Raises RouteTableError as `build_route_table` does, or when the RPC is not served.
    """
    service_name, _, method_name = method_full_name.rpartition(".")
    binding = next((b for b in bindings if b.full_name == service_name), None)
    if binding is None:
        raise RouteTableError(f"{service_name} is not a service the gateway serves")
    services = {
        service.full_name: service for file in _FILES for service in file.services_by_name.values()
    }
    method = services[service_name].methods_by_name.get(method_name)
    if method is None:
        raise RouteTableError(f"{service_name} has no method {method_name}")
    return _route(binding, method, rule)


def _route(binding: ServiceBinding, method: MethodDescriptor, rule: http_pb2.HttpRule) -> Route:
    if method.client_streaming or method.server_streaming:
        raise RouteTableError(f"{method.full_name}: streaming RPCs have no REST route")
    kind = rule.WhichOneof("pattern")
    if kind is None or kind == "custom":
        raise RouteTableError(f"{method.full_name}: unsupported http pattern {kind}")
    template = str(getattr(rule, kind))
    request = method.input_type
    variables = tuple(_variable(method, request, match) for match in _VARIABLE.finditer(template))
    if rule.body and rule.body != "*":
        _field_at(method, request, (rule.body,))
    if rule.response_body:
        _field_at(method, method.output_type, (rule.response_body,))
    path = template
    for match, variable in zip(_VARIABLE.finditer(template), variables, strict=True):
        path = path.replace(match.group(0), "{" + variable.name + "}", 1)
    return Route(
        http_method=kind.upper(),
        template=template,
        method=method,
        body=rule.body,
        response_body=rule.response_body,
        binding=binding,
        variables=variables,
        path=path,
    )


def _variable(method: MethodDescriptor, request: Descriptor, match: re.Match[str]) -> PathVariable:
    pattern = match.group(2)
    if pattern not in (None, "*"):
        raise RouteTableError(
            f"{method.full_name}: path variable {match.group(0)} binds more than one segment"
        )
    field_path = tuple(match.group(1).split("."))
    fields = _field_path(method, request, field_path)
    if fields[-1].type != FieldDescriptor.TYPE_STRING or _is_repeated(fields[-1]):
        raise RouteTableError(f"{method.full_name}: path variable {match.group(0)} is not a string")
    return PathVariable(field_path=field_path, name=".".join(f.json_name for f in fields))


def _field_path(
    method: MethodDescriptor, message: Descriptor, path: Iterable[str]
) -> list[FieldDescriptor]:
    fields: list[FieldDescriptor] = []
    current: Descriptor | None = message
    for name in path:
        if current is None:
            raise RouteTableError(f"{method.full_name}: {'.'.join(path)} is not a message field")
        field = _field_at(method, current, (name,))
        fields.append(field)
        current = field.message_type
    return fields


def _field_at(method: MethodDescriptor, message: Descriptor, path: tuple[str]) -> FieldDescriptor:
    field = message.fields_by_name.get(path[0])
    if field is None:
        raise RouteTableError(f"{method.full_name}: {message.full_name} has no field {path[0]}")
    return field


def _is_repeated(field: FieldDescriptor) -> bool:
    return field.is_repeated


def _reject_duplicates(routes: Sequence[Route]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for route in routes:
        shape = (route.http_method, _VARIABLE.sub("{}", route.template))
        if shape in seen:
            raise RouteTableError(
                f"{route.method.full_name} and {seen[shape]} both bind {route.key}"
            )
        seen[shape] = route.method.full_name


def _specificity(route: Route) -> tuple[object, ...]:
    # Per segment, a literal sorts before a variable: `releases/active` is tried before
    # `releases/{releaseVersion}`. Then longer paths first, then the template for a stable order.
    segments = route.template.split("/")
    return (
        tuple(1 if _VARIABLE.search(segment) else 0 for segment in segments),
        -len(segments),
        route.template,
        route.http_method,
    )
