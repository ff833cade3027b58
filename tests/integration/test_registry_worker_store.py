"""Worker lifecycle on real Postgres, with a clock the test moves instead of waiting."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import psycopg
import pytest

from tests.unit.registry_samples import sample_release
from tpf_errors import NotFound
from tpf_registry.domain.worker import (
    HostDeclaration,
    HostedBuild,
    LifecycleWindows,
    WorkerProtocol,
    WorkerRegistration,
    WorkerState,
)
from tpf_registry.store.release_postgres import PostgresReleaseStore
from tpf_registry.store.worker_postgres import PostgresWorkerStore
from tpf_registry.workers import WorkerRegistry
from tpf_store import Pool, open_pool


@dataclass
class MovableClock:
    now: int = 1_000_000

    def now_ms(self) -> int:
        return self.now


@pytest.fixture
async def pool(database: str) -> AsyncIterator[Pool]:
    pool = await open_pool(database, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


async def test_stale_unavailable_revive_and_history(pool: Pool, database: str) -> None:
    clock = MovableClock()
    releases = PostgresReleaseStore(pool)
    release = sample_release()
    await releases.insert(release, actor="test")
    registry = WorkerRegistry(
        workers=PostgresWorkerStore(pool),
        releases=releases,
        clock=clock,
        windows=LifecycleWindows(stale_after_ms=120_000, unavailable_after_ms=600_000),
    )
    registration = WorkerRegistration(
        tenant_id=release.tenant_id,
        pipeline_id=release.pipeline_id,
        worker_id="w1",
        contract_version=release.contract_version,
        release_version=release.release_version,
        protocol=WorkerProtocol.GRPC,
        endpoint="127.0.0.1:50061",
        artifact_id="",
        artifact_digest="",
    )
    worker = await registry.register(registration, actor="test")

    async def state() -> WorkerState:
        return registry.state_of(worker, now_ms=clock.now_ms())

    async def resolved() -> list[str]:
        found = await registry.resolve(
            release.tenant_id, release.pipeline_id, release.release_version, protocol=None
        )
        return [w.worker_id for w in found]

    assert await state() is WorkerState.HEALTHY
    assert await resolved() == ["w1"]
    clock.now += 120_001
    assert await state() is WorkerState.STALE
    assert await resolved() == []
    clock.now += 600_000
    assert await state() is WorkerState.UNAVAILABLE
    worker = await registry.heartbeat(release.tenant_id, release.pipeline_id, "w1")
    assert registry.state_of(worker, now_ms=clock.now_ms()) is WorkerState.HEALTHY
    assert await resolved() == ["w1"]
    worker = await registry.drain(release.tenant_id, release.pipeline_id, "w1", actor="ops")
    assert await resolved() == []

    with psycopg.connect(database) as conn:
        events = conn.execute(
            "SELECT event, actor, detail FROM registry_events "
            "WHERE resource_kind = 'worker' ORDER BY id"
        ).fetchall()
    assert [(e[0], e[1]) for e in events] == [
        ("WORKER_REGISTERED", "test"),
        ("WORKER_REVIVED", "w1"),
        ("WORKER_DRAINING", "ops"),
    ]
    assert json.loads(json.dumps(events[0][2]))["protocol"] == "grpc"


async def test_a_drain_lasts_until_an_operator_undrains(pool: Pool, database: str) -> None:
    """Registering again (the worker's process restarted), heartbeats and a dispatcher declaring
    the record it hosts all keep a drained worker DRAINING; only undrain ends the drain."""
    clock = MovableClock()
    releases = PostgresReleaseStore(pool)
    release = sample_release()
    await releases.insert(release, actor="test")
    registry = WorkerRegistry(
        workers=PostgresWorkerStore(pool),
        releases=releases,
        clock=clock,
        windows=LifecycleWindows(),
    )
    registration = WorkerRegistration(
        tenant_id=release.tenant_id,
        pipeline_id=release.pipeline_id,
        worker_id="w1",
        contract_version=release.contract_version,
        release_version=release.release_version,
        protocol=WorkerProtocol.LOCAL,
        endpoint="in-process",
        artifact_id="",
        artifact_digest="",
    )
    key = (release.tenant_id, release.pipeline_id, "w1")
    host = HostDeclaration(
        host_id="dispatcher-1",
        pipelines=(HostedBuild(release.pipeline_id, release.contract_version),),
        tenant_ids=None,
        release_versions=None,
        ttl_ms=30_000,
    )

    async def state() -> WorkerState:
        worker = await PostgresWorkerStore(pool).get(*key)
        assert worker is not None
        return registry.state_of(worker, now_ms=clock.now_ms())

    async def resolved() -> list[str]:
        found = await registry.resolve(*key[:2], release.release_version, protocol=None)
        return [w.worker_id for w in found]

    await registry.register(registration, actor="w1")
    await registry.serve_local(host)
    assert await resolved() == ["w1"]
    drained = await registry.drain(*key, actor="ops")
    drained_at = drained.draining_since_epoch_ms
    assert drained_at == clock.now

    clock.now += 1_000
    again = await registry.register(registration, actor="w1")
    await registry.heartbeat(*key)
    await registry.serve_local(host)
    assert await state() is WorkerState.DRAINING
    assert again.draining_since_epoch_ms == drained_at
    assert await resolved() == []

    undrained = await registry.undrain(*key, actor="ops")
    assert undrained.draining_since_epoch_ms == 0
    assert undrained.version == again.version + 1
    assert await state() is WorkerState.HEALTHY
    assert await resolved() == ["w1"]
    # Undraining a worker that is not draining changes nothing.
    assert (await registry.undrain(*key, actor="ops")).version == undrained.version
    with pytest.raises(NotFound) as unknown:
        await registry.undrain(release.tenant_id, release.pipeline_id, "nobody", actor="ops")
    assert unknown.value.reason == "WORKER_NOT_FOUND"

    with psycopg.connect(database) as conn:
        events = conn.execute(
            "SELECT event, actor, detail FROM registry_events "
            "WHERE resource_kind = 'worker' ORDER BY id"
        ).fetchall()
    assert [(e[0], e[1]) for e in events] == [
        ("WORKER_REGISTERED", "w1"),
        ("WORKER_DRAINING", "ops"),
        ("WORKER_REGISTERED", "w1"),
        ("WORKER_REVIVED", "ops"),
    ]
    assert events[2][2]["drainingSinceEpochMs"] == drained_at
    assert events[3][2] == {"undrained": True}


async def test_concurrent_activations_leave_exactly_one_active(pool: Pool, database: str) -> None:
    import asyncio
    from dataclasses import replace

    releases = PostgresReleaseStore(pool)
    base = sample_release()
    versions = [f"v{n}" for n in range(6)]
    for version in versions:
        await releases.insert(replace(base, release_version=version), actor="test")
    results = await asyncio.gather(
        *(
            releases.activate(
                base.tenant_id, base.pipeline_id, version, actor="ops", reason="", now_ms=n
            )
            for n, version in enumerate(versions)
        )
    )
    assert all(r is not None and r[1] is not None for r in results)
    with psycopg.connect(database) as conn:
        active = conn.execute("SELECT count(*) FROM releases WHERE status = 'ACTIVE'").fetchone()
        sequences = conn.execute("SELECT sequence FROM activations ORDER BY sequence").fetchall()
    assert active == (1,)
    assert [s[0] for s in sequences] == [1, 2, 3, 4, 5, 6]
