"""The registry as the dispatcher needs it: the workers of a pinned release (cached briefly,
since workers come and go) and the release's step count and primary artifact digest (cached for
good: releases are immutable once registered).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc

from tpf.registry.v1 import release_service_pb2 as rpb
from tpf.registry.v1 import release_service_pb2_grpc, worker_pb2, worker_service_pb2_grpc
from tpf.registry.v1 import worker_service_pb2 as wspb


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class ReleaseKey:
    """A pinned release: what executions are dispatched by."""

    tenant_id: str
    pipeline_id: str
    release_version: str


@dataclass(frozen=True, slots=True)
class ReleaseFacts:
    """What dispatch needs of a release: its step count (None when it embeds no contract) and
    its primary artifact digest ('' when it names none)."""

    step_count: int | None
    artifact_digest: str


@dataclass(frozen=True, slots=True)
class Resolution:
    """The registry's answer for one release: its HEALTHY workers, most recent first."""

    workers: tuple[worker_pb2.Worker, ...]
    resolved_at_ms: int
    expires_at_ms: int


class WorkerDirectory:
    """Cached ResolveWorkers and GetRelease answers. Concurrent misses for one release share
    one registry call. Registry errors propagate as `grpc.aio.AioRpcError`."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        ttl_s: float,
        rpc_timeout_s: float,
        now_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self._workers_stub = worker_service_pb2_grpc.WorkerServiceStub(channel)
        self._releases_stub = release_service_pb2_grpc.ReleaseServiceStub(channel)
        self._ttl_ms = int(ttl_s * 1000)
        self._rpc_timeout_s = rpc_timeout_s
        self._now_ms = now_ms
        self._resolutions: dict[ReleaseKey, Resolution] = {}
        self._facts: dict[ReleaseKey, ReleaseFacts] = {}
        self._pending: dict[tuple[str, ReleaseKey], asyncio.Future[object]] = {}

    async def workers(self, key: ReleaseKey) -> Resolution:
        cached = self._resolutions.get(key)
        if cached is not None and cached.expires_at_ms > self._now_ms():
            return cached
        resolution = await self._once("workers", key, lambda: self._resolve(key))
        assert isinstance(resolution, Resolution)
        return resolution

    def forget(self, key: ReleaseKey) -> None:
        """Drop the cached workers of `key` (a call to one failed): the next item re-resolves."""
        self._resolutions.pop(key, None)

    async def release(self, key: ReleaseKey) -> ReleaseFacts:
        """The release's step count and primary artifact digest."""
        cached = self._facts.get(key)
        if cached is not None:
            return cached
        facts = await self._once("release", key, lambda: self._fetch_release(key))
        assert isinstance(facts, ReleaseFacts)
        return facts

    def resolutions(self) -> list[tuple[ReleaseKey, Resolution]]:
        return sorted(
            self._resolutions.items(),
            key=lambda kv: (kv[0].tenant_id, kv[0].pipeline_id, kv[0].release_version),
        )

    async def _once(
        self, kind: str, key: ReleaseKey, fetch: Callable[[], Awaitable[object]]
    ) -> object:
        pending = self._pending.get((kind, key))
        if pending is None:
            pending = asyncio.ensure_future(fetch())
            self._pending[(kind, key)] = pending
            pending.add_done_callback(lambda _: self._pending.pop((kind, key), None))
        # shield: one caller's cancellation (its lease was lost) must not fail the others.
        return await asyncio.shield(pending)

    async def _resolve(self, key: ReleaseKey) -> Resolution:
        response = await self._workers_stub.ResolveWorkers(
            wspb.ResolveWorkersRequest(
                tenant_id=key.tenant_id,
                pipeline_id=key.pipeline_id,
                release_version=key.release_version,
            ),
            timeout=self._rpc_timeout_s,
        )
        now = self._now_ms()
        healthy = tuple(w for w in response.workers if w.state == worker_pb2.WORKER_STATE_HEALTHY)
        resolution = Resolution(healthy, now, now + self._ttl_ms)
        self._resolutions[key] = resolution
        return resolution

    async def _fetch_release(self, key: ReleaseKey) -> ReleaseFacts:
        response = await self._releases_stub.GetRelease(
            rpb.GetReleaseRequest(
                tenant_id=key.tenant_id,
                pipeline_id=key.pipeline_id,
                release_version=key.release_version,
            ),
            timeout=self._rpc_timeout_s,
        )
        release = response.release
        facts = ReleaseFacts(
            step_count=len(release.contract.steps) if release.HasField("contract") else None,
            artifact_digest=release.primary_artifact_digest,
        )
        self._facts[key] = facts
        return facts
