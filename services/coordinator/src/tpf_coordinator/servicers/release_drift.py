"""tpf.coordinator.v1.ReleaseDriftService."""

from __future__ import annotations

from typing import Any

import grpc

from tpf.coordinator.v1 import release_drift_service_pb2 as pb
from tpf.coordinator.v1 import release_drift_service_pb2_grpc
from tpf.registry.v1 import worker_pb2
from tpf_coordinator.domain.release_drift import (
    DriftReport,
    ReleaseDrift,
    RetirementVerdict,
    WorkerDrift,
)
from tpf_coordinator.release_drift import ReleaseDriftReports
from tpf_coordinator.servicers.access import CONTROL_PLANE_READ_ROLES, authorize
from tpf_coordinator.servicers.convert import STATUS_TO_PROTO
from tpf_rpc.validation import optional, required

Context = grpc.aio.ServicerContext[Any, Any]

VERDICT_TO_PROTO = {
    verdict: pb.RetirementVerdict.Value(f"RETIREMENT_VERDICT_{verdict.value}")
    for verdict in RetirementVerdict
}
WORKER_STATE_TO_PROTO = {
    name.removeprefix("WORKER_STATE_"): value for name, value in worker_pb2.WorkerState.items()
}


def _worker_to_proto(drift: WorkerDrift) -> pb.DriftWorker:
    worker = drift.worker
    return pb.DriftWorker(
        worker=worker_pb2.Worker(
            pipeline_id=worker.pipeline_id,
            contract_version=worker.contract_version,
            release_version=worker.release_version,
            worker_id=worker.worker_id,
            protocol=worker.protocol,
            endpoint=worker.endpoint,
            artifact_id=worker.artifact_id,
            artifact_digest=worker.artifact_digest,
            state=WORKER_STATE_TO_PROTO.get(worker.state, worker_pb2.WORKER_STATE_UNSPECIFIED),
            registered_at_epoch_ms=worker.registered_at_epoch_ms,
            last_heartbeat_at_epoch_ms=worker.last_heartbeat_at_epoch_ms,
            draining_since_epoch_ms=worker.draining_since_epoch_ms,
        ),
        serves_active_release=drift.serves_active_release,
        last_healthy_worker_for=drift.last_healthy_worker_for,
    )


def _release_to_proto(release: ReleaseDrift) -> pb.DriftRelease:
    identity = release.identity
    return pb.DriftRelease(
        release_version=release.release_version,
        contract_version=identity.contract_version if identity else "",
        primary_artifact_digest=identity.primary_artifact_digest if identity else "",
        active=release.is_active,
        pinned_executions=release.pinned_count,
        pinned_by_status=[
            pb.PinnedStatusCount(status=STATUS_TO_PROTO[status], count=count)
            for status, count in release.pinned_by_status.items()
        ],
        healthy_worker_ids=release.healthy_worker_ids,
        retirement=pb.Retirement(
            safe=release.retirement.is_safe,
            verdict=VERDICT_TO_PROTO[release.retirement.verdict],
            detail=release.retirement.detail,
        ),
    )


def report_to_proto(report: DriftReport) -> pb.GetReleaseDriftResponse:
    response = pb.GetReleaseDriftResponse(
        tenant_id=report.tenant_id,
        pipeline_id=report.pipeline_id,
        active_release_version=report.active_release_version,
        workers=[_worker_to_proto(worker) for worker in report.workers],
        releases=[_release_to_proto(release) for release in report.releases],
        observed_at_epoch_ms=report.observed_at_ms,
    )
    for drift in response.workers:
        drift.worker.tenant_id = report.tenant_id
    return response


class ReleaseDriftServicer(release_drift_service_pb2_grpc.ReleaseDriftServiceServicer):
    def __init__(self, reports: ReleaseDriftReports) -> None:
        self._reports = reports

    async def GetReleaseDrift(
        self, request: pb.GetReleaseDriftRequest, context: Context
    ) -> pb.GetReleaseDriftResponse:
        _, tenant = authorize(request.tenant_id, CONTROL_PLANE_READ_ROLES)
        report = await self._reports.report(
            tenant,
            required(request.pipeline_id, "pipelineId"),
            release_version=optional(request.release_version, "releaseVersion"),
        )
        return report_to_proto(report)
