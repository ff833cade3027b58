"""Every TPF route through the gateway as a real process, in front of a real registry and
coordinator (the `suite`): success and error cases, TPF's JSON, status codes and bodies
(TPF_WIRE §1-§7, §13).

`start_service` waits for gRPC health, which an HTTP-only gateway does not serve, so the
gateway is started as a plain ChildProcess and is ready once `/q/health/ready` answers 200
(which needs the coordinator and registry SERVING, so it also proves the wiring). Without a
dispatcher, executions move only when a worker reports: the tests play that part over the
coordinator's WorkService, and do everything a TPF client does over HTTP.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import pytest
from google.protobuf import json_format, struct_pb2

from tests.e2e.conftest import Suite
from tests.e2e.test_coordinator_executions import claim, complete
from tests.harness.ports import free_port
from tests.harness.processes import ChildProcess
from tests.harness.services import minimal_environment
from tests.harness.wait import wait_until
from tests.support.coordinator_client import coordinator_client
from tests.support.fake_dispatcher import failed
from tests.support.registry_client import ADMIN, CONTROL_PLANE_A
from tests.support.release_artifacts import PIPELINE_ID, build_release
from tests.support.restaurant import envelope, order_envelope
from tpf.coordinator.v1 import interaction_pb2
from tpf.coordinator.v1 import work_service_pb2 as wpb
from tpf_envelope import encode, to_json_dict
from tpf_envelope.identifiers import await_unit_id
from tpf_gateway.problems import REASON_HEADER

CONTROL_PLANE_TOKEN = "gateway-cp-token"
ADMIN_TOKEN = "gateway-admin-token"
CP = {"Authorization": f"Bearer {CONTROL_PLANE_TOKEN}"}
ADM = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class Reply:
    status: int
    text: str
    headers: Mapping[str, str]

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class Gateway:
    base_url: str
    process: ChildProcess
    session: aiohttp.ClientSession

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        data: bytes | None = None,
        params: Any = None,
    ) -> Reply:
        async with self.session.request(
            method,
            f"{self.base_url}{path}",
            headers=headers,
            json=json_body,
            data=data,
            params=params,
        ) as response:
            return Reply(response.status, await response.text(), dict(response.headers))

    async def get(self, path: str, *, headers: Mapping[str, str] | None = CP, **kw: Any) -> Reply:
        return await self.request("GET", path, headers=headers, **kw)

    async def post(self, path: str, *, headers: Mapping[str, str] | None = CP, **kw: Any) -> Reply:
        return await self.request("POST", path, headers=headers, **kw)


class Services(Protocol):
    """What a gateway stands in front of: the `suite` fixture, or an example ControlPlane."""

    @property
    def coordinator(self) -> Any: ...

    @property
    def registry(self) -> Any: ...


def gateway_env(suite: Services, port: int, **overrides: str) -> dict[str, str]:
    return {
        **minimal_environment(),
        "TPF_GATEWAY_HOST": "127.0.0.1",
        "TPF_GATEWAY_PORT": str(port),
        "TPF_COORDINATOR_TARGET": suite.coordinator.target,
        "TPF_REGISTRY_TARGET": suite.registry.target,
        "TPF_CONTROL_PLANE_TOKEN": CONTROL_PLANE_TOKEN,
        # TPF's `-ref` form: the admin token is read from another variable.
        "TPF_ADMIN_TOKEN": "env:GATEWAY_TEST_ADMIN_TOKEN",
        "GATEWAY_TEST_ADMIN_TOKEN": ADMIN_TOKEN,
        "TPF_GATEWAY_SERVICE_TOKEN": ADMIN,
        "TPF_GATEWAY_MAX_BODY_BYTES": str(1024 * 1024),
        "TPF_LOG_LEVEL": "INFO",
        **overrides,
    }


@asynccontextmanager
async def running_gateway(
    suite: Services, tmp_path: Path, rootdir: Path, **env_overrides: str
) -> AsyncIterator[Gateway]:
    """`python -m tpf_gateway` in front of `suite`, ready; stopped on exit."""
    port = free_port()
    process = ChildProcess(
        [sys.executable, "-m", "tpf_gateway"],
        log_path=tmp_path / "tpf_gateway.log",
        env=gateway_env(suite, port, **env_overrides),
        cwd=rootdir,
    )
    process.start()
    try:
        async with aiohttp.ClientSession() as session:
            gateway = Gateway(f"http://127.0.0.1:{port}", process, session)

            async def ready() -> bool:
                process.raise_if_exited("tpf_gateway")
                return (await gateway.get("/q/health/ready", headers=None)).status == 200

            await wait_until(
                ready, timeout_s=30, what="gateway ready", ignore=(aiohttp.ClientError,)
            )
            yield gateway
    finally:
        process.stop()


pytestmark = pytest.mark.e2e

CP_BASE = "/tpf/control-plane/tenants/restaurant-demo"
ADMIN_BASE = "/tpf/admin/tenants/restaurant-demo"
PIPE = f"{ADMIN_BASE}/pipelines/{PIPELINE_ID}"
AWAIT_STEP = "ProcessAwaitRestaurantDecisionService"
TERMINAL_TYPE = "org.pipelineframework.restaurantapproval.common.dto.TerminalOrderStateDto"


@pytest.fixture
async def gateway(
    suite: Suite, tmp_path: Path, pytestconfig: pytest.Config
) -> AsyncIterator[Gateway]:
    async with running_gateway(suite, tmp_path, pytestconfig.rootpath) as running:
        yield running


def submit_body(key: str = "", **order_fields: Any) -> dict[str, Any]:
    envelope = order_envelope(**order_fields)
    body: dict[str, Any] = {
        "pipelineId": PIPELINE_ID,
        "inputShape": "UNI",
        "inputPayload": {
            "payloadTypeId": envelope.payload_type_id,
            "payloadEncoding": envelope.payload_encoding,
            "payload": envelope.payload,
        },
    }
    if key:
        body["idempotencyKey"] = key
    return body


def decision_body(interaction_id: str, accepted: dict[str, Any]) -> dict[str, Any]:
    """A completion as TPF's demo posts it: a java.util.Map of nested envelopes."""
    return {
        "interactionId": interaction_id,
        "responsePayload": to_json_dict(encode({"accepted": accepted})),
        "actor": "demo",
    }


async def submit(gateway: Gateway, **kw: Any) -> str:
    reply = await gateway.post(f"{CP_BASE}/executions", json_body=submit_body(**kw))
    assert reply.status == 200, reply.text
    execution_id: str = reply.json()["executionId"]
    return execution_id


async def status_of(gateway: Gateway, execution_id: str) -> dict[str, Any]:
    reply = await gateway.get(f"{CP_BASE}/executions/{execution_id}")
    assert reply.status == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def park_at_await(suite: Suite, execution_id: str, order_id: str) -> str:
    """Play the worker: run steps 0-1 and report the await at step 2; the interaction id."""
    async with coordinator_client(suite.coordinator.target) as client:
        [item] = await claim(client)
        assert item.execution_id == execution_id
        payload = struct_pb2.Value()
        payload.struct_value.update({"orderId": order_id, "totalAmount": "27.50"})
        interaction = interaction_pb2.Interaction(
            interaction_id=str(uuid.uuid4()),
            correlation_id=str(uuid.uuid4()),
            step_id=AWAIT_STEP,
            step_index=2,
            output_type="org.pipelineframework.restaurantapproval.common.dto.RestaurantDecisionDto",
            request_payload=payload,
            transport_type="interaction-api",
            transport_metadata=json_format.ParseDict(
                {"adapter": "interaction-api"}, struct_pb2.Struct()
            ),
        )
        [result] = await complete(
            client,
            wpb.WorkOutcome(
                execution_id=execution_id,
                tenant_id=suite.tenant,
                fencing_token=item.fencing_token,
                await_requested=wpb.AwaitRequestedOutcome(
                    await_step_index=2,
                    unit_id=await_unit_id(suite.tenant, execution_id, AWAIT_STEP, 2),
                    deadline_epoch_ms=2**41,
                    interactions=[
                        wpb.AwaitInteractionSpec(
                            interaction=interaction,
                            idempotency_key=f"{AWAIT_STEP}:orderId={order_id}",
                        )
                    ],
                ),
            ),
        )
        assert result.accepted, result
    return interaction.interaction_id


async def finish_step_3(suite: Suite, execution_id: str, outcome: str | None) -> None:
    """Play the worker for the final step: succeed with a TerminalOrderState, or fail."""
    async with coordinator_client(suite.coordinator.target) as client:
        [item] = await claim(client)
        assert (item.execution_id, item.step_index) == (execution_id, 3)
        if outcome is None:
            report = failed(
                item,
                retryable=False,
                message="Failed converting await payload to RestaurantDecisionDto",
            )
        else:
            report = wpb.WorkOutcome(
                execution_id=execution_id,
                tenant_id=suite.tenant,
                fencing_token=item.fencing_token,
                pipeline_completed=wpb.PipelineCompletedOutcome(
                    output_payloads=[
                        envelope(TERMINAL_TYPE, {"orderId": "o-1", "outcome": outcome})
                    ]
                ),
            )
        [result] = await complete(client, report)
        assert result.accepted, result


async def test_health_answers_as_quarkus_does(gateway: Gateway) -> None:
    live = await gateway.get("/q/health/live", headers=None)
    assert live.status == 200 and live.json()["status"] == "UP"
    ready = await gateway.get("/q/health/ready", headers=None)
    [check] = [c for c in ready.json()["checks"] if c["name"] == "pipeline-dependencies"]
    assert check["status"] == "UP" and check["data"]["state"] == "HEALTHY"


async def test_release_routes(gateway: Gateway, suite: Suite, tmp_path: Path) -> None:
    version = suite.release.release_version
    listed = await gateway.get(f"{PIPE}/releases", headers=ADM)
    assert listed.status == 200
    [record] = listed.json()
    assert record["releaseVersion"] == version and record["status"] == "ACTIVE"
    assert isinstance(record["createdAtEpochMs"], int)
    active = await gateway.get(f"{PIPE}/releases/active", headers=ADM)
    assert active.status == 200 and active.json()["releaseVersion"] == version
    # `sha256:<hex>` goes into the path as is, and percent-encoded too.
    by_version = await gateway.get(f"{PIPE}/releases/{version}", headers=ADM)
    assert by_version.status == 200 and by_version.json()["contractVersion"]
    encoded = await gateway.get(f"{PIPE}/releases/{version.replace(':', '%3A')}", headers=ADM)
    assert encoded.status == 200
    unknown = await gateway.get(f"{PIPE}/releases/sha256:{'0' * 64}", headers=ADM)
    assert (unknown.status, unknown.text) == (404, "")
    assert unknown.headers[REASON_HEADER] == "RELEASE_NOT_FOUND"
    # A new release over HTTP; registering it again (as every demo run does) answers the same
    # record. The suite's own release was registered with a retry policy, so its descriptor
    # alone is "different metadata".
    second = build_release(tmp_path / "second", salt="-second")
    register = f"{PIPE}/releases/register"
    path_body = {"releaseDescriptorPath": str(second.descriptor_path)}
    first = await gateway.post(register, headers=ADM, json_body=path_body)
    assert first.status == 200, first.text
    assert (first.json()["status"], first.json()["activatedAtEpochMs"]) == ("REGISTERED", 0)
    again = await gateway.post(register, headers=ADM, json_body=path_body)
    assert again.status == 200 and again.json() == first.json()
    conflict = await gateway.post(
        register,
        headers=ADM,
        json_body={"releaseDescriptorPath": str(suite.release.descriptor_path)},
    )
    assert (conflict.status, conflict.text) == (
        409,
        "Release version is already registered with different metadata",
    )
    missing = await gateway.post(register, headers=ADM)
    assert (missing.status, missing.text) == (400, "releaseDescriptorPath is required")
    relative = await gateway.post(
        register, headers=ADM, json_body={"releaseDescriptorPath": "x.json"}
    )
    assert relative.status == 400
    # activate: no body, no Content-Type; the previous active release is demoted.
    activated = await gateway.post(
        f"{PIPE}/releases/{second.release_version}/activate", headers=ADM
    )
    assert activated.status == 200 and activated.json()["status"] == "ACTIVE"
    active = await gateway.get(f"{PIPE}/releases/active", headers=ADM)
    assert active.json()["releaseVersion"] == second.release_version
    records = (await gateway.get(f"{PIPE}/releases", headers=ADM)).json()
    assert [(r["releaseVersion"], r["status"]) for r in records] == [
        (version, "REGISTERED"),
        (second.release_version, "ACTIVE"),
    ]
    absent = await gateway.post(f"{PIPE}/releases/sha256:{'1' * 64}/activate", headers=ADM)
    assert (absent.status, absent.text) == (404, "")
    # The control-plane token does not open the admin API; no token is 401 with no body.
    for headers in (CP, None, {"Authorization": f"bearer {ADMIN_TOKEN}"}):
        refused = await gateway.get(f"{PIPE}/releases", headers=headers)
        assert (refused.status, refused.text) == (401, "")
        assert "WWW-Authenticate" not in refused.headers


async def test_worker_routes_and_submit_without_a_healthy_worker(
    gateway: Gateway, suite: Suite
) -> None:
    registration = {
        "workerId": "restaurant-local-worker",
        "contractVersion": suite.release.contract_version,
        "releaseVersion": suite.release.release_version,
        "protocol": "LOCAL",
        "endpoint": "in-process",
    }
    registered = await gateway.post(f"{PIPE}/workers/register", headers=ADM, json_body=registration)
    assert registered.status == 200, registered.text
    worker = registered.json()
    assert (worker["state"], worker["protocol"], worker["artifactId"]) == ("HEALTHY", "local", "")
    incomplete = await gateway.post(
        f"{PIPE}/workers/register", headers=ADM, json_body={"workerId": "w"}
    )
    assert incomplete.status == 400 and incomplete.text.endswith("is required")
    beat = await gateway.post(f"{PIPE}/workers/restaurant-local-worker/heartbeat", headers=ADM)
    assert beat.status == 200 and beat.json()["lastHeartbeatAtEpochMs"] > 0
    listed = await gateway.get(
        f"{PIPE}/workers",
        headers=ADM,
        params={"releaseVersion": suite.release.release_version},
    )
    assert {w["workerId"] for w in listed.json()} == {"local-worker", "restaurant-local-worker"}
    none = await gateway.get(f"{PIPE}/workers", headers=ADM, params={"contractVersion": "x"})
    assert none.json() == []
    for worker_id in ("local-worker", "restaurant-local-worker"):
        drained = await gateway.post(f"{PIPE}/workers/{worker_id}/drain", headers=ADM)
        assert drained.status == 200 and drained.json()["state"] == "DRAINING"
        assert drained.json()["drainingSinceEpochMs"] > 0
    unknown = await gateway.post(f"{PIPE}/workers/nobody/heartbeat", headers=ADM)
    assert (unknown.status, unknown.text) == (404, "")
    # No healthy worker any more: TPF's 503.
    refused = await gateway.post(f"{CP_BASE}/executions", json_body=submit_body())
    assert refused.status == 503
    assert refused.text.startswith("No worker available for active release")
    # Registering again (the worker restarting) keeps the drain; our /v1 undrain ends it.
    again = await gateway.post(f"{PIPE}/workers/register", headers=ADM, json_body=registration)
    assert again.status == 200 and again.json()["state"] == "DRAINING"
    v1_workers = f"/v1/tenants/restaurant-demo/pipelines/{PIPELINE_ID}/workers"
    undrained = await gateway.post(f"{v1_workers}/restaurant-local-worker:undrain", headers=ADM)
    assert undrained.status == 200, undrained.text
    worker = undrained.json()["worker"]
    assert (worker["state"], worker["drainingSinceEpochMs"]) == ("HEALTHY", 0)
    missing = await gateway.post(f"{v1_workers}/nobody:undrain", headers=ADM)
    assert (missing.status, missing.headers[REASON_HEADER]) == (404, "WORKER_NOT_FOUND")


async def test_submit_status_and_result_routes(gateway: Gateway) -> None:
    body = submit_body(key="order-1")
    reply = await gateway.post(f"{CP_BASE}/executions", json_body=body)
    assert reply.status == 200, reply.text
    accepted = reply.json()
    execution_id = accepted["executionId"]
    assert accepted["duplicate"] is False
    assert accepted["statusUrl"] == f"/pipeline/executions/{execution_id}"
    assert isinstance(accepted["submittedAtEpochMs"], int)
    again = await gateway.post(f"{CP_BASE}/executions", json_body=body)
    assert again.json()["executionId"] == execution_id and again.json()["duplicate"] is True
    # Our one departure: the same key with another input is refused, not silently ignored.
    reused = await gateway.post(f"{CP_BASE}/executions", json_body=submit_body(key="order-1"))
    assert reused.status == 409 and reused.headers[REASON_HEADER] == "IDEMPOTENCY_KEY_REUSED"
    status = await status_of(gateway, execution_id)
    assert status == {
        "executionId": execution_id,
        "status": "QUEUED",
        "stepIndex": 0,
        "attempt": 0,
        "version": 0,
        "nextDueAtEpochMs": status["nextDueAtEpochMs"],
        "updatedAtEpochMs": status["updatedAtEpochMs"],
        "errorCode": None,
        "errorMessage": None,
    }
    result = await gateway.get(f"{CP_BASE}/executions/{execution_id}/result")
    assert result.status == 200
    assert result.json() == {"status": status, "resultPayload": None}
    for path in (f"{CP_BASE}/executions/nope", f"{CP_BASE}/executions/nope/result"):
        missing = await gateway.get(path)
        assert (missing.status, missing.text) == (404, "Not Found")
        assert missing.headers[REASON_HEADER] == "EXECUTION_NOT_FOUND"


async def test_long_identifiers_are_refused_with_their_limit_never_a_500(
    gateway: Gateway,
) -> None:
    """Echoed unbounded, such ids overflowed gRPC's trailers: the gateway answered 500."""
    for length in (300, 3_500, 7_000):
        long_id = "e" * length
        for path in (
            f"{CP_BASE}/executions/{long_id}",
            f"{CP_BASE}/executions/{long_id}/result",
        ):
            refused = await gateway.get(path)
            assert refused.status == 400, refused.text[:300]
            assert refused.headers[REASON_HEADER] == "FIELD_INVALID"
            assert "at most 256 characters" in refused.text
            assert long_id not in refused.text
    body = submit_body()
    body["pipelineId"] = "p" * 5_000
    refused = await gateway.post(f"{CP_BASE}/executions", json_body=body)
    assert (refused.status, refused.headers[REASON_HEADER]) == (400, "FIELD_INVALID")
    assert refused.text == "Shorten pipelineId to at most 256 characters; it has 5000."
    problem = await gateway.get(f"/v1/tenants/restaurant-demo/executions/{'e' * 3_500}/history")
    assert problem.status == 400
    assert problem.json()["reason"] == "FIELD_INVALID"
    assert problem.json()["metadata"] == {
        "field": "executionId",
        "maxLength": "256",
        "length": "3500",
    }


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        (None, 400, "pipelineId is required"),
        (b"{broken", 400, None),
        (b"[]", 400, None),
        ({"pipelineId": "other.pipeline", "inputShape": "UNI"}, 400, None),
        ("unknown-pipeline", 409, "No active release is registered for the requested pipeline"),
        ("bad-encoding", 400, "Invalid request payload"),
        ("bad-shape", 400, None),
        ("streaming", 400, None),
    ],
)
async def test_submit_errors(gateway: Gateway, body: Any, status: int, text: str | None) -> None:
    path = f"{CP_BASE}/executions"
    if body is None:
        reply = await gateway.post(path)
    elif isinstance(body, bytes):
        reply = await gateway.post(
            path, data=body, headers={**CP, "Content-Type": "application/json"}
        )
    elif isinstance(body, dict):
        reply = await gateway.post(path, json_body=body)
    else:
        good = submit_body()
        if body == "unknown-pipeline":
            good["pipelineId"] = "org.example.unknown"
        elif body == "bad-encoding":
            good["inputPayload"]["payloadEncoding"] = "text/plain"
        elif body == "bad-shape":
            good["inputShape"] = "uni"
        else:
            good["outputStreaming"] = True
        reply = await gateway.post(path, json_body=good)
    assert reply.status == status, reply.text
    assert reply.headers.get("Content-Type", "").startswith("text/plain")
    if text is not None:
        assert reply.text == text
    else:
        assert reply.text


async def test_approve_flow_over_http(gateway: Gateway, suite: Suite) -> None:
    execution_id = await submit(gateway)
    interaction_id = await park_at_await(suite, execution_id, "order-77")
    waiting = await status_of(gateway, execution_id)
    assert (waiting["status"], waiting["stepIndex"], waiting["version"]) == (
        "WAITING_EXTERNAL",
        2,
        2,
    )
    assert waiting["nextDueAtEpochMs"] == 9223372036854775807
    pending = await gateway.get(f"{CP_BASE}/interactions/pending", params={"limit": "10"})
    assert pending.status == 200
    [item] = pending.json()
    assert item["interactionId"] == interaction_id
    assert item["requestPayload"]["orderId"] == "order-77"
    assert (item["transportType"], item["stepId"], item["executionId"]) == (
        "interaction-api",
        AWAIT_STEP,
        execution_id,
    )
    filtered = await gateway.get(f"{CP_BASE}/interactions/pending", params={"stepId": "other"})
    assert filtered.json() == []
    bad_limit = await gateway.get(f"{CP_BASE}/interactions/pending", params={"limit": "ten"})
    assert bad_limit.status == 400

    accepted = {"orderId": "order-77", "decidedAt": "2026-08-22T17:48:23.123456Z", "note": "ok"}
    done = await gateway.post(
        f"{CP_BASE}/interactions/complete", json_body=decision_body(interaction_id, accepted)
    )
    assert done.status == 200, done.text
    assert done.json() == {
        "interactionId": interaction_id,
        "executionId": execution_id,
        "stepId": AWAIT_STEP,
        "status": "COMPLETED",
        "duplicate": False,
    }
    duplicate = await gateway.post(
        f"{CP_BASE}/interactions/complete", json_body=decision_body(interaction_id, accepted)
    )
    assert duplicate.status == 200 and duplicate.json()["duplicate"] is True
    assert (await status_of(gateway, execution_id))["status"] == "QUEUED"
    assert (await gateway.get(f"{CP_BASE}/interactions/pending")).json() == []

    unknown = await gateway.post(
        f"{CP_BASE}/interactions/complete", json_body=decision_body("no-such", accepted)
    )
    assert (unknown.status, unknown.text) == (404, "Not Found")
    no_handle = await gateway.post(
        f"{CP_BASE}/interactions/complete",
        json_body={"responsePayload": decision_body("x", accepted)["responsePayload"]},
    )
    assert no_handle.status == 400
    empty = await gateway.post(f"{CP_BASE}/interactions/complete")
    assert empty.status == 400

    await finish_step_3(suite, execution_id, "APPROVED")
    result = await gateway.get(f"{CP_BASE}/executions/{execution_id}/result")
    assert result.status == 200
    body = result.json()
    assert body["status"]["status"] == "SUCCEEDED"
    assert body["resultPayload"]["payloadTypeId"] == TERMINAL_TYPE
    assert json.loads(body["resultPayload"]["payload"])["outcome"] == "APPROVED"


async def test_incident_flow_dead_letter_and_redrive_over_http(
    gateway: Gateway, suite: Suite
) -> None:
    execution_id = await submit(gateway)
    interaction_id = await park_at_await(suite, execution_id, "order-incident")
    invalid = {"orderId": "not-a-uuid", "decidedAt": "2026-08-22T17:48:23Z", "note": "bad"}
    done = await gateway.post(
        f"{CP_BASE}/interactions/complete", json_body=decision_body(interaction_id, invalid)
    )
    assert done.status == 200
    await finish_step_3(suite, execution_id, None)
    failed_status = await status_of(gateway, execution_id)
    assert failed_status["status"] == "FAILED"
    assert failed_status["errorCode"] and failed_status["errorMessage"]

    letters = await gateway.get("/v1/tenants/restaurant-demo/dead-letters", headers=ADM)
    assert letters.status == 200, letters.text
    [letter] = letters.json()["deadLetters"]
    assert letter["executionId"] == execution_id and letter["terminalStatus"] == "FAILED"
    history = await gateway.get(f"/v1/tenants/restaurant-demo/executions/{execution_id}/history")
    assert [e["toStatus"] for e in history.json()["historyEntries"]][-1] == "FAILED"
    listed = await gateway.get(
        "/v1/tenants/restaurant-demo/executions", params={"statuses": "FAILED"}
    )
    assert [e["executionId"] for e in listed.json()["executions"]] == [execution_id]

    redrive = f"{ADMIN_BASE}/executions/{execution_id}/redrive"
    not_allowed = await gateway.post(redrive, headers=ADM)
    assert not_allowed.status == 409
    assert not_allowed.text == f"Execution {execution_id} cannot be re-driven from status FAILED"
    stale = await gateway.post(
        redrive, headers=ADM, json_body={"allowFailed": True, "expectedVersion": 1}
    )
    assert stale.status == 409 and "version mismatch" in stale.text
    wrong_token = await gateway.post(redrive, json_body={"allowFailed": True})
    assert (wrong_token.status, wrong_token.text) == (401, "")
    redriven = await gateway.post(
        redrive,
        headers=ADM,
        json_body={
            "allowFailed": True,
            "expectedVersion": failed_status["version"],
            "reason": "self-host incident demo re-drive",
        },
    )
    assert redriven.status == 200, redriven.text
    answer = redriven.json()
    assert (answer["previousStatus"], answer["status"]) == ("FAILED", "QUEUED")
    assert answer["version"] == failed_status["version"] + 1
    assert answer["releaseVersion"] == suite.release.release_version
    # Committed before the answer: a read right after sees it.
    assert (await status_of(gateway, execution_id))["version"] == answer["version"]
    unknown = await gateway.post(f"{ADMIN_BASE}/executions/nope/redrive", headers=ADM)
    assert (unknown.status, unknown.text) == (404, "Execution not found: nope")


async def test_v1_cancel_and_bulk_redrive_answer_problem_json(gateway: Gateway) -> None:
    execution_id = await submit(gateway)
    cancel = f"/v1/tenants/restaurant-demo/executions/{execution_id}:cancel"
    cancelled = await gateway.post(cancel, json_body={"reason": "test"})
    assert cancelled.status == 200, cancelled.text
    assert cancelled.json()["execution"]["status"] == "CANCELLED"
    again = await gateway.post(cancel)
    assert again.status == 200 and again.json()["duplicate"] is True
    missing = await gateway.post("/v1/tenants/restaurant-demo/executions/nope:cancel")
    assert missing.status == 404
    assert missing.headers["Content-Type"].startswith("application/problem+json")
    problem = missing.json()
    assert (problem["reason"], problem["domain"], problem["status"]) == (
        "EXECUTION_NOT_FOUND",
        "tpf.coordinator",
        404,
    )
    bulk = await gateway.post(
        "/v1/tenants/restaurant-demo/dead-letters:bulkRedrive",
        headers=ADM,
        json_body={"dryRun": True, "reason": "check"},
    )
    assert bulk.status == 200, bulk.text
    assert bulk.json()["dryRun"] is True and bulk.json()["matchedCount"] == 0
    refused = await gateway.post(
        "/v1/tenants/restaurant-demo/dead-letters:bulkRedrive", json_body={"reason": "x"}
    )
    assert refused.status == 401
    unknown_field = await gateway.post(cancel, json_body={"bogus": True})
    assert unknown_field.status == 400 and unknown_field.json()["reason"] == "FIELD_INVALID"


async def test_v1_batch_submit_answers_each_submission(gateway: Gateway) -> None:
    route = "/v1/tenants/restaurant-demo/executions:batchSubmit"
    first = submit_body(key="batch-1")
    reply = await gateway.post(
        route,
        json_body={"requests": [first, submit_body(key="batch-2"), {"pipelineId": PIPELINE_ID}]},
    )
    assert reply.status == 200, reply.text
    results = reply.json()["results"]
    # Both members are written, the one not set as null (as every absent message field).
    assert [[k for k, v in r.items() if v is not None] for r in results] == [
        ["accepted"],
        ["accepted"],
        ["error"],
    ]
    accepted = results[0]["accepted"]
    assert accepted["duplicate"] is False
    assert await status_of(gateway, accepted["executionId"]) is not None
    refused = results[2]["error"]
    assert (refused["code"], refused["reason"]) == (3, "FIELD_REQUIRED")
    again = await gateway.post(route, json_body={"requests": [first]})
    assert again.json()["results"][0]["accepted"]["executionId"] == accepted["executionId"]
    assert again.json()["results"][0]["accepted"]["duplicate"] is True
    empty = await gateway.post(route, json_body={"requests": []})
    assert empty.status == 400 and empty.json()["reason"] == "FIELD_REQUIRED"


async def test_v1_cancel_refuses_a_stale_version_and_a_long_reason(gateway: Gateway) -> None:
    execution_id = await submit(gateway)
    cancel = f"/v1/tenants/restaurant-demo/executions/{execution_id}:cancel"
    stale = await gateway.post(cancel, json_body={"expectedVersion": 7})
    assert stale.status == 409, stale.text
    assert stale.json()["reason"] == "VERSION_CONFLICT"
    long = await gateway.post(cancel, json_body={"reason": "x" * 257})
    assert long.status == 400 and long.json()["reason"] == "FIELD_OUT_OF_RANGE"
    done = await gateway.post(cancel, json_body={"expectedVersion": 0})
    assert done.status == 200, done.text
    assert done.json()["execution"]["status"] == "CANCELLED"


async def test_the_callers_token_is_what_the_services_authorize(
    suite: Suite, tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    """The gateway forwards the REST caller's token: a control-plane token whose grant covers
    only tenant-a reads tenant-a but is refused restaurant-demo by the services themselves."""
    scoped = {"Authorization": f"Bearer {CONTROL_PLANE_A}"}
    async with running_gateway(
        suite, tmp_path, pytestconfig.rootpath, TPF_CONTROL_PLANE_TOKEN=CONTROL_PLANE_A
    ) as gateway:
        own = await gateway.get(
            "/tpf/control-plane/tenants/tenant-a/interactions/pending", headers=scoped
        )
        assert (own.status, own.json()) == (200, [])
        other = await gateway.get(f"{CP_BASE}/interactions/pending", headers=scoped)
        assert other.status == 403, other.text
        assert other.headers.get("X-TPF-Error-Reason") == "TENANT_NOT_IN_SCOPE"
    async with running_gateway(
        suite,
        tmp_path,
        pytestconfig.rootpath,
        TPF_CONTROL_PLANE_TOKEN=CONTROL_PLANE_A,
        TPF_GATEWAY_FORWARD_CALLER_TOKEN="false",
    ) as gateway:
        # Not forwarded: the gateway's service token (admin, every tenant) is what runs.
        ran = await gateway.get(f"{CP_BASE}/interactions/pending", headers=scoped)
        assert ran.status == 200, ran.text
