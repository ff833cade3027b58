"""Where TPF's answers differ from the generic transcoding: the one table, keyed by route.

The generic path is: gRPC status code → HTTP status (`problems.CODE_TO_HTTP`), the service's
message as body, the ErrorInfo reason in a header; a success is the response message (or its
`response_body` field) in TPF's JSON (`tpf_json`). This module lists every exception to that,
each with the TPF_WIRE section it comes from:

- `TPF_ERRORS`: on every `/tpf/...` route, reasons whose TPF body is fixed text (`Not Found`,
  an empty 404, `Invalid request payload`, `<field> is required`).
- `ROUTE_ADAPTATIONS`: per route, error overrides that win over `TPF_ERRORS` (a different
  status or text), and recoveries: an error the route answers with a 200 body instead.
- A call the service never answered (no ErrorInfo: down, unreachable, too slow) is
  `503`/`504` with reason `COORDINATOR_UNAVAILABLE` or `REGISTRY_UNAVAILABLE`, on every route.

Response shapes need no entry here: bare arrays and bare records are the protos'
`response_body`, and enum names, int64 numbers and nulls are `tpf_json`'s rules for every route.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from string import Formatter
from types import MappingProxyType
from typing import Any

import grpc
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from tpf.coordinator.v1 import execution_service_pb2 as epb
from tpf_gateway.problems import GATEWAY_DOMAIN, Problem, http_status_of
from tpf_gateway.routes import Route
from tpf_gateway.tpf_json import Json, message_to_json
from tpf_gateway.upstream import UpstreamError

log = logging.getLogger(__name__)

# Runs one more RPC on the route's upstream: (method, request) → response message.
Caller = Callable[[MethodDescriptor, Message], Awaitable[Any]]
# Answers a route's request with a 200 body after its RPC failed with a known reason.
Recovery = Callable[[Any, Caller], Awaitable[Json]]


@dataclass(frozen=True, slots=True)
class ErrorOverride:
    """How one reason is answered on a route: status and body text.

    `message` is a `str.format` template over the ErrorInfo metadata (`{field}`); None keeps
    the service's message. A template naming metadata the error lacks also keeps it.
    """

    status: int | None = None
    message: str | None = None
    empty_body: bool = False


@dataclass(frozen=True, slots=True)
class RouteAdaptation:
    errors: Mapping[str, ErrorOverride] = field(default_factory=dict)
    recoveries: Mapping[str, Recovery] = field(default_factory=dict)


NOT_FOUND_TEXT = ErrorOverride(message="Not Found")
GUARD_404 = ErrorOverride(empty_body=True)
INVALID_REQUEST = ErrorOverride(status=400, message="Invalid request")
INVALID_PAYLOAD = ErrorOverride(message="Invalid request payload")

TPF_ERRORS: Mapping[str, ErrorOverride] = MappingProxyType(
    {
        # §1.2, §3.2, §3.3, §3.5: an unknown execution or interaction is `Not Found`.
        "EXECUTION_NOT_FOUND": NOT_FOUND_TEXT,
        "INTERACTION_NOT_FOUND": NOT_FOUND_TEXT,
        # §5.3: an interaction past its record TTL is purged in TPF, so it is `Not Found` too.
        "INTERACTION_RECORD_EXPIRED": NOT_FOUND_TEXT,
        # §6.1, §6.2, §8.3: an unknown release, active release or worker is an empty 404.
        "RELEASE_NOT_FOUND": GUARD_404,
        "WORKER_NOT_FOUND": GUARD_404,
        # §6.1: the exact conflict text.
        "RELEASE_VERSION_CONFLICT": ErrorOverride(
            message="Release version is already registered with different metadata"
        ),
        # §2, §3.1: an envelope that does not decode.
        "PAYLOAD_UNDECODABLE": INVALID_PAYLOAD,
        "PAYLOAD_ENCODING_UNSUPPORTED": INVALID_PAYLOAD,
        "PAYLOAD_TYPE_UNSUPPORTED": INVALID_PAYLOAD,
        # §3.1, §3.5, §6: TPF's handler messages (`pipelineId is required`).
        "FIELD_REQUIRED": ErrorOverride(message="{field} is required"),
    }
)

SUBMIT = "POST /tpf/control-plane/tenants/{tenant_id}/executions"
RESULT = "GET /tpf/control-plane/tenants/{tenant_id}/executions/{execution_id}/result"
COMPLETE = "POST /tpf/control-plane/tenants/{tenant_id}/interactions/complete"
REDRIVE = "POST /tpf/admin/tenants/{tenant_id}/executions/{execution_id}/redrive"


async def _result_before_success(request: epb.GetExecutionResultRequest, call: Caller) -> Json:
    """§3.3: before SUCCEEDED the result route answers 200 with the status and a null payload."""
    method = epb.DESCRIPTOR.services_by_name["ExecutionService"].methods_by_name["GetExecution"]
    response = await call(
        method,
        epb.GetExecutionRequest(tenant_id=request.tenant_id, execution_id=request.execution_id),
    )
    return {"status": message_to_json(response.status), "resultPayload": None}


ROUTE_ADAPTATIONS: Mapping[str, RouteAdaptation] = MappingProxyType(
    {
        RESULT: RouteAdaptation(recoveries={"RESULT_NOT_READY": _result_before_success}),
        # §3.5: an ended or expired interaction and a rejected resume token are 400
        # `Invalid request` (FAILED_PRECONDITION would otherwise be 409).
        COMPLETE: RouteAdaptation(
            errors={
                "INTERACTION_TERMINAL": INVALID_REQUEST,
                "INTERACTION_EXPIRED": INVALID_REQUEST,
                "RESUME_TOKEN_INVALID": INVALID_REQUEST,
            }
        ),
        # §6.3: redrive names the execution (`Execution not found: <id>`), as the service does.
        REDRIVE: RouteAdaptation(errors={"EXECUTION_NOT_FOUND": ErrorOverride()}),
    }
)


def adaptation_of(route: Route) -> RouteAdaptation:
    return ROUTE_ADAPTATIONS.get(route.key, _NO_ADAPTATION)


_NO_ADAPTATION = RouteAdaptation()


def recovery_for(route: Route, error: UpstreamError) -> Recovery | None:
    if not error.reason:
        return None
    return adaptation_of(route).recoveries.get(error.reason)


# A failure with no ErrorInfo was made by the gRPC library on the gateway's side: the service
# did not answer (down, unreachable, or not in time).
_UNANSWERED = {
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.CANCELLED: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


def problem_of(route: Route, error: UpstreamError) -> Problem:
    """The answer to a failed RPC on `route`."""
    if not error.reason and error.code in _UNANSWERED:
        return _unanswered(route, error)
    override = _override(route, error.reason)
    status = http_status_of(error.code)
    message = error.message
    empty = False
    if override is not None:
        status = override.status or status
        message = _formatted(override.message, error) if override.message else message
        empty = override.empty_body
    return Problem(
        status=status,
        message=message,
        reason=error.reason,
        domain=error.domain or GATEWAY_DOMAIN,
        metadata=error.metadata,
        empty_tpf_body=empty,
    )


def _unanswered(route: Route, error: UpstreamError) -> Problem:
    """`<SERVICE>_UNAVAILABLE`, in words a client can act on. The gRPC library's text names
    the address it tried, an internal detail: it goes to the log, not to the client."""
    service = route.upstream
    log.warning("%s gave no answer to %s: %s", service.value, route.key, error)
    if error.code is grpc.StatusCode.DEADLINE_EXCEEDED:
        message = f"The {service.value} did not answer in time; retry later"
    else:
        message = f"The {service.value} cannot be reached right now; retry later"
    return Problem(
        status=_UNANSWERED[error.code],
        message=message,
        reason=f"{service.name}_UNAVAILABLE",
        domain=GATEWAY_DOMAIN,
    )


def _override(route: Route, reason: str) -> ErrorOverride | None:
    if not reason:
        return None
    specific = adaptation_of(route).errors.get(reason)
    if specific is not None:
        return specific
    return TPF_ERRORS.get(reason) if route.is_tpf else None


def _formatted(template: str, error: UpstreamError) -> str:
    names = {name for _, name, _, _ in Formatter().parse(template) if name}
    if not names <= error.metadata.keys():
        return error.message
    return template.format_map(dict(error.metadata))
