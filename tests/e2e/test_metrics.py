"""Every service's /metrics after a small workload of the restaurant example, read with
prometheus_client's parser: the counters equal what ran (the coordinator's against the
executions' own history, the dispatcher's against the coordinator's), the gauges show the
backlog left behind, and no label carries an execution id.

Registry, coordinator, a dispatcher hosting the example, the gateway and the SQS bridge run as
processes, each with its own TPF_METRICS_PORT. The workload: over REST, one order approved, one
declined, one answered with a broken decision (FAILED, a dead letter); over SQS, one order left
waiting for its decision and one message that is not JSON (the bridge's poison).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_gateway_routes import CP_BASE, Gateway, running_gateway
from tests.e2e.test_sqs_bridge import Queues, queues, send, sqs, take
from tests.harness.moto import MotoServer
from tests.harness.ports import free_port
from tests.harness.services import StartService
from tests.harness.wait import wait_until
from tests.support.coordinator_client import coordinator_client
from tests.support.example_suite import (
    EXAMPLE_SPEC,
    TENANT,
    ControlPlane,
    dispatcher_env,
    history,
    release_pipeline,
    request_json,
)
from tests.support.metrics import (
    Scrape,
    alert_expressions,
    dashboard_expressions,
    exposed_names,
    metric_names_in,
    scrape,
)
from tests.support.registry_client import ADMIN, auth_env
from tpf.coordinator.v1 import execution_pb2
from tpf_envelope import encode, to_json_dict

pytestmark = pytest.mark.e2e
__all__ = ["queues", "sqs"]  # fixtures, used by name

SERVICES = ("registry", "coordinator", "dispatcher", "gateway", "sqs_bridge")
# Gauges refresh this often here (15 s by default), so the test sees them move in time.
_REFRESH_S = "0.2"


@dataclass
class MeteredSuite:
    plane: ControlPlane
    gateway: Gateway
    pipeline_id: str
    ports: dict[str, int]

    async def scrape(self, service: str) -> Scrape:
        return await scrape(self.ports[service])


def _metrics_env(port: int) -> dict[str, str]:
    return {
        "TPF_METRICS_PORT": str(port),
        "TPF_METRICS_HOST": "127.0.0.1",
        "TPF_METRICS_REFRESH_S": _REFRESH_S,
    }


@pytest.fixture
async def metered(
    database: str,
    start_service: StartService,
    moto_server: MotoServer,
    queues: Queues,
    tmp_path: Path,
    pytestconfig: pytest.Config,
) -> AsyncIterator[MeteredSuite]:
    ports = {service: free_port() for service in SERVICES}
    registry = start_service(
        "tpf_registry",
        {
            "TPF_DATABASE_URL": database,
            "TPF_DATA_DIR": str(tmp_path / "registry-data"),
            "TPF_REGISTRY_ARTIFACT_ROOTS": str(tmp_path),
            **auth_env(),
            **_metrics_env(ports["registry"]),
        },
    )
    coordinator = start_service(
        "tpf_coordinator",
        {
            "TPF_DATABASE_URL": database,
            "TPF_DATA_DIR": str(tmp_path / "coordinator-data"),
            "TPF_REGISTRY_TARGET": registry.target,
            "TPF_REGISTRY_TOKEN": ADMIN,
            "TPF_REGISTRY_CACHE_S": "0",
            **auth_env(),
            **_metrics_env(ports["coordinator"]),
        },
    )
    plane = ControlPlane(registry, coordinator, TENANT, tmp_path)
    identity = await release_pipeline(plane, EXAMPLE_SPEC)
    start_service(
        "tpf_dispatcher",
        dispatcher_env(
            plane,
            dispatcher_id="metered",
            pipeline_ids=[identity.pipeline_id],
            hosted=[EXAMPLE_SPEC],
            **_metrics_env(ports["dispatcher"]),
        ),
    )
    start_service(
        "tpf_sqs_bridge",
        {
            **moto_server.client_env,
            "TPF_COORDINATOR_TARGET": coordinator.target,
            "TPF_COORDINATOR_TOKEN": ADMIN,
            "TPF_SQS_SUBMIT_QUEUE_URL": queues.submit,
            "TPF_SQS_RESPONSE_QUEUE_URL": queues.responses,
            "TPF_SQS_DEAD_LETTER_QUEUE_URL": queues.dead_letters,
            "TPF_SQS_WAIT_TIME_S": "1",
            **_metrics_env(ports["sqs_bridge"]),
        },
    )
    async with running_gateway(
        plane, tmp_path, pytestconfig.rootpath, **_metrics_env(ports["gateway"])
    ) as gateway:
        yield MeteredSuite(plane, gateway, identity.pipeline_id, ports)


def _decision(order_id: str) -> dict[str, Any]:
    decided_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {"accepted": {"orderId": order_id, "decidedAt": decided_at, "note": "ok"}}


def _declined() -> dict[str, Any]:
    decided_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {
        "declined": {
            "orderId": str(uuid.uuid4()),
            "decidedAt": decided_at,
            "note": "Need more prep time",
            "declineReason": "Kitchen is overloaded tonight",
        }
    }


async def _submit_rest(gateway: Gateway) -> str:
    body = request_json("submit")
    body["idempotencyKey"] = f"order-{uuid.uuid4()}"
    accepted = await gateway.post(f"{CP_BASE}/executions", json_body=body)
    assert accepted.status == 200, accepted.text
    execution_id: str = accepted.json()["executionId"]
    return execution_id


async def _pending(gateway: Gateway, execution_id: str) -> dict[str, Any]:
    async def listed() -> dict[str, Any] | None:
        pending: list[dict[str, Any]] = (
            await gateway.get(f"{CP_BASE}/interactions/pending")
        ).json()
        return next((p for p in pending if p["executionId"] == execution_id), None)

    found: dict[str, Any] | None = await wait_until(
        listed, timeout_s=30, what=f"{execution_id} waits"
    )
    assert found is not None
    return found


async def _decide(gateway: Gateway, execution_id: str, decision: dict[str, Any]) -> None:
    interaction = await _pending(gateway, execution_id)
    done = await gateway.post(
        f"{CP_BASE}/interactions/complete",
        json_body={
            "interactionId": interaction["interactionId"],
            "responsePayload": dict(to_json_dict(encode(decision))),
            "idempotencyKey": f"decision-{execution_id}",
            "actor": "restaurant",
        },
    )
    assert done.status == 200, done.text


async def _status_when(gateway: Gateway, execution_id: str, wanted: str) -> None:
    async def reached() -> bool:
        answer = (await gateway.get(f"{CP_BASE}/executions/{execution_id}")).json()
        return bool(answer["status"] == wanted)

    await wait_until(reached, timeout_s=30, what=f"{execution_id} {wanted}")


async def _history_events(suite: MeteredSuite, execution_ids: list[str]) -> Counter[str]:
    """Every history row of the executions, counted by event name (`STEP_COMPLETED`, ...)."""
    events: Counter[str] = Counter()
    async with coordinator_client(suite.plane.coordinator.target) as client:
        for execution_id in execution_ids:
            for entry in await history(client, TENANT, execution_id):
                name = execution_pb2.HistoryEvent.Name(entry.event)
                events[name.removeprefix("HISTORY_EVENT_")] += 1
    return events


async def _run_workload(suite: MeteredSuite, sqs: Any, queues: Queues) -> dict[str, list[str]]:
    gateway = suite.gateway
    approved, declined, broken = [await _submit_rest(gateway) for _ in range(3)]
    await _decide(gateway, approved, _decision(str(uuid.uuid4())))
    await _decide(gateway, declined, _declined())
    await _decide(gateway, broken, _decision("not-a-uuid"))
    body = {**request_json("submit"), "tenantId": TENANT, "idempotencyKey": f"sqs-{uuid.uuid4()}"}
    await send(sqs, queues.submit, body)
    await send(sqs, queues.submit, "this is not JSON")
    # The bridge replies to both on its response queue: `submitted` with the execution id, and
    # `rejected` for the poison.
    replies = await take(sqs, queues.responses, 2)
    assert sorted(r["type"] for r in replies) == ["rejected", "submitted"]
    waiting = next(r["executionId"] for r in replies if r["type"] == "submitted")
    await _pending(gateway, waiting)
    for execution_id in (approved, declined):
        await _status_when(gateway, execution_id, "SUCCEEDED")
    await _status_when(gateway, broken, "FAILED")
    return {
        "succeeded": [approved, declined],
        "failed": [broken],
        "waiting": [waiting],
    }


async def test_every_service_counts_what_ran(
    metered: MeteredSuite, sqs: Any, queues: Queues
) -> None:
    ran = await _run_workload(metered, sqs, queues)
    execution_ids = [e for ids in ran.values() for e in ids]
    events = await _history_events(metered, execution_ids)
    reported = sum(
        events[e] for e in ("STEP_COMPLETED", "AWAIT_REQUESTED", "RETRY_SCHEDULED", "FAILED")
    )
    # SUCCEEDED rows: by a worker's last step, or by a claim after a final await (none here).
    reported += events["SUCCEEDED"]

    # The coordinator: every transition it counted is a history row, and the other way round.
    async def coordinator_settled() -> Scrape | None:
        scraped = await metered.scrape("coordinator")
        counted = {
            event: int(scraped.value("tpf_execution_transitions_total", event=event))
            for event in events
        }
        return scraped if counted == dict(events) else None

    coordinator = await _settled(coordinator_settled, "coordinator counters equal the history")
    assert coordinator.value("tpf_executions_submitted_total") == 4
    assert coordinator.value("tpf_executions_finished_total", status="SUCCEEDED") == 2
    assert coordinator.value("tpf_executions_finished_total", status="FAILED") == 1
    assert coordinator.value("tpf_executions_finished_total", status="CANCELLED") == 0
    assert coordinator.value("tpf_dead_letters_total") == 1
    assert coordinator.value("tpf_dead_letters_total", reason="non_retryable") == 1
    assert coordinator.value("tpf_step_attempts_total") == reported
    assert coordinator.value("tpf_step_attempts_total", outcome="awaiting") == 4
    assert coordinator.value("tpf_step_attempts_total", outcome="failed") == 1
    assert coordinator.value("tpf_claim_batch_size_sum") == events["CLAIMED"]
    assert coordinator.value("tpf_lease_expiries_total") == 0
    assert coordinator.value("tpf_fencing_rejections_total") == 0
    # Three submissions through the gateway, one through the bridge; one SubmitExecution each.
    assert (
        coordinator.value(
            "tpf_grpc_server_requests_total", grpc_method="SubmitExecution", grpc_code="OK"
        )
        == 4
    )
    assert coordinator.value("tpf_grpc_server_duration_seconds_count", grpc_method="ClaimWork") > 0
    assert coordinator.value("tpf_db_pool_max_connections", pool="tpf-coordinator") == 10

    # Its gauges, refreshed by the periodic query: one execution waits for its decision, the
    # broken one left an open dead letter, nothing is runnable.
    async def gauges_settled() -> Scrape | None:
        scraped = await metered.scrape("coordinator")
        expected = {
            "tpf_waiting_interactions": 1,
            "tpf_open_dead_letters": 1,
            "tpf_runnable_executions": 0,
            "tpf_oldest_runnable_age_seconds": 0,
        }
        actual = {name: scraped.value(name) for name in expected}
        waiting = scraped.value("tpf_executions", status="WAITING_EXTERNAL")
        return scraped if actual == expected and waiting == 1 else None

    await _settled(gauges_settled, "coordinator gauges refreshed")

    # The dispatcher reported exactly the attempts the coordinator accepted, and holds nothing.
    async def dispatcher_settled() -> Scrape | None:
        scraped = await metered.scrape("dispatcher")
        done = scraped.value("tpf_dispatcher_work_items_total", event="completed") + scraped.value(
            "tpf_dispatcher_work_items_total", event="failed"
        )
        return scraped if done == reported else None

    dispatcher = await _settled(dispatcher_settled, "dispatcher counters")
    assert dispatcher.value("tpf_step_duration_seconds_count", transport="local") == reported
    assert dispatcher.value("tpf_step_duration_seconds_count") == reported
    assert dispatcher.value("tpf_dispatcher_work_items_total", event="failed") == 1
    assert dispatcher.value("tpf_dispatcher_work_items_total", event="rejected") == 0
    assert dispatcher.value("tpf_dispatcher_transport_errors_total") == 0
    assert dispatcher.value("tpf_dispatcher_in_flight") == 0
    assert dispatcher.value("tpf_dispatcher_max_in_flight") > 0

    # The registry: the example's release is active with the dispatcher's HEALTHY local worker.
    async def registry_settled() -> Scrape | None:
        scraped = await metered.scrape("registry")
        healthy = scraped.value("tpf_workers", pipeline=metered.pipeline_id, state="HEALTHY")
        return scraped if healthy >= 1 else None

    registry = await _settled(registry_settled, "registry gauges")
    assert registry.value("tpf_active_release", tenant=TENANT, pipeline=metered.pipeline_id) == 1
    assert registry.value("tpf_workers", state="UNAVAILABLE") == 0
    assert registry.value("tpf_grpc_server_requests_total", grpc_method="ActivateRelease") == 1
    assert registry.value("tpf_db_pool_connections", pool="tpf-registry") >= 1

    # The gateway: three submissions and three decisions, by route template.
    gateway = await metered.scrape("gateway")
    routes = gateway.label_values("tpf_http_requests_total", "route")
    submit_route = next(r for r in routes if r.endswith("/executions") and r.startswith("/tpf/"))
    assert "{" in submit_route  # a template, not a path with the tenant in it
    assert gateway.value("tpf_http_requests_total", route=submit_route, method="POST") == 3
    assert (
        gateway.value("tpf_http_requests_total", route=submit_route, method="POST", code="200") == 3
    )
    complete_route = next(r for r in routes if r.endswith("/interactions/complete"))
    assert gateway.value("tpf_http_requests_total", route=complete_route, code="200") == 3

    # The bridge: one submit handled, one poison message dead-lettered.
    async def bridge_settled() -> Scrape | None:
        scraped = await metered.scrape("sqs_bridge")
        handled = scraped.value("tpf_sqs_messages_total", operation="submit", outcome="handled")
        return scraped if handled == 1 else None

    bridge = await _settled(bridge_settled, "bridge counters")
    poison = await _settled(lambda: _poison(metered), "the poison message counted")
    assert poison.value("tpf_sqs_poison_messages_total", cause="permanent") == 1
    assert bridge.value("tpf_sqs_messages_total", outcome="retried") == 0

    # Bounded labels: no execution id anywhere, every own metric named tpf_*. And what the
    # deploy component's alerts and dashboard read is among what the services really serve.
    served: set[str] = set()
    for service in SERVICES:
        scraped = await metered.scrape(service)
        served |= exposed_names(scraped.families)
        for sample in scraped.samples:
            assert sample.name.startswith(("tpf_", "process_", "python_")), sample
            for value in sample.labels.values():
                assert value not in execution_ids, (service, sample)
    read = metric_names_in([*alert_expressions().values(), *dashboard_expressions()])
    assert read and read <= served, sorted(read - served)


async def _settled(probe: Callable[[], Awaitable[Scrape | None]], what: str) -> Scrape:
    """The first scrape `probe` accepts (counters move just after the answer a test sees)."""
    scraped = await wait_until(probe, timeout_s=15, what=what)
    assert scraped is not None
    return scraped


async def _poison(suite: MeteredSuite) -> Scrape | None:
    scraped = await suite.scrape("sqs_bridge")
    dead = scraped.value("tpf_sqs_messages_total", operation="submit", outcome="dead_lettered")
    return scraped if dead == 1 else None


async def test_metrics_are_off_unless_a_port_is_set(
    database: str, start_service: StartService, tmp_path: Path
) -> None:
    """Without TPF_METRICS_PORT no port is opened; with a taken port the service refuses to
    start and names the variable."""
    blocker_port = free_port()
    env = {"TPF_DATABASE_URL": database, "TPF_DATA_DIR": str(tmp_path / "r"), **auth_env()}
    first = start_service("tpf_registry", {**env, **_metrics_env(blocker_port)})
    assert (await scrape(blocker_port)).value("tpf_grpc_server_requests_total") >= 0
    second = start_service("tpf_registry", env)  # no metrics port: starts, serves gRPC only
    assert second.is_running
    with pytest.raises(Exception) as refused:
        start_service("tpf_registry", {**env, **_metrics_env(blocker_port)})
    assert "TPF_METRICS_PORT" in str(refused.value) or "TPF_METRICS_PORT" in _last_log(tmp_path)
    assert first.is_running


def _last_log(tmp_path: Path) -> str:
    logs = sorted(tmp_path.glob("tpf_registry-*.log"))
    return logs[-1].read_text() if logs else ""
