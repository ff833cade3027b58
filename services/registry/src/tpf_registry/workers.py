"""Worker use cases: identity-checked registration, heartbeats, drain and undrain, resolution."""

from __future__ import annotations

import logging

from tpf_errors import FailedPrecondition, NotFound
from tpf_registry.domain.clock import Clock
from tpf_registry.domain.worker import (
    HostDeclaration,
    LifecycleWindows,
    Worker,
    WorkerProtocol,
    WorkerRegistration,
    WorkerState,
    check_identity,
)
from tpf_registry.store.protocol import ReleaseStore, WorkerStore

log = logging.getLogger(__name__)


def _worker_not_found(worker_id: str) -> NotFound:
    return NotFound(
        "WORKER_NOT_FOUND",
        f"Worker {worker_id} is not registered for this pipeline",
        workerId=worker_id,
    )


class WorkerRegistry:
    """Keeps worker records; states are derived from heartbeat times with `windows`."""

    def __init__(
        self,
        *,
        workers: WorkerStore,
        releases: ReleaseStore,
        clock: Clock,
        windows: LifecycleWindows,
    ) -> None:
        self._workers = workers
        self._releases = releases
        self._clock = clock
        self.windows = windows

    def now_ms(self) -> int:
        return self._clock.now_ms()

    def state_of(self, worker: Worker, *, now_ms: int) -> WorkerState:
        return worker.state(now_ms=now_ms, windows=self.windows)

    async def register(self, registration: WorkerRegistration, *, actor: str) -> Worker:
        release = await self._releases.get(
            registration.tenant_id, registration.pipeline_id, registration.release_version
        )
        if release is None:
            raise FailedPrecondition(
                "WORKER_IDENTITY_MISMATCH",
                f"Worker {registration.worker_id} names release "
                f"{registration.release_version}, which is not registered for pipeline "
                f"{registration.pipeline_id}; register the release first",
                field="releaseVersion",
                expected="a registered release",
                actual=registration.release_version,
            )
        check_identity(registration, release)
        worker = await self._workers.upsert(registration, actor=actor, now_ms=self.now_ms())
        log.info(
            "worker registered",
            extra={
                "tenant": registration.tenant_id,
                "worker_id": registration.worker_id,
                "release_version": registration.release_version,
            },
        )
        return worker

    async def heartbeat(self, tenant_id: str, pipeline_id: str, worker_id: str) -> Worker:
        now_ms = self.now_ms()
        before = await self._workers.get(tenant_id, pipeline_id, worker_id)
        if before is None:
            raise _worker_not_found(worker_id)
        revived = self.state_of(before, now_ms=now_ms) in (
            WorkerState.STALE,
            WorkerState.UNAVAILABLE,
        )
        worker = await self._workers.heartbeat(
            tenant_id, pipeline_id, worker_id, now_ms=now_ms, revived=revived
        )
        if worker is None:
            raise _worker_not_found(worker_id)
        return worker

    async def drain(
        self, tenant_id: str, pipeline_id: str, worker_id: str, *, actor: str
    ) -> Worker:
        worker = await self._workers.drain(
            tenant_id, pipeline_id, worker_id, actor=actor, now_ms=self.now_ms()
        )
        if worker is None:
            raise _worker_not_found(worker_id)
        return worker

    async def undrain(
        self, tenant_id: str, pipeline_id: str, worker_id: str, *, actor: str
    ) -> Worker:
        worker = await self._workers.undrain(
            tenant_id, pipeline_id, worker_id, actor=actor, now_ms=self.now_ms()
        )
        if worker is None:
            raise _worker_not_found(worker_id)
        log.info(
            "worker undrained",
            extra={"tenant": tenant_id, "worker_id": worker_id, "actor": actor},
        )
        return worker

    async def deregister(
        self, tenant_id: str, pipeline_id: str, worker_id: str, *, actor: str
    ) -> Worker:
        worker = await self._workers.delete(
            tenant_id, pipeline_id, worker_id, actor=actor, now_ms=self.now_ms()
        )
        if worker is None:
            raise _worker_not_found(worker_id)
        return worker

    async def list_workers(
        self,
        tenant_id: str,
        pipeline_id: str,
        *,
        contract_version: str,
        release_version: str,
        after_worker_id: str,
        limit: int,
    ) -> list[Worker]:
        return await self._workers.list_after(
            tenant_id,
            pipeline_id,
            contract_version=contract_version,
            release_version=release_version,
            after_worker_id=after_worker_id,
            limit=limit,
        )

    async def resolve(
        self,
        tenant_id: str,
        pipeline_id: str,
        release_version: str,
        *,
        protocol: WorkerProtocol | None,
    ) -> list[Worker]:
        """HEALTHY, non-draining workers of the release, freshest heartbeat first."""
        now_ms = self.now_ms()
        stale_ms = self.windows.stale_after_ms or self.windows.unavailable_after_ms
        since_ms = now_ms - stale_ms if stale_ms else 0
        return await self._workers.for_release(
            tenant_id,
            pipeline_id,
            release_version,
            protocol=protocol,
            heartbeat_since_ms=since_ms,
            now_ms=now_ms,
        )

    async def serve_local(self, declaration: HostDeclaration) -> list[Worker]:
        """Record what a dispatcher hosts and heartbeat every `local` record it serves."""
        now_ms = self.now_ms()
        stale_ms = self.windows.stale_after_ms or self.windows.unavailable_after_ms
        served = await self._workers.serve_local(
            declaration,
            now_ms=now_ms,
            revive_before_ms=now_ms - stale_ms if stale_ms else None,
        )
        if declaration.pipelines:
            log.debug(
                "local workers served",
                extra={"host_id": declaration.host_id, "served": len(served)},
            )
        else:
            log.info("local worker host withdrawn", extra={"host_id": declaration.host_id})
        return served
