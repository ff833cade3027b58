"""The gateway's route table, read from the protos' google.api.http options (TPF_WIRE §3, §6)."""

from __future__ import annotations

import pytest

from tpf_gateway.adaptations import ROUTE_ADAPTATIONS
from tpf_gateway.openapi import build_openapi
from tpf_gateway.routes import Family, Route, Upstream, build_route_table

CP = "/tpf/control-plane/tenants/{tenantId}"
ADMIN = "/tpf/admin/tenants/{tenantId}"
PIPE = f"{ADMIN}/pipelines/{{pipelineId}}"

# Every route of TPF's control-plane and admin APIs, with the RPC that serves it and the field
# TPF's body is (None: the whole response).
TPF_ROUTES = {
    ("POST", f"{CP}/executions"): ("SubmitExecution", ""),
    ("GET", f"{CP}/executions/{{executionId}}"): ("GetExecution", "status"),
    ("GET", f"{CP}/executions/{{executionId}}/result"): ("GetExecutionResult", ""),
    ("GET", f"{CP}/interactions/pending"): ("ListPendingInteractions", "interactions"),
    ("POST", f"{CP}/interactions/complete"): ("CompleteInteraction", ""),
    ("POST", f"{PIPE}/releases/register"): ("RegisterRelease", "release"),
    ("GET", f"{PIPE}/releases"): ("ListReleases", "releases"),
    ("GET", f"{PIPE}/releases/active"): ("GetActiveRelease", "release"),
    ("GET", f"{PIPE}/releases/{{releaseVersion}}"): ("GetRelease", "release"),
    ("POST", f"{PIPE}/releases/{{releaseVersion}}/activate"): ("ActivateRelease", "release"),
    ("POST", f"{PIPE}/workers/register"): ("RegisterWorker", "worker"),
    ("POST", f"{PIPE}/workers/{{workerId}}/heartbeat"): ("HeartbeatWorker", "worker"),
    ("POST", f"{PIPE}/workers/{{workerId}}/drain"): ("DrainWorker", "worker"),
    ("GET", f"{PIPE}/workers"): ("ListWorkers", "workers"),
    ("POST", f"{ADMIN}/executions/{{executionId}}/redrive"): ("RedriveExecution", ""),
}


@pytest.fixture(scope="module")
def routes() -> tuple[Route, ...]:
    return build_route_table()


def test_every_tpf_route_is_served_by_its_rpc_with_tpf_body_shape(
    routes: tuple[Route, ...],
) -> None:
    served = {(r.http_method, r.path): (r.method.name, r.response_body) for r in routes if r.is_tpf}
    assert served == TPF_ROUTES


def test_families_follow_the_path_prefix_on_tpf_routes(routes: tuple[Route, ...]) -> None:
    for route in routes:
        if route.template.startswith("/tpf/control-plane/"):
            assert route.family is Family.CONTROL_PLANE, route.key
        elif route.template.startswith("/tpf/admin/"):
            assert route.family is Family.ADMIN, route.key


def test_our_own_routes_include_list_history_cancel_and_bulk_redrive(
    routes: tuple[Route, ...],
) -> None:
    v1 = {(r.http_method, r.path): r.method.name for r in routes if not r.is_tpf}
    assert v1[("GET", "/v1/tenants/{tenantId}/executions")] == "ListExecutions"
    assert v1[("GET", "/v1/tenants/{tenantId}/executions/{executionId}/history")] == (
        "ListExecutionHistory"
    )
    assert v1[("POST", "/v1/tenants/{tenantId}/executions/{executionId}:cancel")] == (
        "CancelExecution"
    )
    assert v1[("POST", "/v1/tenants/{tenantId}/dead-letters:bulkRedrive")] == "BulkRedrive"
    assert v1[("GET", "/v1/tenants/{tenantId}/dead-letters")] == "ListDeadLetters"


def test_literal_segments_are_tried_before_variables(routes: tuple[Route, ...]) -> None:
    order = [r.path for r in routes]
    assert order.index(f"{PIPE}/releases/active") < order.index(
        f"{PIPE}/releases/{{releaseVersion}}"
    )


def test_registry_routes_go_to_the_registry(routes: tuple[Route, ...]) -> None:
    for route in routes:
        expected = (
            Upstream.REGISTRY
            if route.method.containing_service.full_name.startswith("tpf.registry.")
            else Upstream.COORDINATOR
        )
        assert route.upstream is expected, route.key


def test_path_variables_bind_request_fields_by_json_name(routes: tuple[Route, ...]) -> None:
    [redrive] = [r for r in routes if r.method.name == "RedriveExecution"]
    assert [(v.field_path, v.name) for v in redrive.variables] == [
        (("tenant_id",), "tenantId"),
        (("execution_id",), "executionId"),
    ]


def test_every_adaptation_names_a_served_route(routes: tuple[Route, ...]) -> None:
    keys = {route.key for route in routes}
    assert set(ROUTE_ADAPTATIONS) <= keys


def test_openapi_document_lists_every_route_once(routes: tuple[Route, ...]) -> None:
    document = build_openapi(routes)
    operations = [
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    ]
    assert sorted(operations) == sorted((r.http_method, r.path) for r in routes)
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_openapi_schemas_use_tpf_json_shapes(routes: tuple[Route, ...]) -> None:
    document = build_openapi(routes)
    schemas = document["components"]["schemas"]
    status = schemas["tpf.coordinator.v1.ExecutionStatusView"]["properties"]
    assert status["status"]["enum"][1] == "QUEUED"
    assert status["version"] == {"type": "integer", "format": "int64"}
    assert status["errorCode"]["nullable"] is True
    pending = document["paths"][f"{CP}/interactions/pending"]["get"]
    body = pending["responses"]["200"]["content"]["application/json"]["schema"]
    assert body["type"] == "array"
    assert {p["name"] for p in pending["parameters"]} >= {"tenantId", "stepId", "limit"}
