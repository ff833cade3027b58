"""Release drift use case: read the registry and the executions table, compute the report.

Nothing is cached: the report is an operator's answer to "can I retire this release now", so
each call asks the registry afresh (unlike submission admission's short-lived cache).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

import grpc

from tpf.registry.v1 import (
    release_pb2,
    release_service_pb2_grpc,
    worker_pb2,
    worker_service_pb2_grpc,
)
from tpf.registry.v1 import release_service_pb2 as rpb
from tpf.registry.v1 import worker_service_pb2 as wpb
from tpf_coordinator.domain.release_drift import (
    DriftInputs,
    DriftReport,
    ReleaseIdentity,
    WorkerRecord,
    build_report,
    releases_of_interest,
)
from tpf_coordinator.release_catalog import _registry_error as registry_error
from tpf_coordinator.store.protocol import PinnedExecutionCounts
from tpf_errors import NotFound

# ListWorkers' largest page: one call for any ordinary pipeline.
_WORKER_PAGE_SIZE = 1000
# Registry calls in flight at once for one report: a pipeline with hundreds of releases must not
# flood the registry.
_MAX_CONCURRENT_REGISTRY_CALLS = 8

T = TypeVar("T")


async def _gather_bounded(calls: Iterable[Awaitable[T]], semaphore: asyncio.Semaphore) -> list[T]:
    async def bounded(call: Awaitable[T]) -> T:
        async with semaphore:
            return await call

    return list(await asyncio.gather(*(bounded(call) for call in calls)))


def _identity(release: release_pb2.Release) -> ReleaseIdentity:
    return ReleaseIdentity(
        release_version=release.release_version,
        pipeline_id=release.pipeline_id,
        contract_version=release.contract_version,
        primary_artifact_digest=release.primary_artifact_digest,
    )


def _worker_record(worker: worker_pb2.Worker) -> WorkerRecord:
    known = worker_pb2.WorkerState.DESCRIPTOR.values_by_number.get(worker.state)
    state = known.name.removeprefix("WORKER_STATE_") if known is not None else "UNSPECIFIED"
    return WorkerRecord(
        worker_id=worker.worker_id,
        pipeline_id=worker.pipeline_id,
        contract_version=worker.contract_version,
        release_version=worker.release_version,
        protocol=worker.protocol,
        endpoint=worker.endpoint,
        artifact_id=worker.artifact_id,
        artifact_digest=worker.artifact_digest,
        state=state,
        registered_at_epoch_ms=worker.registered_at_epoch_ms,
        last_heartbeat_at_epoch_ms=worker.last_heartbeat_at_epoch_ms,
        draining_since_epoch_ms=worker.draining_since_epoch_ms,
    )


class DriftRegistry:
    """What release drift reads from the registry, uncached; registry failures become
    UNAVAILABLE REGISTRY_UNAVAILABLE, as for every other registry call of the coordinator."""

    def __init__(self, channel: grpc.aio.Channel, *, rpc_timeout_s: float) -> None:
        self._releases = release_service_pb2_grpc.ReleaseServiceStub(channel)
        self._workers = worker_service_pb2_grpc.WorkerServiceStub(channel)
        self._timeout_s = rpc_timeout_s

    async def active_release(self, tenant_id: str, pipeline_id: str) -> ReleaseIdentity | None:
        try:
            response = await self._releases.GetActiveRelease(
                rpb.GetActiveReleaseRequest(tenant_id=tenant_id, pipeline_id=pipeline_id),
                timeout=self._timeout_s,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise registry_error(error) from None
        return _identity(response.release)

    async def release(
        self, tenant_id: str, pipeline_id: str, release_version: str
    ) -> ReleaseIdentity | None:
        try:
            response = await self._releases.GetRelease(
                rpb.GetReleaseRequest(
                    tenant_id=tenant_id, pipeline_id=pipeline_id, release_version=release_version
                ),
                timeout=self._timeout_s,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise registry_error(error) from None
        return _identity(response.release)

    async def workers(self, tenant_id: str, pipeline_id: str) -> list[WorkerRecord]:
        records: list[WorkerRecord] = []
        token = ""
        while True:
            try:
                response = await self._workers.ListWorkers(
                    wpb.ListWorkersRequest(
                        tenant_id=tenant_id,
                        pipeline_id=pipeline_id,
                        page_size=_WORKER_PAGE_SIZE,
                        page_token=token,
                    ),
                    timeout=self._timeout_s,
                )
            except grpc.aio.AioRpcError as error:
                raise registry_error(error) from None
            records.extend(_worker_record(worker) for worker in response.workers)
            # A token that does not move would loop forever; the registry's never repeats.
            if not response.next_page_token or response.next_page_token == token:
                return records
            token = response.next_page_token

    async def healthy_worker_ids(
        self, tenant_id: str, pipeline_id: str, release_version: str
    ) -> tuple[str, ...]:
        try:
            response = await self._workers.ResolveWorkers(
                wpb.ResolveWorkersRequest(
                    tenant_id=tenant_id, pipeline_id=pipeline_id, release_version=release_version
                ),
                timeout=self._timeout_s,
            )
        except grpc.aio.AioRpcError as error:
            raise registry_error(error) from None
        return tuple(worker.worker_id for worker in response.workers)


class ReleaseDriftReports:
    def __init__(
        self,
        *,
        pinned: PinnedExecutionCounts,
        registry: DriftRegistry,
        now_ms: Callable[[], int],
    ) -> None:
        self._pinned = pinned
        self._registry = registry
        self._now_ms = now_ms

    async def report(
        self, tenant_id: str, pipeline_id: str, *, release_version: str = ""
    ) -> DriftReport:
        """The drift of one pipeline. NOT_FOUND RELEASE_NOT_FOUND if `release_version` is given
        and not registered."""
        registry = self._registry
        active, workers, pinned = await asyncio.gather(
            registry.active_release(tenant_id, pipeline_id),
            registry.workers(tenant_id, pipeline_id),
            self._pinned.count_non_terminal(tenant_id, pipeline_id),
        )
        versions = releases_of_interest(
            active_release_version=active.release_version if active else "",
            pinned_release_versions=pinned,
            workers=workers,
            requested_release_version=release_version,
        )
        looked_up = [v for v in versions if active is None or v != active.release_version]
        in_flight = asyncio.Semaphore(_MAX_CONCURRENT_REGISTRY_CALLS)
        identities, healthy = await asyncio.gather(
            _gather_bounded(
                (registry.release(tenant_id, pipeline_id, v) for v in looked_up), in_flight
            ),
            _gather_bounded(
                (registry.healthy_worker_ids(tenant_id, pipeline_id, v) for v in versions),
                in_flight,
            ),
        )
        releases = {
            version: identity
            for version, identity in zip(looked_up, identities, strict=True)
            if identity is not None
        }
        if active is not None:
            releases[active.release_version] = active
        if release_version and release_version not in releases:
            raise NotFound(
                "RELEASE_NOT_FOUND",
                f"Release {release_version} is not registered for pipeline {pipeline_id}",
                releaseVersion=release_version,
            )
        return build_report(
            DriftInputs(
                tenant_id=tenant_id,
                pipeline_id=pipeline_id,
                active=active,
                workers=workers,
                releases=releases,
                pinned=pinned,
                healthy_worker_ids=dict(zip(versions, healthy, strict=True)),
                observed_at_ms=self._now_ms(),
                requested_release_version=release_version,
            )
        )
