"""The console's own routes under `/console/api`: what the `/v1` API lacks for it.

- `GET /console/api/session`: what the caller's token opens at the gateway (`admin`,
  `control-plane` or `viewer`), so the console offers only the actions it may take.
- Five RPCs that only TPF's `/tpf/...` routes serve (one token per family there, and TPF's
  plain-text errors without the field) get routes here with the `/v1` conventions: the admin
  token also opens control-plane routes, the viewer token the reads, and errors are problem JSON
  with `reason` and `metadata.field`. They are declared in code, not in the protos, and served
  by the same transcoder as every other route; they are not part of the public API (not in
  /openapi.json).
- `GET .../executions/{executionId}:watch`: `WatchExecution` as NDJSON (see `watch.py`).
"""

from __future__ import annotations

# googleapis-common-protos ships no type stubs for google.api.
from google.api import http_pb2  # type: ignore[import-untyped]

from tpf_gateway.routes import Route, route_for

CONSOLE_API = "/console/api"
SESSION_PATH = f"{CONSOLE_API}/session"
_TENANT = CONSOLE_API + "/tenants/{tenant_id}"
WATCH_PATH = CONSOLE_API + "/tenants/{tenantId}/executions/{executionId}:watch"

_RULES: tuple[tuple[str, http_pb2.HttpRule], ...] = (
    (
        "tpf.coordinator.v1.ExecutionService.GetExecution",
        http_pb2.HttpRule(get=_TENANT + "/executions/{execution_id}"),
    ),
    (
        "tpf.coordinator.v1.ExecutionService.GetExecutionResult",
        http_pb2.HttpRule(get=_TENANT + "/executions/{execution_id}/result"),
    ),
    (
        "tpf.coordinator.v1.InteractionService.ListPendingInteractions",
        http_pb2.HttpRule(get=_TENANT + "/interactions"),
    ),
    (
        "tpf.coordinator.v1.InteractionService.CompleteInteraction",
        http_pb2.HttpRule(post=_TENANT + "/interactions/{interaction_id}:complete", body="*"),
    ),
    (
        "tpf.coordinator.v1.DeadLetterService.RedriveExecution",
        http_pb2.HttpRule(post=_TENANT + "/executions/{execution_id}:redrive", body="*"),
    ),
)


def console_routes() -> tuple[Route, ...]:
    """The console's RPC routes (built at start; a bad rule fails the start)."""
    return tuple(route_for(method, rule) for method, rule in _RULES)


def get_execution_route(routes: tuple[Route, ...]) -> Route:
    """The GetExecution route: a watch is authorized as that read."""
    return next(route for route in routes if route.method.name == "GetExecution")
