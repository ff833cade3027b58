"""TPF's own self-host flow, over HTTP only, on a release the user registers the TPF way.

TPF's scripts write a release descriptor for the jar (`create-release`: the release version is
the contract version, artifact id `restaurant-approval-monolith`, kind `jar`, TPF's artifact
capabilities, the jar's plain absolute path), register and activate it over `/tpf/admin/...`
(raw `sha256:` version in the path, activation POST without a body), register the worker
`restaurant-local-worker` (protocol `local`, endpoint `in-process`), then drive the
control-plane API. The jar is the one `make dev` builds; the dispatcher hosting the example
pipeline serves that release although its release-version label is not the build's.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_gateway_routes import ADM, Gateway, running_gateway
from tests.harness.services import StartService
from tests.harness.wait import wait_until
from tests.support.example_suite import (
    EXAMPLE_SPEC,
    ControlPlane,
    WorkerLauncher,
    dispatcher_env,
    request_json,
    standalone_workers,
)
from tests.support.registry_client import ADMIN, auth_env
from tpf_envelope import encode, to_json_dict
from tpf_worker.release import build_release, load_pipeline

pytestmark = pytest.mark.e2e
__all__ = ["standalone_workers"]  # a fixture, used by name

PIPELINE_ID = "org.pipelineframework.restaurantapproval"
TPF_ARTIFACT_ID = "restaurant-approval-monolith"
# Short, so the test can outlive it: records nobody heartbeats go STALE after this.
STALE_AFTER_S = 3.0
DISPATCHER_BEAT_S = 0.5


@dataclass(frozen=True)
class TpfJar:
    """The example's jar as `make dev` builds it, and its embedded contract."""

    path: Path
    contract: dict[str, Any]


@dataclass
class SelfHost:
    plane: ControlPlane
    gateway: Gateway
    jar: TpfJar
    start_dispatcher: Callable[[], None]


def create_release_descriptor(jar: TpfJar, directory: Path) -> Path:
    """`pipeline-release.json` exactly as TPF's `create-release` writes it for a jar."""
    digest = "sha256:" + hashlib.sha256(jar.path.read_bytes()).hexdigest()
    contract_version = jar.contract["contractVersion"]
    descriptor = {
        "schemaVersion": 1,
        "pipelineId": jar.contract["pipelineId"],
        "contractVersion": contract_version,
        "releaseVersion": contract_version,
        "artifacts": [
            {
                "artifactId": TPF_ARTIFACT_ID,
                "kind": "jar",
                "uri": str(jar.path),
                "digest": digest,
                "stepIds": [step["authoredName"] for step in jar.contract["steps"]],
                "capabilities": ["local-transition-execution", "rest-transition-worker"],
            }
        ],
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "pipeline-release.json"
    path.write_text(json.dumps(descriptor, indent=2) + "\n", encoding="utf-8")
    return path


def fresh_tenant() -> str:
    return f"tpf-selfhost-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def self_host(
    request: pytest.FixtureRequest,
    database: str,
    start_service: StartService,
    tmp_path: Path,
    pytestconfig: pytest.Config,
) -> AsyncIterator[SelfHost]:
    # TPF's stale threshold (2 min) unless the test asks for a short one.
    marker = request.node.get_closest_marker("stale_after_s")
    stale_after_s = marker.args[0] if marker else 120.0
    built = build_release(load_pipeline(EXAMPLE_SPEC), tmp_path / "build")
    jar = TpfJar(built.jar_path, built.contract)
    registry = start_service(
        "tpf_registry",
        {
            "TPF_DATABASE_URL": database,
            "TPF_DATA_DIR": str(tmp_path / "registry-data"),
            # TPF's scripts write descriptors wherever they like; here, under tmp_path.
            "TPF_REGISTRY_ARTIFACT_ROOTS": str(tmp_path),
            "TPF_WORKER_STALE_AFTER_S": str(stale_after_s),
            **auth_env(),
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
            "TPF_SWEEP_INTERVAL_MS": "100",
            **auth_env(),
        },
    )
    plane = ControlPlane(registry, coordinator, "unused", tmp_path)

    def start_dispatcher() -> None:
        # Every tenant: no TPF_LOCAL_WORKER_TENANTS, no tenant filter; it registers nothing.
        start_service(
            "tpf_dispatcher",
            dispatcher_env(
                plane,
                dispatcher_id="self-host",
                pipeline_ids=[PIPELINE_ID],
                hosted=[EXAMPLE_SPEC],
                TPF_LOCAL_WORKER_TENANTS="",
                TPF_LOCAL_WORKER_HEARTBEAT_S=str(DISPATCHER_BEAT_S),
            ),
        )

    async with running_gateway(plane, tmp_path, pytestconfig.rootpath) as gateway:
        yield SelfHost(plane, gateway, jar, start_dispatcher)


# ---------------------------------------------------------------------------------------------
# TPF's scripts, over HTTP


async def register_and_activate(gateway: Gateway, tenant: str, descriptor: Path) -> Any:
    """`register-and-activate-release.sh`: register, then activate by the raw version."""
    pipe = f"/tpf/admin/tenants/{tenant}/pipelines/{PIPELINE_ID}"
    registered = await gateway.post(
        f"{pipe}/releases/register",
        headers=ADM,
        json_body={"releaseDescriptorPath": str(descriptor)},
    )
    assert registered.status == 200, registered.text
    record = registered.json()
    assert record["releaseVersion"] == record["contractVersion"]
    assert record["primaryArtifactId"] == TPF_ARTIFACT_ID
    activated = await gateway.post(
        f"{pipe}/releases/{record['releaseVersion']}/activate", headers=ADM
    )
    assert activated.status == 200, activated.text
    assert activated.json()["status"] == "ACTIVE"
    return record


async def register_worker(
    gateway: Gateway,
    tenant: str,
    release: Any,
    *,
    worker_id: str = "restaurant-local-worker",
    protocol: str = "local",
    endpoint: str = "in-process",
) -> Any:
    reply = await gateway.post(
        f"/tpf/admin/tenants/{tenant}/pipelines/{PIPELINE_ID}/workers/register",
        headers=ADM,
        json_body={
            "workerId": worker_id,
            "contractVersion": release["contractVersion"],
            "releaseVersion": release["releaseVersion"],
            "protocol": protocol,
            "endpoint": endpoint,
            "artifactId": release["primaryArtifactId"],
            "artifactDigest": release["primaryArtifactDigest"],
        },
    )
    assert reply.status == 200, reply.text
    assert reply.json()["state"] == "HEALTHY"
    return reply.json()


def _plain_envelope(value: Any) -> dict[str, Any]:
    return dict(to_json_dict(encode(value)))


def _decided_at() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class Flow:
    """The demo client's calls for one tenant."""

    def __init__(self, gateway: Gateway, tenant: str) -> None:
        self.gateway = gateway
        self.tenant = tenant
        self.base = f"/tpf/control-plane/tenants/{tenant}"

    async def submit_reply(self) -> Any:
        body = request_json("submit")
        body["idempotencyKey"] = f"order-{uuid.uuid4()}"
        return await self.gateway.post(f"{self.base}/executions", json_body=body)

    async def submit(self) -> str:
        reply = await self.submit_reply()
        assert reply.status == 200, reply.text
        execution_id: str = reply.json()["executionId"]
        return execution_id

    async def status(self, execution_id: str) -> Any:
        return (await self.gateway.get(f"{self.base}/executions/{execution_id}")).json()

    async def status_when(self, execution_id: str, wanted: str, *, above_version: int = -1) -> Any:
        async def reached() -> Any:
            status = await self.status(execution_id)
            done = status["status"] == wanted and status["version"] > above_version
            return status if done else None

        return await wait_until(reached, timeout_s=30, what=f"{execution_id} {wanted}")

    async def decide(self, execution_id: str, decision: dict[str, Any]) -> None:
        async def listed() -> Any:
            pending = (await self.gateway.get(f"{self.base}/interactions/pending")).json()
            return next((p for p in pending if p["executionId"] == execution_id), None)

        interaction = await wait_until(listed, timeout_s=30, what=f"{execution_id} pending")
        done = await self.gateway.post(
            f"{self.base}/interactions/complete",
            json_body={
                "interactionId": interaction["interactionId"],
                "responsePayload": _plain_envelope(decision),
            },
        )
        assert done.status == 200, done.text

    async def outcome(self, execution_id: str) -> Any:
        await self.status_when(execution_id, "SUCCEEDED")
        answer = (await self.gateway.get(f"{self.base}/executions/{execution_id}/result")).json()
        return json.loads(answer["resultPayload"]["payload"])

    async def approve(self) -> Any:
        execution_id = await self.submit()
        order_id = str(uuid.uuid4())
        accepted = {"orderId": order_id, "decidedAt": _decided_at(), "note": "See you"}
        await self.decide(execution_id, {"accepted": accepted})
        return await self.outcome(execution_id)

    async def decline(self) -> Any:
        execution_id = await self.submit()
        declined = {
            "orderId": str(uuid.uuid4()),
            "decidedAt": _decided_at(),
            "note": "Need more prep time",
            "declineReason": "Kitchen is overloaded tonight",
        }
        await self.decide(execution_id, {"declined": declined})
        return await self.outcome(execution_id)


# ---------------------------------------------------------------------------------------------


@pytest.mark.stale_after_s(STALE_AFTER_S)
async def test_tpf_self_host_flow_runs_on_a_release_registered_the_tpf_way(
    self_host: SelfHost, tmp_path: Path
) -> None:
    gateway, tenant = self_host.gateway, fresh_tenant()
    descriptor = create_release_descriptor(self_host.jar, tmp_path / "tpf-release")
    release = await register_and_activate(gateway, tenant, descriptor)
    worker = await register_worker(gateway, tenant, release)
    flow = Flow(gateway, tenant)

    # No dispatcher runs yet: refused at once with TPF's 503, nothing is admitted.
    refused = await flow.submit_reply()
    assert refused.status == 503
    assert refused.text.startswith(
        "No worker available for active release: No running dispatcher serves local worker "
        "restaurant-local-worker"
    )
    assert refused.headers["X-TPF-Error-Reason"] == "NO_WORKER_AVAILABLE"

    self_host.start_dispatcher()
    approved = await flow.approve()
    assert (approved["outcome"], approved["restaurantStatus"]) == ("APPROVED", "ACCEPTED")
    declined = await flow.decline()
    assert declined["outcome"] == "DECLINED"
    assert declined["summary"] == "Need more prep time (Kitchen is overloaded tonight)"

    # The incident: FAILED with TPF's error fields and the DLQ log line; TPF's redrive replays
    # the same decision, so it fails again at a higher version.
    incident = await flow.submit()
    bad = {"orderId": "not-a-uuid", "decidedAt": _decided_at(), "note": "incident demo"}
    await flow.decide(incident, {"accepted": bad})
    failed = await flow.status_when(incident, "FAILED")
    assert failed["errorCode"] and failed["errorMessage"]
    assert "Failed converting await payload" in failed["errorMessage"]

    def dlq_logged() -> bool:
        log = self_host.plane.coordinator.log_path.read_text(encoding="utf-8")
        return f"Execution moved to DLQ: tenant={tenant} execution={incident}" in log

    await wait_until(dlq_logged, timeout_s=10, what="the DLQ log line")
    redrive = await gateway.post(
        f"/tpf/admin/tenants/{tenant}/executions/{incident}/redrive",
        headers=ADM,
        json_body={
            "allowFailed": True,
            "expectedVersion": failed["version"],
            "reason": "self-host incident demo re-drive",
        },
    )
    assert redrive.status == 200, redrive.text
    again = await flow.status_when(incident, "FAILED", above_version=failed["version"])
    assert again["errorCode"] == failed["errorCode"]

    # Past the stale threshold the record is still HEALTHY: the dispatcher heartbeats it.
    registered_at = worker["registeredAtEpochMs"]

    async def outlived_stale_threshold() -> Any:
        listed = await gateway.get(
            f"/tpf/admin/tenants/{tenant}/pipelines/{PIPELINE_ID}/workers", headers=ADM
        )
        record = listed.json()[0]
        now_ms = time.time() * 1000
        past = now_ms > registered_at + STALE_AFTER_S * 1000 + 500
        return record if past else None

    record = await wait_until(
        outlived_stale_threshold, timeout_s=STALE_AFTER_S + 10, what="the stale threshold"
    )
    assert record["state"] == "HEALTHY"
    assert record["lastHeartbeatAtEpochMs"] > registered_at + STALE_AFTER_S * 1000

    # TPF's demo re-registers its identical descriptor on every run: 200, the same record.
    again_registered = await register_and_activate(gateway, tenant, descriptor)
    assert again_registered["releaseVersion"] == release["releaseVersion"]
    assert again_registered["primaryArtifactDigest"] == release["primaryArtifactDigest"]
    assert again_registered["createdAtEpochMs"] == release["createdAtEpochMs"]
    assert (await flow.approve())["outcome"] == "APPROVED"


async def test_records_registered_after_the_dispatcher_started_are_served_at_once(
    self_host: SelfHost, tmp_path: Path
) -> None:
    self_host.start_dispatcher()
    gateway, tenant = self_host.gateway, fresh_tenant()
    descriptor = create_release_descriptor(self_host.jar, tmp_path / "tpf-release")
    release = await register_and_activate(gateway, tenant, descriptor)
    await register_worker(gateway, tenant, release)
    # Submitted right after the registration: no restart, no wait for the next beat.
    assert (await Flow(gateway, tenant).approve())["outcome"] == "APPROVED"


async def test_a_release_of_another_build_is_not_served(
    self_host: SelfHost, tmp_path: Path
) -> None:
    """Same contract, another jar (digest): the hosted build is not that code, so the record is
    not served and the submission is refused."""
    self_host.start_dispatcher()
    gateway, tenant = self_host.gateway, fresh_tenant()
    other_jar = tmp_path / "other" / "restaurant-approval-monolith.jar"
    other_jar.parent.mkdir()
    other_jar.write_bytes(self_host.jar.path.read_bytes() + b"\0")  # still a readable zip
    descriptor = create_release_descriptor(
        TpfJar(other_jar, self_host.jar.contract), tmp_path / "other-release"
    )
    release = await register_and_activate(gateway, tenant, descriptor)
    await register_worker(gateway, tenant, release)
    refused = await Flow(gateway, tenant).submit_reply()
    assert refused.status == 503, refused.text
    assert "No running dispatcher serves local worker restaurant-local-worker" in refused.text


async def test_tpf_container_variant_with_a_rest_worker(
    self_host: SelfHost, standalone_workers: WorkerLauncher, tmp_path: Path
) -> None:
    """TPF's container variant: the same flow, registering a `rest` worker at the endpoint of
    our example worker (built from the same code, it serves every release of its contract)."""
    self_host.start_dispatcher()
    rest = standalone_workers.start("rest", worker_id="restaurant-rest-worker")
    gateway, tenant = self_host.gateway, fresh_tenant()
    descriptor = create_release_descriptor(self_host.jar, tmp_path / "tpf-release")
    release = await register_and_activate(gateway, tenant, descriptor)
    await register_worker(
        gateway,
        tenant,
        release,
        worker_id="restaurant-rest-worker",
        protocol="rest",
        endpoint=rest.endpoint,
    )
    flow = Flow(gateway, tenant)
    approved, declined = await flow.approve(), await flow.decline()
    # The tenant has no `local` record: the REST worker ran every step.
    assert (approved["outcome"], declined["outcome"]) == ("APPROVED", "DECLINED")
