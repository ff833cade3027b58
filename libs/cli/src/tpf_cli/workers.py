"""`tpf workers ...`: register workers of a release and follow their lifecycle."""

from __future__ import annotations

from dataclasses import dataclass

from tpf.registry.v1 import release_service_pb2 as release_pb
from tpf.registry.v1 import worker_pb2
from tpf.registry.v1 import worker_service_pb2 as pb
from tpf_cli import output
from tpf_cli.connection import Registry, collect_pages
from tpf_cli.output import Report


@dataclass(frozen=True, slots=True)
class WorkerIdentity:
    """What a worker says it hosts; empty fields are filled from the release."""

    release_version: str
    contract_version: str = ""
    artifact_id: str = ""
    artifact_digest: str = ""

    @property
    def is_complete(self) -> bool:
        return bool(self.contract_version and self.artifact_id and self.artifact_digest)


async def _filled(registry: Registry, identity: WorkerIdentity) -> WorkerIdentity:
    """TPF's demo script does the same: contract version from the release, artifact id and
    digest from its primary artifact."""
    if identity.is_complete:
        return identity
    response = await registry.releases.GetRelease(
        release_pb.GetReleaseRequest(
            tenant_id=registry.tenant_id,
            pipeline_id=registry.pipeline_id,
            release_version=identity.release_version,
        ),
        timeout=registry.timeout_s,
    )
    release = response.release
    return WorkerIdentity(
        release_version=identity.release_version,
        contract_version=identity.contract_version or release.contract_version,
        artifact_id=identity.artifact_id or release.primary_artifact_id,
        artifact_digest=identity.artifact_digest or release.primary_artifact_digest,
    )


async def register(
    registry: Registry,
    worker_id: str,
    identity: WorkerIdentity,
    *,
    protocol: str,
    endpoint: str,
) -> Report:
    identity = await _filled(registry, identity)
    response = await registry.workers.RegisterWorker(
        pb.RegisterWorkerRequest(
            tenant_id=registry.tenant_id,
            pipeline_id=registry.pipeline_id,
            worker_id=worker_id,
            contract_version=identity.contract_version,
            release_version=identity.release_version,
            protocol=protocol,
            endpoint=endpoint,
            artifact_id=identity.artifact_id,
            artifact_digest=identity.artifact_digest,
        ),
        timeout=registry.timeout_s,
    )
    worker = response.worker
    return Report(
        response, f"registered worker {worker.worker_id}\n{output.worker_details(worker)}"
    )


async def list_workers(registry: Registry, *, release_version: str, page_size: int) -> Report:
    async def page(token: str) -> tuple[list[worker_pb2.Worker], str]:
        response = await registry.workers.ListWorkers(
            pb.ListWorkersRequest(
                tenant_id=registry.tenant_id,
                pipeline_id=registry.pipeline_id,
                release_version=release_version,
                page_size=page_size,
                page_token=token,
            ),
            timeout=registry.timeout_s,
        )
        return list(response.workers), response.next_page_token

    workers = await collect_pages(page)
    return Report(pb.ListWorkersResponse(workers=workers), output.worker_table(workers))


async def heartbeat(registry: Registry, worker_id: str) -> Report:
    response = await registry.workers.HeartbeatWorker(
        pb.HeartbeatWorkerRequest(
            tenant_id=registry.tenant_id, pipeline_id=registry.pipeline_id, worker_id=worker_id
        ),
        timeout=registry.timeout_s,
    )
    return Report(response, output.worker_details(response.worker))


async def drain(registry: Registry, worker_id: str) -> Report:
    response = await registry.workers.DrainWorker(
        pb.DrainWorkerRequest(
            tenant_id=registry.tenant_id, pipeline_id=registry.pipeline_id, worker_id=worker_id
        ),
        timeout=registry.timeout_s,
    )
    worker = response.worker
    return Report(response, f"draining worker {worker_id}\n{output.worker_details(worker)}")


async def undrain(registry: Registry, worker_id: str) -> Report:
    response = await registry.workers.UndrainWorker(
        pb.UndrainWorkerRequest(
            tenant_id=registry.tenant_id, pipeline_id=registry.pipeline_id, worker_id=worker_id
        ),
        timeout=registry.timeout_s,
    )
    worker = response.worker
    return Report(response, f"undrained worker {worker_id}\n{output.worker_details(worker)}")


async def deregister(registry: Registry, worker_id: str) -> Report:
    response = await registry.workers.DeregisterWorker(
        pb.DeregisterWorkerRequest(
            tenant_id=registry.tenant_id, pipeline_id=registry.pipeline_id, worker_id=worker_id
        ),
        timeout=registry.timeout_s,
    )
    worker = response.worker
    return Report(response, f"deregistered worker {worker_id}\n{output.worker_details(worker)}")


async def resolve(registry: Registry, *, release_version: str, protocol: str) -> Report:
    response = await registry.workers.ResolveWorkers(
        pb.ResolveWorkersRequest(
            tenant_id=registry.tenant_id,
            pipeline_id=registry.pipeline_id,
            release_version=release_version,
            protocol=protocol,
        ),
        timeout=registry.timeout_s,
    )
    return Report(response, output.worker_table(response.workers))
