"""The gateway's HTTP edge in-process: errors before any RPC, and services that are down.

The upstream targets are free ports nobody listens on, so every RPC fails with a real
UNAVAILABLE from gRPC (no doubles): the gateway must answer 503, never 500.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.harness.ports import free_port
from tpf_gateway.app import build_app
from tpf_gateway.auth import TokenGuard
from tpf_gateway.openapi import OPENAPI_PATH
from tpf_gateway.problems import REASON_HEADER
from tpf_gateway.routes import Family, Upstream, build_route_table
from tpf_gateway.upstream import Upstreams

CP = "Bearer cp-token"
ADMIN = "Bearer admin-token"
SUBMIT = "/tpf/control-plane/tenants/t-1/executions"
MAX_BODY = 4096

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    upstreams = Upstreams(
        {
            Upstream.COORDINATOR: f"127.0.0.1:{free_port()}",
            Upstream.REGISTRY: f"127.0.0.1:{free_port()}",
        },
        token="service-token",
        timeout_s=5.0,
    )
    app = build_app(
        build_route_table(),
        upstreams,
        TokenGuard(tokens={Family.CONTROL_PLANE: "cp-token", Family.ADMIN: "admin-token"}),
        enabled_families=[Family.CONTROL_PLANE],
        max_body_bytes=MAX_BODY,
        health_timeout_s=0.5,
    )
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
    await upstreams.close()


async def test_malformed_json_is_400_plain_text_before_any_rpc(
    client: Client,
) -> None:
    response = await client.post(SUBMIT, data=b"{oops", headers={"Authorization": CP})
    assert response.status == 400
    assert response.content_type == "text/plain"
    assert "not valid JSON" in await response.text()
    assert response.headers[REASON_HEADER] == "FIELD_INVALID"


async def test_oversized_body_is_413(client: Client) -> None:
    body = b'{"pipelineId": "' + b"x" * (MAX_BODY * 2) + b'"}'
    response = await client.post(SUBMIT, data=body, headers={"Authorization": CP})
    assert response.status == 413
    assert str(MAX_BODY) in await response.text()


async def test_missing_token_is_401_with_empty_body(client: Client) -> None:
    response = await client.post(SUBMIT, json={"pipelineId": "p"})
    assert response.status == 401
    assert await response.text() == ""


async def test_blank_path_id_is_400_before_the_token(client: Client) -> None:
    response = await client.get("/tpf/control-plane/tenants/%20/executions/e-1")
    assert response.status == 400
    assert await response.text() == "tenantId is required"


async def test_unavailable_service_is_503(client: Client) -> None:
    response = await client.get(
        "/tpf/control-plane/tenants/t-1/executions/e-1", headers={"Authorization": CP}
    )
    assert response.status == 503


async def test_v1_errors_are_problem_json(client: Client) -> None:
    response = await client.get("/v1/tenants/t-1/executions?bogus=1", headers={"Authorization": CP})
    assert response.status == 400
    assert response.content_type == "application/problem+json"
    problem = await response.json(content_type=None)
    assert problem["status"] == 400 and "bogus" in problem["detail"]


async def test_unknown_routes_and_methods_are_4xx_with_a_message(
    client: Client,
) -> None:
    response = await client.get("/tpf/control-plane/nothing-here")
    assert (response.status, await response.text()) == (404, "Not Found")
    response = await client.get("/v1/nothing")
    assert (
        response.status == 404 and "No route" in (await response.json(content_type=None))["detail"]
    )
    response = await client.delete(SUBMIT)
    assert response.status == 405
    assert "POST" in response.headers["Allow"]


async def test_disabled_family_answers_404_with_empty_body(
    client: Client,
) -> None:
    response = await client.post(
        "/tpf/admin/tenants/t/executions/e/redrive", headers={"Authorization": ADMIN}
    )
    assert (response.status, await response.text()) == (404, "")


async def test_health_live_is_up_and_ready_is_down_without_services(
    client: Client,
) -> None:
    live = await client.get("/q/health/live")
    assert live.status == 200
    assert (await live.json())["status"] == "UP"
    ready = await client.get("/q/health/ready")
    assert ready.status == 503
    body = await ready.json()
    assert body["status"] == "DOWN"
    [dependencies] = [c for c in body["checks"] if c["name"] == "pipeline-dependencies"]
    assert dependencies["data"]["state"] == "UNHEALTHY"
    assert "coordinator" in dependencies["data"]["error"]


async def test_openapi_document_is_served(client: Client) -> None:
    response = await client.get(OPENAPI_PATH)
    assert response.status == 200
    document = await response.json()
    assert document["openapi"].startswith("3.")
    assert "/tpf/control-plane/tenants/{tenantId}/executions" in document["paths"]
