"""Release drift with every part a real process: registry, coordinator, a dispatcher running the
approval pipeline in-process, the REST gateway and the `tpf` CLI.

Release v1 of the approval pipeline parks executions at its await; v2 (another contract) is
activated meanwhile. Drift shows v1's executions still pinned, which worker serves which release,
and whether v1 can be retired: yes while a healthy worker serves it, no once its last worker is
drained, yes again when a worker serves it and when its executions have finished.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.e2e.conftest import Suite
from tests.e2e.test_cli_registry import table_rows
from tests.e2e.test_dispatcher_local import (
    dispatcher_env,
    register_local_release,
    submit,
    wait_for_status,
)
from tests.e2e.test_gateway_routes import CP, Gateway, running_gateway
from tests.harness.services import minimal_environment
from tests.harness.wait import wait_until
from tests.support import pipelines
from tests.support.coordinator_client import CoordinatorClient, coordinator_client
from tests.support.grpc_errors import expect_error
from tests.support.registry_client import ADMIN, CONTROL_PLANE_A, WORKER_A, registry_client
from tests.support.restaurant import envelope
from tpf.common.v1 import execution_status_pb2 as st
from tpf.coordinator.v1 import interaction_service_pb2 as ipb
from tpf.coordinator.v1 import interaction_service_pb2_grpc, release_drift_service_pb2_grpc
from tpf.coordinator.v1 import release_drift_service_pb2 as pb
from tpf.registry.v1 import release_service_pb2 as rpb
from tpf.registry.v1 import worker_pb2
from tpf.registry.v1 import worker_service_pb2 as wspb
from tpf_cli.output import short_version
from tpf_rpc.channel import client_channel
from tpf_worker import Pipeline, StepContext, WorkerIdentity
from tpf_worker.release import BuiltRelease, build_release, identity_of

pytestmark = pytest.mark.e2e

PIPELINE = pipelines.APPROVAL.pipeline_id
# The local worker `register_local_release` registers for v1.
V1_WORKER = f"{identity_of(pipelines.APPROVAL).artifact_id}-local"
V2_WORKER = "approval-v2-grpc"
V = pb.RetirementVerdict

# Release v2 of the approval pipeline: another contract (one step, no await), so the dispatcher
# that hosts v1's build does not serve it.
APPROVAL_V2 = Pipeline(PIPELINE)


@APPROVAL_V2.step(
    "Check Request Again",
    service="CheckRequestAgainService",
    input_type=pipelines.ORDER_TYPE,
    output_type=pipelines.RECEIPT_TYPE,
)
def check_request_again(value: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    return {**value, "checked": 2}


async def drift_of(
    suite: Suite, *, release_version: str = "", token: str = ADMIN
) -> pb.GetReleaseDriftResponse:
    async with client_channel(suite.coordinator.target, token=token) as channel:
        stub = release_drift_service_pb2_grpc.ReleaseDriftServiceStub(channel)
        return await stub.GetReleaseDrift(
            pb.GetReleaseDriftRequest(
                tenant_id=suite.tenant, pipeline_id=PIPELINE, release_version=release_version
            )
        )


def release_of(drift: pb.GetReleaseDriftResponse, version: str) -> pb.DriftRelease:
    [release] = [r for r in drift.releases if r.release_version == version]
    return release


def worker_of(drift: pb.GetReleaseDriftResponse, worker_id: str) -> pb.DriftWorker:
    [worker] = [w for w in drift.workers if w.worker.worker_id == worker_id]
    return worker


async def register_v2(suite: Suite, tmp_path: Path) -> BuiltRelease:
    """Register v2 and a gRPC worker for it (never called: no v2 execution is submitted), then
    activate it."""
    built = build_release(APPROVAL_V2, tmp_path / "v2")
    identity = built.identity
    async with registry_client(suite.registry.target) as client:
        await client.releases.RegisterRelease(
            rpb.RegisterReleaseRequest(
                tenant_id=suite.tenant,
                pipeline_id=PIPELINE,
                release_descriptor_path=str(built.descriptor_path),
            )
        )
        await client.workers.RegisterWorker(
            wspb.RegisterWorkerRequest(
                tenant_id=suite.tenant,
                pipeline_id=PIPELINE,
                worker_id=V2_WORKER,
                contract_version=identity.contract_version,
                release_version=identity.release_version,
                protocol="grpc",
                endpoint="127.0.0.1:9",
                artifact_id=identity.artifact_id,
                artifact_digest=identity.artifact_digest,
            )
        )
        await client.releases.ActivateRelease(
            rpb.ActivateReleaseRequest(
                tenant_id=suite.tenant,
                pipeline_id=PIPELINE,
                release_version=identity.release_version,
                reason="drift test: v2 replaces v1",
            )
        )
    return built


async def register_v1_worker_again(suite: Suite, identity: WorkerIdentity) -> None:
    """The operator undrains v1's local worker (a drain sticks through re-registration), and
    it registers again: HEALTHY, not draining."""
    async with registry_client(suite.registry.target) as client:
        await client.workers.UndrainWorker(
            wspb.UndrainWorkerRequest(
                tenant_id=suite.tenant, pipeline_id=PIPELINE, worker_id=V1_WORKER
            )
        )
        await client.workers.RegisterWorker(
            wspb.RegisterWorkerRequest(
                tenant_id=suite.tenant,
                pipeline_id=PIPELINE,
                worker_id=V1_WORKER,
                contract_version=identity.contract_version,
                release_version=identity.release_version,
                protocol="local",
                artifact_id=identity.artifact_id,
                artifact_digest=identity.artifact_digest,
            )
        )


async def complete_pending(
    client: CoordinatorClient, suite: Suite, execution_ids: list[str]
) -> None:
    interactions = interaction_service_pb2_grpc.InteractionServiceStub(client.channel)
    pending = await interactions.ListPendingInteractions(
        ipb.ListPendingInteractionsRequest(tenant_id=suite.tenant)
    )
    for interaction in pending.interactions:
        if interaction.execution_id in execution_ids:
            await interactions.CompleteInteraction(
                ipb.CompleteInteractionRequest(
                    tenant_id=suite.tenant,
                    interaction_id=interaction.interaction_id,
                    response_payload=envelope(pipelines.DECISION_TYPE, {"approved": True}),
                    actor="chef",
                )
            )


def tpf_cli(suite: Suite, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`tpf releases drift ...` as a user runs it, configured through the environment."""
    env = {
        **minimal_environment(),
        "TPF_COORDINATOR_TARGET": suite.coordinator.target,
        "TPF_TOKEN": ADMIN,
        "TPF_TENANT": suite.tenant,
        "TPF_PIPELINE": PIPELINE,
    }
    return subprocess.run(
        [sys.executable, "-m", "tpf_cli", "releases", "drift", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def cli(suite: Suite, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(tpf_cli, suite, cwd, *args)


async def test_drift_follows_v1_executions_through_activation_drain_and_completion(
    suite: Suite, start_service: Any, tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    v1 = identity_of(pipelines.APPROVAL)
    await register_local_release(suite, pipelines.APPROVAL, tmp_path / "v1")
    v1_version = v1.release_version
    start_service(
        "tpf_dispatcher",
        dispatcher_env(
            suite,
            TPF_LOCAL_PIPELINES="tests.support.pipelines:APPROVAL",
            TPF_PIPELINE_IDS=PIPELINE,
        ),
    )
    async with coordinator_client(suite.coordinator.target) as client:
        parked = [
            await submit(client, suite, pipelines.APPROVAL, orderId=f"drift-{n}") for n in range(2)
        ]
        for execution_id in parked:
            await wait_for_status(client, suite, execution_id, st.EXECUTION_STATUS_WAITING_EXTERNAL)
        before = await drift_of(suite)
        assert before.active_release_version == v1_version
        assert release_of(before, v1_version).retirement.verdict == V.RETIREMENT_VERDICT_ACTIVE

        v2 = await register_v2(suite, tmp_path)
        v2_version = v2.identity.release_version
        drift = await drift_of(suite)
        assert drift.active_release_version == v2_version
        assert [r.release_version for r in drift.releases] == [v2_version, v1_version]
        active, old = drift.releases
        assert (active.active, active.pinned_executions) == (True, 0)
        assert list(active.healthy_worker_ids) == [V2_WORKER]
        assert not active.retirement.safe
        assert (old.active, old.pinned_executions) == (False, 2)
        assert old.contract_version == v1.contract_version
        assert [(c.status, c.count) for c in old.pinned_by_status] == [
            (st.EXECUTION_STATUS_WAITING_EXTERNAL, 2)
        ]
        assert list(old.healthy_worker_ids) == [V1_WORKER]
        assert (old.retirement.safe, old.retirement.verdict) == (
            True,
            V.RETIREMENT_VERDICT_PINNED_AND_SERVED,
        )
        v1_worker, v2_worker = drift.workers
        assert v1_worker.worker.worker_id == V1_WORKER
        assert v1_worker.worker.state == worker_pb2.WORKER_STATE_HEALTHY
        assert (v1_worker.worker.protocol, v1_worker.worker.release_version) == (
            "local",
            v1_version,
        )
        assert not v1_worker.serves_active_release
        # The one worker v1's parked executions have: draining it would strand them.
        assert list(v1_worker.last_healthy_worker_for) == [v1_version]
        assert v2_worker.serves_active_release
        assert list(v2_worker.last_healthy_worker_for) == [v2_version]

        # The same report over REST and the CLI.
        async with running_gateway(suite, tmp_path, pytestconfig.rootpath) as gateway:
            await check_rest_route(gateway, suite, v1_version, v2_version)
        table = await cli(suite, tmp_path)
        assert table.returncode == 0, table.stderr
        [v1_row] = [row for row in table_rows(table.stdout) if row and row[0] == V1_WORKER]
        assert v1_row[:4] == [V1_WORKER, "HEALTHY", "local", short_version(v1_version)]
        assert f"retire {short_version(v1_version)}: safe: 2 non-terminal" in table.stdout
        as_json = json.loads((await cli(suite, tmp_path, "--json")).stdout)
        assert as_json["activeReleaseVersion"] == v2_version
        assert as_json["releases"][1]["pinnedExecutions"] == "2"

        # Draining v1's last worker before its executions finish: retiring v1 is unsafe.
        async with registry_client(suite.registry.target) as registry:
            await registry.workers.DrainWorker(
                wspb.DrainWorkerRequest(
                    tenant_id=suite.tenant, pipeline_id=PIPELINE, worker_id=V1_WORKER
                )
            )
        drained = await drift_of(suite, release_version=v1_version)
        old = release_of(drained, v1_version)
        assert (old.pinned_executions, list(old.healthy_worker_ids)) == (2, [])
        assert (old.retirement.safe, old.retirement.verdict) == (
            False,
            V.RETIREMENT_VERDICT_PINNED_AND_UNSERVED,
        )
        assert "no healthy worker serves it" in old.retirement.detail
        assert worker_of(drained, V1_WORKER).worker.state == worker_pb2.WORKER_STATE_DRAINING
        unsafe = await cli(suite, tmp_path, "--release", v1_version)
        assert unsafe.returncode == 1, (unsafe.stdout, unsafe.stderr)
        assert f"retire {short_version(v1_version)}: UNSAFE:" in unsafe.stdout

        # A healthy worker serves v1 again: safe, the executions can finish.
        await register_v1_worker_again(suite, v1)

        async def served() -> Any:
            release = release_of(await drift_of(suite), v1_version)
            return release if release.retirement.safe else None

        old = await wait_until(served, what="v1 served again")
        assert old.retirement.verdict == V.RETIREMENT_VERDICT_PINNED_AND_SERVED
        assert (await cli(suite, tmp_path, "--release", v1_version)).returncode == 0

        # The executions finish on v1: nothing is pinned to it any more.
        await complete_pending(client, suite, parked)
        for execution_id in parked:
            await wait_for_status(client, suite, execution_id, st.EXECUTION_STATUS_SUCCEEDED)
        finished = await drift_of(suite)
        old = release_of(finished, v1_version)
        assert (old.pinned_executions, old.retirement.safe) == (0, True)
        assert old.retirement.verdict == V.RETIREMENT_VERDICT_NOTHING_PINNED
        assert list(worker_of(finished, V1_WORKER).last_healthy_worker_for) == []
        done = await cli(suite, tmp_path, "--release", v1_version)
        assert done.returncode == 0, (done.stdout, done.stderr)
        assert f"retire {short_version(v1_version)}: safe: no non-terminal" in done.stdout


async def check_rest_route(
    gateway: Gateway, suite: Suite, v1_version: str, v2_version: str
) -> None:
    path = f"/v1/tenants/{suite.tenant}/pipelines/{PIPELINE}/releases:drift"
    reply = await gateway.get(path, headers=CP)
    assert reply.status == 200, reply.text
    body = reply.json()
    assert body["activeReleaseVersion"] == v2_version
    assert [r["releaseVersion"] for r in body["releases"]] == [v2_version, v1_version]
    old = body["releases"][1]
    assert old["pinnedExecutions"] == 2
    assert old["retirement"]["safe"] is True
    assert old["retirement"]["verdict"] == "PINNED_AND_SERVED"
    assert old["pinnedByStatus"] == [{"status": "WAITING_EXTERNAL", "count": 2}]
    workers = {w["worker"]["workerId"]: w for w in body["workers"]}
    assert workers[V1_WORKER]["servesActiveRelease"] is False
    assert workers[V1_WORKER]["worker"]["state"] == "HEALTHY"
    assert workers[V2_WORKER]["servesActiveRelease"] is True
    asked = await gateway.get(path, headers=CP, params={"releaseVersion": v1_version})
    assert asked.status == 200, asked.text
    unknown = await gateway.get(path, headers=CP, params={"releaseVersion": "no-such"})
    assert unknown.status == 404
    assert unknown.headers["Content-Type"].startswith("application/problem+json")
    assert unknown.json()["reason"] == "RELEASE_NOT_FOUND"
    refused = await gateway.get(path, headers=None)
    assert refused.status == 401


async def test_drift_respects_roles_and_tenant_scope_and_validates_its_request(
    suite: Suite,
) -> None:
    denied = grpc.StatusCode.PERMISSION_DENIED
    await expect_error(drift_of(suite, token=CONTROL_PLANE_A), denied, "TENANT_NOT_IN_SCOPE")
    await expect_error(drift_of(suite, token=WORKER_A), denied, "ROLE_REQUIRED")
    not_found = await expect_error(
        drift_of(suite, release_version="no-such-release"),
        grpc.StatusCode.NOT_FOUND,
        "RELEASE_NOT_FOUND",
    )
    assert not_found.metadata == {"releaseVersion": "no-such-release"}
    async with client_channel(suite.coordinator.target, token=ADMIN) as channel:
        stub = release_drift_service_pb2_grpc.ReleaseDriftServiceStub(channel)
        await expect_error(
            stub.GetReleaseDrift(pb.GetReleaseDriftRequest(tenant_id=suite.tenant)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "FIELD_REQUIRED",
        )
        # A pipeline with nothing registered: an empty report, not an error.
        empty = await stub.GetReleaseDrift(
            pb.GetReleaseDriftRequest(tenant_id=suite.tenant, pipeline_id="org.example.none")
        )
    assert (empty.active_release_version, list(empty.workers), list(empty.releases)) == (
        "",
        [],
        [],
    )
