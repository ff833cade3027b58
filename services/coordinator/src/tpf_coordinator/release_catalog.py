"""What the coordinator needs from the release registry, cached.

Releases are immutable once registered, so a release fetched by version is cached for good (in a
bounded LRU). The active release and the healthy-worker answer change, so they are cached for
`ttl_s` only: a new activation reaches submissions within that time.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from tpf.registry.v1 import (
    release_pb2,
    release_service_pb2_grpc,
    worker_pb2,
    worker_service_pb2_grpc,
)
from tpf.registry.v1 import release_service_pb2 as rpb
from tpf.registry.v1 import worker_service_pb2 as wpb
from tpf_coordinator.domain.retry import RetrySettings
from tpf_errors import FailedPrecondition, NotFound, TpfError, Unavailable
from tpf_rpc.errors import error_info_of
from tpf_store.errors import database_unavailable_error

_MULTI_CARDINALITIES = frozenset({"ONE_TO_MANY", "MANY_TO_MANY", "EXPANSION"})
_SINGLE_CARDINALITIES = frozenset({"MANY_TO_ONE", "REDUCTION"})


@dataclass(frozen=True, slots=True)
class StepInfo:
    index: int
    authored_name: str
    step_id: str
    kind: str
    cardinality: str
    input_type_id: str
    output_type_id: str
    await_transport: str
    retry: RetrySettings

    @property
    def is_await(self) -> bool:
        return self.kind == "await"


@dataclass(frozen=True, slots=True)
class ReleaseInfo:
    tenant_id: str
    pipeline_id: str
    contract_version: str
    release_version: str
    steps: tuple[StepInfo, ...]
    segment_dispatch: bool
    primary_artifact_id: str
    primary_artifact_digest: str
    # The contract's `transport` (REST, GRPC, LOCAL) and `platform` (COMPUTE, FUNCTION).
    transport: str = ""
    platform: str = ""

    @property
    def result_shape(self) -> str:
        """TPF's rule: any ONE_TO_MANY/MANY_TO_MANY step makes the result a list; a later
        MANY_TO_ONE reduces it to a single item again."""
        shape = "SINGLE"
        for step in self.steps:
            cardinality = step.cardinality.upper()
            if cardinality in _MULTI_CARDINALITIES:
                shape = "MATERIALIZED_MULTI"
            elif cardinality in _SINGLE_CARDINALITIES:
                shape = "SINGLE"
        return shape

    def step(self, index: int) -> StepInfo | None:
        return self.steps[index] if 0 <= index < len(self.steps) else None


def step_id_of(authored_name: str) -> str:
    """TPF's generated service name.

    `Await Restaurant Decision` → `ProcessAwaitRestaurantDecisionService`.
    """
    words = [word for word in "".join(c if c.isalnum() else " " for c in authored_name).split()]
    return "Process" + "".join(word[:1].upper() + word[1:] for word in words) + "Service"


def _retry_of(policy: release_pb2.RetryPolicy) -> RetrySettings:
    return RetrySettings.resolve(
        max_retries=policy.max_retries if policy.HasField("max_retries") else None,
        initial_delay_ms=(
            policy.initial_delay.ToMilliseconds() if policy.HasField("initial_delay") else None
        ),
        multiplier=policy.multiplier if policy.HasField("multiplier") else None,
        max_delay_ms=policy.max_delay.ToMilliseconds() if policy.HasField("max_delay") else None,
        jitter=policy.jitter if policy.HasField("jitter") else None,
    )


def release_info(release: release_pb2.Release) -> ReleaseInfo:
    default_retry = release.policy.default_retry
    steps = []
    for step in release.contract.steps:
        policy = release.policy.step_retry.get(step.authored_name, default_retry)
        steps.append(
            StepInfo(
                index=step.index,
                authored_name=step.authored_name,
                step_id=step_id_of(step.authored_name),
                kind=step.kind or "internal",
                cardinality=step.cardinality or "ONE_TO_ONE",
                input_type_id=step.input_type_id,
                output_type_id=step.output_type_id,
                await_transport=step.await_transport,
                retry=_retry_of(policy),
            )
        )
    return ReleaseInfo(
        tenant_id=release.tenant_id,
        pipeline_id=release.pipeline_id,
        contract_version=release.contract_version,
        release_version=release.release_version,
        steps=tuple(steps),
        segment_dispatch=release.policy.dispatch_mode == release_pb2.DISPATCH_MODE_SEGMENT,
        primary_artifact_id=release.primary_artifact_id,
        primary_artifact_digest=release.primary_artifact_digest,
        transport=release.contract.transport,
        platform=release.contract.platform,
    )


def _registry_error(error: grpc.aio.AioRpcError) -> TpfError:
    info = error_info_of(error)
    if info is not None and info.reason == "DATABASE_UNAVAILABLE":
        # The registry is up and its Postgres is not: the cause the client should see (the
        # registry's database is usually the coordinator's server too).
        return database_unavailable_error()
    if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return Unavailable(
            "REGISTRY_UNAVAILABLE",
            "The release registry cannot be reached right now; retry the call later",
        )
    reason = info.reason if info is not None else error.code().name
    return Unavailable(
        "REGISTRY_UNAVAILABLE",
        f"The release registry refused the coordinator's call ({reason}); check the "
        "coordinator's registry token",
        registryReason=reason,
    )


class ReleaseCatalog:
    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        ttl_s: float,
        rpc_timeout_s: float = 5.0,
        capacity: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # A deadline on every registry call: a registry that hangs must not hang submissions
        # (they answer UNAVAILABLE REGISTRY_UNAVAILABLE instead, which clients retry).
        self._timeout_s = rpc_timeout_s
        self._releases = release_service_pb2_grpc.ReleaseServiceStub(channel)
        self._workers = worker_service_pb2_grpc.WorkerServiceStub(channel)
        self._ttl_s = ttl_s
        self._capacity = capacity
        self._clock = clock
        self._by_version: OrderedDict[tuple[str, str, str], ReleaseInfo] = OrderedDict()
        self._active: dict[tuple[str, str], tuple[float, ReleaseInfo]] = {}
        self._healthy: dict[tuple[str, str, str], tuple[float, int]] = {}

    def _remember(self, info: ReleaseInfo) -> ReleaseInfo:
        key = (info.tenant_id, info.pipeline_id, info.release_version)
        self._by_version[key] = info
        self._by_version.move_to_end(key)
        while len(self._by_version) > self._capacity:
            self._by_version.popitem(last=False)
        return info

    async def active(self, tenant_id: str, pipeline_id: str) -> ReleaseInfo:
        """The release new submissions pin; FAILED_PRECONDITION NO_ACTIVE_RELEASE if none."""
        cached = self._active.get((tenant_id, pipeline_id))
        now = self._clock()
        if cached is not None and now - cached[0] < self._ttl_s:
            return cached[1]
        try:
            response = await self._releases.GetActiveRelease(
                rpb.GetActiveReleaseRequest(tenant_id=tenant_id, pipeline_id=pipeline_id),
                timeout=self._timeout_s,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise FailedPrecondition(
                    "NO_ACTIVE_RELEASE",
                    "No active release is registered for the requested pipeline",
                    pipelineId=pipeline_id,
                ) from None
            raise _registry_error(error) from None
        info = self._remember(release_info(response.release))
        self._active[(tenant_id, pipeline_id)] = (now, info)
        return info

    async def get(self, tenant_id: str, pipeline_id: str, release_version: str) -> ReleaseInfo:
        """A release by version (immutable, so cached for good)."""
        key = (tenant_id, pipeline_id, release_version)
        cached = self._by_version.get(key)
        if cached is not None:
            self._by_version.move_to_end(key)
            return cached
        try:
            response = await self._releases.GetRelease(
                rpb.GetReleaseRequest(
                    tenant_id=tenant_id, pipeline_id=pipeline_id, release_version=release_version
                ),
                timeout=self._timeout_s,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(
                    "RELEASE_NOT_FOUND",
                    f"Release {release_version} is not registered for pipeline {pipeline_id}",
                    releaseVersion=release_version,
                ) from None
            raise _registry_error(error) from None
        return self._remember(release_info(response.release))

    async def worker_shortage(
        self, tenant_id: str, pipeline_id: str, release: ReleaseInfo
    ) -> str | None:
        """Why nothing can run `release` now (TPF's wording, TPF_WIRE §8.4), or None if a worker
        can: a HEALTHY remote worker, or a `local` one that a running dispatcher serves.

        Only "available" answers are cached: a refusal is re-checked on the next call, so a
        worker registered (or a dispatcher started) right after a refusal is seen at once.
        """
        key = (tenant_id, pipeline_id, release.release_version)
        cached = self._healthy.get(key)
        now = self._clock()
        if cached is not None and now - cached[0] < self._ttl_s:
            return None
        try:
            response = await self._workers.ResolveWorkers(
                wpb.ResolveWorkersRequest(
                    tenant_id=tenant_id,
                    pipeline_id=pipeline_id,
                    release_version=release.release_version,
                ),
                timeout=self._timeout_s,
            )
            if response.workers:
                self._healthy[key] = (now, len(response.workers))
                return None
            self._healthy.pop(key, None)
            listed = await self._workers.ListWorkers(
                wpb.ListWorkersRequest(
                    tenant_id=tenant_id,
                    pipeline_id=pipeline_id,
                    release_version=release.release_version,
                    page_size=_STATES_LISTED,
                ),
                timeout=self._timeout_s,
            )
        except grpc.aio.AioRpcError as error:
            raise _registry_error(error) from None
        return _shortage_detail(release, list(listed.workers))


# Worker states named in a refusal; more would only lengthen the message.
_STATES_LISTED = 20


def _shortage_detail(release: ReleaseInfo, workers: list[worker_pb2.Worker]) -> str:
    if not workers:
        return "No worker lifecycle record for active release"
    # ResolveWorkers named none, so a HEALTHY record here is a `local` one nobody serves.
    unserved = [
        w.worker_id
        for w in workers
        if w.state == worker_pb2.WORKER_STATE_HEALTHY and w.protocol == "local"
    ]
    if unserved:
        return (
            f"No running dispatcher serves local worker {', '.join(unserved)}; start a "
            f"dispatcher whose TPF_LOCAL_PIPELINES hosts pipelineId={release.pipeline_id}, "
            f"contractVersion={release.contract_version} and whose tenants include this one"
        )
    states = ", ".join(
        f"{w.worker_id}={worker_pb2.WorkerState.Name(w.state).removeprefix('WORKER_STATE_')}"
        for w in workers
    )
    return f"No healthy worker lifecycle record for active release; current states: {states}"
