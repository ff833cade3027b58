"""The console's HTTP edge in-process: its files and headers, its session route, and which
token opens what. The upstreams are free ports nobody listens on: a call that passes the
gateway's guard fails with a real UNAVAILABLE (503), one refused by the guard is a 401."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.harness.ports import free_port
from tpf_gateway.app import build_app
from tpf_gateway.auth import TokenGuard
from tpf_gateway.console.assets import CONTENT_SECURITY_POLICY
from tpf_gateway.openapi import build_openapi
from tpf_gateway.problems import PROBLEM_CONTENT_TYPE
from tpf_gateway.routes import Family, Upstream, build_route_table
from tpf_gateway.upstream import Upstreams

ADMIN = {"Authorization": "Bearer admin-token"}
CP = {"Authorization": "Bearer cp-token"}
VIEWER = {"Authorization": "Bearer viewer-token"}
CONSOLE_API = "/console/api/tenants/t-1"
_IMPORT = re.compile(r'^(?:import|\}) .*?from "(\.[^"]+)";$', re.MULTILINE)

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    upstreams = Upstreams(
        {
            Upstream.COORDINATOR: f"127.0.0.1:{free_port()}",
            Upstream.REGISTRY: f"127.0.0.1:{free_port()}",
        },
        token=None,
        timeout_s=2.0,
    )
    app = build_app(
        build_route_table(),
        upstreams,
        TokenGuard(
            tokens={Family.CONTROL_PLANE: "cp-token", Family.ADMIN: "admin-token"},
            viewer_token="viewer-token",
        ),
        max_body_bytes=64 * 1024,
        health_timeout_s=0.5,
    )
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
    await upstreams.close()


async def test_the_page_and_its_files_carry_the_content_security_policy(client: Client) -> None:
    redirect = await client.get("/console", allow_redirects=False)
    assert redirect.status == 308 and redirect.headers["Location"] == "/console/"
    page = await client.get("/console/")
    assert page.status == 200 and page.content_type == "text/html"
    html = await page.text()
    # No inline script or style, nothing from another origin.
    assert '<script type="module" src="assets/js/main.js"></script>' in html
    assert "<style" not in html and " style=" not in html and "http" not in html
    for response in (page, await client.get("/console/assets/js/main.js")):
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    script = await client.get("/console/assets/js/main.js")
    assert script.content_type == "text/javascript" and script.charset == "utf-8"
    style = await client.get("/console/assets/console.css")
    assert style.content_type == "text/css"
    missing = await client.get("/console/assets/js/nope.js")
    assert missing.status == 404
    assert missing.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


async def test_every_module_the_page_imports_is_served(client: Client) -> None:
    # A module that fails to load leaves a blank page: each relative import must resolve.
    pending, served = ["js/main.js"], set()
    while pending:
        path = pending.pop()
        response = await client.get(f"/console/assets/{path}")
        assert response.status == 200, path
        served.add(path)
        folder = path.rpartition("/")[0]
        for target in _IMPORT.findall(await response.text()):
            resolved = _resolve(folder, target)
            if resolved not in served:
                pending.append(resolved)
    assert {"js/pages/execution.js", "js/pages/dead-letters.js", "js/api.js"} <= served


def _resolve(folder: str, target: str) -> str:
    parts = folder.split("/") if folder else []
    for part in target.split("/"):
        if part == "..":
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


@pytest.mark.parametrize(
    ("headers", "access"),
    [(ADMIN, "admin"), (CP, "control-plane"), (VIEWER, "viewer")],
)
async def test_the_session_says_what_the_token_opens(
    client: Client, headers: dict[str, str], access: str
) -> None:
    response = await client.get("/console/api/session", headers=headers)
    assert response.status == 200
    assert await response.json() == {
        "access": access,
        "controlPlaneEnabled": True,
        "adminEnabled": True,
    }


async def test_an_unknown_token_has_no_session(client: Client) -> None:
    for headers in ({}, {"Authorization": "Bearer guess"}):
        response = await client.get("/console/api/session", headers=headers)
        assert response.status == 401
        assert response.content_type == PROBLEM_CONTENT_TYPE
        assert (await response.json())["reason"] in {"TOKEN_MISSING", "TOKEN_INVALID"}


async def test_the_viewer_token_opens_reads_and_no_change(client: Client) -> None:
    # Passing the guard means reaching the (absent) service: 503, not 401.
    for path in (
        f"{CONSOLE_API}/executions/e-1",
        f"{CONSOLE_API}/interactions",
        "/v1/tenants/t-1/executions",
        "/v1/tenants/t-1/dead-letters",
        "/v1/tenants/t-1/pipelines/p/workers",
    ):
        response = await client.get(path, headers=VIEWER)
        assert response.status == 503, path
    for path, body in (
        (f"{CONSOLE_API}/interactions/i-1:complete", {}),
        (f"{CONSOLE_API}/executions/e-1:redrive", {}),
        ("/v1/tenants/t-1/executions/e-1:cancel", {}),
        ("/v1/tenants/t-1/dead-letters:bulkRedrive", {"reason": "r"}),
        ("/v1/tenants/t-1/pipelines/p/workers/w:drain", {}),
    ):
        response = await client.post(path, json=body, headers=VIEWER)
        assert response.status == 401, path
    # TPF's own routes stay TPF's: one token per family.
    tpf = await client.get("/tpf/control-plane/tenants/t-1/interactions/pending", headers=VIEWER)
    assert tpf.status == 401


async def test_the_admin_token_opens_the_consoles_control_plane_routes(client: Client) -> None:
    complete = await client.post(f"{CONSOLE_API}/interactions/i-1:complete", json={}, headers=ADMIN)
    assert complete.status == 503
    redrive = await client.post(f"{CONSOLE_API}/executions/e-1:redrive", json={}, headers=CP)
    assert redrive.status == 401


async def test_a_watch_is_authorized_like_the_read(client: Client) -> None:
    watch = f"{CONSOLE_API}/executions/e-1:watch"
    assert (await client.get(watch)).status == 401
    response = await client.get(watch, headers=VIEWER)
    assert response.status == 503
    assert response.content_type == PROBLEM_CONTENT_TYPE
    bad = await client.get(f"{watch}?afterVersion=x", headers=VIEWER)
    assert bad.status == 400
    assert (await bad.json())["metadata"] == {"field": "afterVersion"}


def test_the_openapi_document_names_the_viewer_token_where_it_opens() -> None:
    document = build_openapi(build_route_table())
    assert document["components"]["securitySchemes"]["viewerToken"]["scheme"] == "bearer"
    for path, operations in document["paths"].items():
        for verb, operation in operations.items():
            schemes = {name for each in operation["security"] for name in each}
            opens = verb == "get" and not path.startswith("/tpf/")
            assert ("viewerToken" in schemes) == opens, (verb, path)
