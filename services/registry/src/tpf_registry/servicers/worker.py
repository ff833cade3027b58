"""tpf.registry.v1.WorkerService."""

from __future__ import annotations

from typing import Any

import grpc

from tpf.registry.v1 import worker_pb2, worker_service_pb2_grpc
from tpf.registry.v1 import worker_service_pb2 as pb
from tpf_errors import InvalidArgument
from tpf_registry.domain.worker import (
    HostDeclaration,
    HostedBuild,
    Worker,
    WorkerRegistration,
    normalize_endpoint,
    parse_protocol,
)
from tpf_registry.servicers.access import ADMIN_ROLES, READ_ROLES, WORKER_WRITE_ROLES, authorize
from tpf_registry.servicers.convert import worker_to_proto
from tpf_registry.workers import WorkerRegistry
from tpf_rpc.auth import ALL_TENANTS, current_principal
from tpf_rpc.paging import Keyset
from tpf_rpc.validation import (
    MAX_KEY_CHARS,
    filters_hash,
    optional,
    page_size,
    required,
)

Context = grpc.aio.ServicerContext[Any, Any]


class WorkerServicer(worker_service_pb2_grpc.WorkerServiceServicer):
    def __init__(self, registry: WorkerRegistry) -> None:
        self._registry = registry

    def _view(self, worker: Worker) -> worker_pb2.Worker:
        return worker_to_proto(
            worker, self._registry.state_of(worker, now_ms=self._registry.now_ms())
        )

    async def RegisterWorker(
        self, request: pb.RegisterWorkerRequest, context: Context
    ) -> pb.RegisterWorkerResponse:
        principal, tenant = authorize(request.tenant_id, WORKER_WRITE_ROLES)
        protocol = parse_protocol(required(request.protocol, "protocol"))
        registration = WorkerRegistration(
            tenant_id=tenant,
            pipeline_id=required(request.pipeline_id, "pipelineId"),
            worker_id=required(request.worker_id, "workerId"),
            contract_version=required(request.contract_version, "contractVersion"),
            release_version=required(request.release_version, "releaseVersion"),
            protocol=protocol,
            endpoint=normalize_endpoint(
                protocol, optional(request.endpoint, "endpoint", max_chars=MAX_KEY_CHARS)
            ),
            artifact_id=optional(request.artifact_id, "artifactId"),
            artifact_digest=optional(request.artifact_digest, "artifactDigest"),
        )
        worker = await self._registry.register(registration, actor=principal.subject)
        return pb.RegisterWorkerResponse(worker=self._view(worker))

    async def HeartbeatWorker(
        self, request: pb.HeartbeatWorkerRequest, context: Context
    ) -> pb.HeartbeatWorkerResponse:
        _, tenant = authorize(request.tenant_id, WORKER_WRITE_ROLES)
        worker = await self._registry.heartbeat(
            tenant,
            required(request.pipeline_id, "pipelineId"),
            required(request.worker_id, "workerId"),
        )
        return pb.HeartbeatWorkerResponse(worker=self._view(worker))

    async def DrainWorker(
        self, request: pb.DrainWorkerRequest, context: Context
    ) -> pb.DrainWorkerResponse:
        principal, tenant = authorize(request.tenant_id, ADMIN_ROLES)
        worker = await self._registry.drain(
            tenant,
            required(request.pipeline_id, "pipelineId"),
            required(request.worker_id, "workerId"),
            actor=principal.subject,
        )
        return pb.DrainWorkerResponse(worker=self._view(worker))

    async def UndrainWorker(
        self, request: pb.UndrainWorkerRequest, context: Context
    ) -> pb.UndrainWorkerResponse:
        principal, tenant = authorize(request.tenant_id, ADMIN_ROLES)
        worker = await self._registry.undrain(
            tenant,
            required(request.pipeline_id, "pipelineId"),
            required(request.worker_id, "workerId"),
            actor=principal.subject,
        )
        return pb.UndrainWorkerResponse(worker=self._view(worker))

    async def DeregisterWorker(
        self, request: pb.DeregisterWorkerRequest, context: Context
    ) -> pb.DeregisterWorkerResponse:
        principal, tenant = authorize(request.tenant_id, WORKER_WRITE_ROLES)
        worker = await self._registry.deregister(
            tenant,
            required(request.pipeline_id, "pipelineId"),
            required(request.worker_id, "workerId"),
            actor=principal.subject,
        )
        return pb.DeregisterWorkerResponse(worker=self._view(worker))

    async def ListWorkers(
        self, request: pb.ListWorkersRequest, context: Context
    ) -> pb.ListWorkersResponse:
        _, tenant = authorize(request.tenant_id, READ_ROLES)
        pipeline = required(request.pipeline_id, "pipelineId")
        limit = page_size(request.page_size)
        contract_version = optional(request.contract_version, "contractVersion")
        release_version = optional(request.release_version, "releaseVersion")
        scope = filters_hash(
            tenant=tenant,
            pipeline=pipeline,
            contract=contract_version,
            release=release_version,
        )
        keyset = Keyset.of(request.page_token, limit, scope, {"after": str})
        rows = await self._registry.list_workers(
            tenant,
            pipeline,
            contract_version=contract_version,
            release_version=release_version,
            after_worker_id=str(keyset.cursor["after"]) if keyset.cursor else "",
            limit=keyset.fetch,
        )
        page = keyset.page(rows, lambda w: {"after": w.worker_id})
        return pb.ListWorkersResponse(
            workers=[self._view(w) for w in page.rows], next_page_token=page.next_page_token
        )

    async def ResolveWorkers(
        self, request: pb.ResolveWorkersRequest, context: Context
    ) -> pb.ResolveWorkersResponse:
        _, tenant = authorize(request.tenant_id, READ_ROLES)
        protocol = parse_protocol(request.protocol) if request.protocol.strip() else None
        workers = await self._registry.resolve(
            tenant,
            required(request.pipeline_id, "pipelineId"),
            required(request.release_version, "releaseVersion"),
            protocol=protocol,
        )
        return pb.ResolveWorkersResponse(workers=[self._view(w) for w in workers])

    async def ServeLocalWorkers(
        self, request: pb.ServeLocalWorkersRequest, context: Context
    ) -> pb.ServeLocalWorkersResponse:
        principal = current_principal()
        principal.require_any_role(WORKER_WRITE_ROLES)
        host_id = required(request.host_id, "hostId")
        if not _MIN_HOST_TTL_MS <= request.ttl_ms <= _MAX_HOST_TTL_MS:
            raise InvalidArgument(
                "FIELD_OUT_OF_RANGE",
                f"ttlMs must be between {_MIN_HOST_TTL_MS} and {_MAX_HOST_TTL_MS}",
                field="ttlMs",
                value=str(request.ttl_ms),
            )
        pipelines = tuple(
            HostedBuild(
                pipeline_id=required(p.pipeline_id, "pipelines.pipelineId"),
                contract_version=required(p.contract_version, "pipelines.contractVersion"),
                artifact_digest=p.artifact_digest.strip(),
            )
            for p in request.pipelines
        )
        tenants: tuple[str, ...] | None
        requested = tuple(sorted({t.strip() for t in request.tenant_ids if t.strip()}))
        if requested:
            for tenant in requested:
                principal.require_tenant(tenant)
            tenants = requested
        elif ALL_TENANTS in principal.tenants:
            tenants = None
        else:
            tenants = tuple(sorted(principal.tenants))
        releases = tuple(sorted({v.strip() for v in request.release_versions if v.strip()}))
        declaration = HostDeclaration(
            host_id=host_id,
            pipelines=() if request.withdraw else pipelines,
            tenant_ids=tenants,
            release_versions=releases or None,
            ttl_ms=request.ttl_ms,
        )
        served = await self._registry.serve_local(declaration)
        return pb.ServeLocalWorkersResponse(workers=[self._view(w) for w in served])


# A declaration outlives a few missed calls, and a vanished dispatcher stops counting within
# the hour at most.
_MIN_HOST_TTL_MS = 1_000
_MAX_HOST_TTL_MS = 3_600_000
