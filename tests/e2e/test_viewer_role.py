"""The `viewer` role: every read of the coordinator and the registry, and no change.

The operator console signs a read-only operator in with such a token; the services must refuse
its changes themselves (PERMISSION_DENIED ROLE_REQUIRED), whatever a client shows or hides.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import grpc
import pytest

from tests.e2e.conftest import Suite
from tests.e2e.test_coordinator_executions import submit_request
from tests.support.coordinator_client import coordinator_client
from tests.support.grpc_errors import expect_error
from tests.support.registry_client import VIEWER, registry_client
from tests.support.release_artifacts import PIPELINE_ID
from tests.support.restaurant import order_envelope
from tpf.coordinator.v1 import dead_letter_service_pb2 as dpb
from tpf.coordinator.v1 import (
    dead_letter_service_pb2_grpc,
    interaction_service_pb2_grpc,
    release_drift_service_pb2_grpc,
)
from tpf.coordinator.v1 import execution_service_pb2 as epb
from tpf.coordinator.v1 import interaction_service_pb2 as ipb
from tpf.coordinator.v1 import release_drift_service_pb2 as drpb
from tpf.registry.v1 import release_service_pb2 as rpb
from tpf.registry.v1 import worker_service_pb2 as wpb

pytestmark = pytest.mark.e2e


async def _refused(call: Awaitable[Any]) -> None:
    await expect_error(call, grpc.StatusCode.PERMISSION_DENIED, "ROLE_REQUIRED")


async def test_a_viewer_reads_everything_and_changes_nothing(suite: Suite) -> None:
    tenant = suite.tenant
    async with coordinator_client(suite.coordinator.target) as admin:
        eid = (await admin.executions.SubmitExecution(submit_request(suite))).execution_id

    async with coordinator_client(suite.coordinator.target, token=VIEWER) as viewer:
        got = await viewer.executions.GetExecution(
            epb.GetExecutionRequest(tenant_id=tenant, execution_id=eid)
        )
        assert got.execution.execution_id == eid
        listed = await viewer.executions.ListExecutions(epb.ListExecutionsRequest(tenant_id=tenant))
        assert [e.execution_id for e in listed.executions] == [eid]
        entries = await viewer.executions.ListExecutionHistory(
            epb.ListExecutionHistoryRequest(tenant_id=tenant, execution_id=eid)
        )
        assert [e.actor for e in entries.history_entries] == ["ops"]
        stream = viewer.executions.WatchExecution(
            epb.WatchExecutionRequest(tenant_id=tenant, execution_id=eid)
        )
        first: Any = await stream.read()
        assert first.execution.version == 0
        stream.cancel()
        interactions = interaction_service_pb2_grpc.InteractionServiceStub(viewer.channel)
        await interactions.ListPendingInteractions(
            ipb.ListPendingInteractionsRequest(tenant_id=tenant)
        )
        letters = dead_letter_service_pb2_grpc.DeadLetterServiceStub(viewer.channel)
        await letters.ListDeadLetters(dpb.ListDeadLettersRequest(tenant_id=tenant))
        drift = release_drift_service_pb2_grpc.ReleaseDriftServiceStub(viewer.channel)
        answer = await drift.GetReleaseDrift(
            drpb.GetReleaseDriftRequest(tenant_id=tenant, pipeline_id=PIPELINE_ID)
        )
        assert answer.active_release_version == suite.release.release_version

        await _refused(viewer.executions.SubmitExecution(submit_request(suite)))
        await _refused(
            viewer.executions.CancelExecution(
                epb.CancelExecutionRequest(tenant_id=tenant, execution_id=eid)
            )
        )
        await _refused(
            interactions.CompleteInteraction(
                ipb.CompleteInteractionRequest(
                    tenant_id=tenant, interaction_id="i", response_payload=order_envelope()
                )
            )
        )
        await _refused(
            letters.RedriveExecution(
                dpb.RedriveExecutionRequest(tenant_id=tenant, execution_id=eid, allow_failed=True)
            )
        )
        await _refused(
            letters.BulkRedrive(dpb.BulkRedriveRequest(tenant_id=tenant, reason="r", dry_run=True))
        )

    pipeline = PIPELINE_ID
    version = suite.release.release_version
    async with registry_client(suite.registry.target, token=VIEWER) as viewer_registry:
        active = await viewer_registry.releases.GetActiveRelease(
            rpb.GetActiveReleaseRequest(tenant_id=tenant, pipeline_id=pipeline)
        )
        assert active.release.release_version == version
        await viewer_registry.releases.ListReleases(
            rpb.ListReleasesRequest(tenant_id=tenant, pipeline_id=pipeline)
        )
        await viewer_registry.releases.ListActivations(
            rpb.ListActivationsRequest(tenant_id=tenant, pipeline_id=pipeline)
        )
        workers = await viewer_registry.workers.ListWorkers(
            wpb.ListWorkersRequest(tenant_id=tenant, pipeline_id=pipeline)
        )
        assert [w.worker_id for w in workers.workers] == ["local-worker"]

        await _refused(
            viewer_registry.releases.ActivateRelease(
                rpb.ActivateReleaseRequest(
                    tenant_id=tenant, pipeline_id=pipeline, release_version=version
                )
            )
        )
        await _refused(
            viewer_registry.workers.DrainWorker(
                wpb.DrainWorkerRequest(
                    tenant_id=tenant, pipeline_id=pipeline, worker_id="local-worker"
                )
            )
        )
        await _refused(
            viewer_registry.workers.RegisterWorker(
                wpb.RegisterWorkerRequest(
                    tenant_id=tenant,
                    pipeline_id=pipeline,
                    worker_id="w",
                    contract_version=suite.release.contract_version,
                    release_version=version,
                    protocol="local",
                )
            )
        )
    # Still as submitted: nothing the viewer tried changed it.
    async with coordinator_client(suite.coordinator.target) as admin:
        after = await admin.executions.GetExecution(
            epb.GetExecutionRequest(tenant_id=tenant, execution_id=eid)
        )
        assert after.execution.version == 0
