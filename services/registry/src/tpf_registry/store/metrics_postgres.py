"""The reads behind the registry's gauges: active releases and every worker record's columns
that decide its state. Both tables hold one row per release or worker, not per call."""

from __future__ import annotations

from dataclasses import dataclass

from tpf_store import Pool

ACTIVE_RELEASES = """
SELECT tenant_id, pipeline_id, release_version FROM releases WHERE status = 'ACTIVE'
"""
WORKER_LIVENESS = """
SELECT tenant_id, pipeline_id, release_version, draining_since_ms, last_heartbeat_at_ms
FROM workers
"""


@dataclass(frozen=True, slots=True)
class WorkerLiveness:
    tenant_id: str
    pipeline_id: str
    release_version: str
    draining_since_ms: int
    last_heartbeat_ms: int


@dataclass(frozen=True, slots=True)
class RegistrySnapshot:
    active_releases: list[tuple[str, str, str]]
    workers: list[WorkerLiveness]


async def read_registry_snapshot(pool: Pool) -> RegistrySnapshot:
    async with pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
        await cur.execute(ACTIVE_RELEASES)
        active = [(str(t), str(p), str(r)) for t, p, r in await cur.fetchall()]
        await cur.execute(WORKER_LIVENESS)
        workers = [
            WorkerLiveness(str(t), str(p), str(r), int(d), int(h))
            for t, p, r, d, h in await cur.fetchall()
        ]
    return RegistrySnapshot(active, workers)
