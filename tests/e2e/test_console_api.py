"""The console's own routes over HTTP, in front of a real registry and coordinator: the session,
the RPCs `/v1` lacks (problem JSON with reasons), and the WatchExecution stream (one line per
state until terminal, a 404 before any line, ended at once when the gateway stops)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import Suite
from tests.e2e.test_gateway_routes import (
    ADM,
    ADMIN_TOKEN,
    CP,
    Gateway,
    running_gateway,
    submit_body,
)
from tests.support.registry_client import VIEWER

pytestmark = pytest.mark.e2e

VIEW = {"Authorization": f"Bearer {VIEWER}"}
API = "/console/api/tenants/restaurant-demo"


@pytest.fixture
async def gateway(
    suite: Suite, tmp_path: Path, pytestconfig: pytest.Config
) -> AsyncIterator[Gateway]:
    async with running_gateway(
        suite, tmp_path, pytestconfig.rootpath, TPF_VIEWER_TOKEN=VIEWER
    ) as running:
        yield running


async def _submit(gateway: Gateway) -> str:
    answer = await gateway.post(
        "/tpf/control-plane/tenants/restaurant-demo/executions", json_body=submit_body()
    )
    assert answer.status == 200, answer.text
    execution_id: str = answer.json()["executionId"]
    return execution_id


class Watch:
    """An open watch: its JSON lines, heartbeats skipped."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next(self) -> Any:
        """The next message, or None at the end of the stream."""
        while True:
            line = await self.response.content.readline()
            if not line:
                return None
            if line.strip():
                return json.loads(line)


async def _watch(gateway: Gateway, execution_id: str, headers: dict[str, str]) -> Watch:
    response = await gateway.session.get(
        f"{gateway.base_url}{API}/executions/{execution_id}:watch", headers=headers
    )
    assert response.status == 200, await response.text()
    assert response.content_type == "application/x-ndjson"
    return Watch(response)


async def test_the_consoles_routes_answer_with_the_services_reasons(gateway: Gateway) -> None:
    for headers, access in ((ADM, "admin"), (CP, "control-plane"), (VIEW, "viewer")):
        answer = await gateway.get("/console/api/session", headers=headers)
        assert answer.status == 200
        assert answer.json()["access"] == access
    assert (await gateway.get("/console/api/session", headers=None)).status == 401

    execution_id = await _submit(gateway)
    got = await gateway.get(f"{API}/executions/{execution_id}", headers=VIEW)
    assert got.status == 200
    execution = got.json()["execution"]
    assert execution["status"] == "QUEUED"
    assert execution["identity"]["pipelineId"] == "org.pipelineframework.restaurantapproval"
    pending = await gateway.get(f"{API}/interactions", headers=VIEW)
    assert pending.status == 200 and pending.json()["interactions"] == []

    missing = await gateway.get(f"{API}/executions/nope", headers=VIEW)
    assert missing.status == 404
    assert missing.headers["Content-Type"].startswith("application/problem+json")
    assert missing.json()["reason"] == "EXECUTION_NOT_FOUND"
    # Not failed: a redrive is refused with the service's reason, not TPF's text.
    redrive = await gateway.post(
        f"{API}/executions/{execution_id}:redrive", headers=ADM, json_body={"allowFailed": True}
    )
    assert redrive.status == 409 and redrive.json()["reason"] == "INVALID_TRANSITION"
    bad = await gateway.post(
        f"{API}/interactions/i-1:complete",
        headers=ADM,
        json_body={
            "responsePayload": {
                "payloadTypeId": "com.example.Answer",
                "payloadEncoding": "application/tpf-transition+json",
                "payload": "{}",
            }
        },
    )
    assert bad.status == 400 and bad.json()["reason"] == "PAYLOAD_TYPE_UNSUPPORTED"
    # The viewer reads; the gateway refuses its changes before any service sees them.
    refused = await gateway.post(
        f"{API}/executions/{execution_id}:redrive", headers=VIEW, json_body={}
    )
    assert refused.status == 401


async def test_a_watch_streams_each_state_until_terminal_or_the_stop(gateway: Gateway) -> None:
    execution_id = await _submit(gateway)
    watch = await _watch(gateway, execution_id, VIEW)
    first = await watch.next()
    assert (first["execution"]["status"], first["execution"]["version"]) == ("QUEUED", 0)
    cancelled = await gateway.post(
        f"/v1/tenants/restaurant-demo/executions/{execution_id}:cancel",
        json_body={"reason": "watch test"},
    )
    assert cancelled.status == 200, cancelled.text
    last = await watch.next()
    assert (last["execution"]["status"], last["execution"]["version"]) == ("CANCELLED", 1)
    assert await watch.next() is None

    unknown = await gateway.session.get(
        f"{gateway.base_url}{API}/executions/nope:watch", headers=VIEW
    )
    assert unknown.status == 404
    assert (await unknown.json())["reason"] == "EXECUTION_NOT_FOUND"
    assert (
        await gateway.session.get(
            f"{gateway.base_url}{API}/executions/{execution_id}:watch",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}x"},
        )
    ).status == 401

    # A watch on an execution that never moves (no dispatcher): only the stop ends it, at
    # once, and the gateway exits cleanly instead of waiting for its readers.
    waiting = await _submit(gateway)
    watch = await _watch(gateway, waiting, ADM)
    assert (await watch.next())["execution"]["version"] == 0
    assert gateway.process.terminate(timeout_s=20) == 0
    assert await watch.next() is None
