"""Postgres WorkerStore: all SQL of `workers`."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from tpf_registry.domain.worker import (
    HostDeclaration,
    Worker,
    WorkerProtocol,
    WorkerRegistration,
)
from tpf_registry.store.events import record_event

UPSERT_WORKER = """
INSERT INTO workers (
    tenant_id, pipeline_id, worker_id, contract_version, release_version, protocol, endpoint,
    artifact_id, artifact_digest, registered_at_ms, last_heartbeat_at_ms, draining_since_ms,
    version)
VALUES (%(tenant_id)s, %(pipeline_id)s, %(worker_id)s, %(contract_version)s,
        %(release_version)s, %(protocol)s, %(endpoint)s, %(artifact_id)s, %(artifact_digest)s,
        %(now_ms)s, %(now_ms)s, 0, 0)
-- draining_since_ms is left as it is: a drain outlives the worker's process registering again
-- (a restart); only an operator's undrain ends it.
ON CONFLICT (tenant_id, pipeline_id, worker_id) DO UPDATE SET
    contract_version = EXCLUDED.contract_version,
    release_version = EXCLUDED.release_version,
    protocol = EXCLUDED.protocol,
    endpoint = EXCLUDED.endpoint,
    artifact_id = EXCLUDED.artifact_id,
    artifact_digest = EXCLUDED.artifact_digest,
    registered_at_ms = EXCLUDED.registered_at_ms,
    last_heartbeat_at_ms = EXCLUDED.last_heartbeat_at_ms,
    version = workers.version + 1
RETURNING *
"""
# Heartbeats refresh liveness only; they do not bump the record version (no state changes).
HEARTBEAT_WORKER = """
UPDATE workers SET last_heartbeat_at_ms = GREATEST(last_heartbeat_at_ms, %s)
WHERE tenant_id = %s AND pipeline_id = %s AND worker_id = %s
RETURNING *
"""
GET_WORKER = "SELECT * FROM workers WHERE tenant_id = %s AND pipeline_id = %s AND worker_id = %s"
DRAIN_WORKER = """
UPDATE workers SET draining_since_ms = %s, version = version + 1
WHERE tenant_id = %s AND pipeline_id = %s AND worker_id = %s AND draining_since_ms = 0
RETURNING *
"""
UNDRAIN_WORKER = """
UPDATE workers SET draining_since_ms = 0, version = version + 1
WHERE tenant_id = %s AND pipeline_id = %s AND worker_id = %s AND draining_since_ms > 0
RETURNING *
"""
DELETE_WORKER = """
DELETE FROM workers WHERE tenant_id = %s AND pipeline_id = %s AND worker_id = %s RETURNING *
"""
LIST_WORKERS = """
SELECT * FROM workers
WHERE tenant_id = %(tenant_id)s AND pipeline_id = %(pipeline_id)s
  AND (%(contract_version)s = '' OR contract_version = %(contract_version)s)
  AND (%(release_version)s = '' OR release_version = %(release_version)s)
  AND worker_id > %(after)s
ORDER BY worker_id LIMIT %(limit)s
"""
# A live host declaration that can serve the `local` record `w` (its release joined as `r`): same
# pipeline and contract, the record's tenant and release in the declaration's scope, and artifact
# digests equal wherever both sides name one. `%(host_id)s` '' means any host.
_HOST_SERVES = """
EXISTS (
    SELECT 1 FROM local_worker_hosts h
    JOIN releases r ON r.tenant_id = w.tenant_id AND r.pipeline_id = w.pipeline_id
                   AND r.release_version = w.release_version
    WHERE (%(host_id)s = '' OR h.host_id = %(host_id)s)
      AND h.expires_at_ms > %(now_ms)s
      AND h.pipeline_id = w.pipeline_id AND h.contract_version = w.contract_version
      AND (h.tenant_ids IS NULL OR w.tenant_id = ANY (h.tenant_ids))
      AND (h.release_versions IS NULL OR w.release_version = ANY (h.release_versions))
      AND (h.artifact_digest = '' OR r.primary_artifact_digest = ''
           OR r.primary_artifact_digest = h.artifact_digest)
      AND (h.artifact_digest = '' OR w.artifact_digest = ''
           OR w.artifact_digest = h.artifact_digest)
)"""
# A `local` record counts only while a dispatcher serves it (ServeLocalWorkers).
WORKERS_FOR_RELEASE = f"""
SELECT * FROM workers w
WHERE tenant_id = %(tenant_id)s AND pipeline_id = %(pipeline_id)s
  AND release_version = %(release_version)s AND draining_since_ms = 0
  AND last_heartbeat_at_ms >= %(since_ms)s
  AND (%(protocol)s = '' OR protocol = %(protocol)s)
  AND (protocol <> 'local' OR {_HOST_SERVES})
ORDER BY last_heartbeat_at_ms DESC, worker_id
"""
# Expired declarations of any host go too: the table holds live declarations only.
DROP_HOST_DECLARATIONS = """
DELETE FROM local_worker_hosts WHERE host_id = %s OR expires_at_ms <= %s
"""
INSERT_HOST_DECLARATION = """
INSERT INTO local_worker_hosts (
    host_id, pipeline_id, contract_version, artifact_digest, tenant_ids, release_versions,
    expires_at_ms)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (host_id, pipeline_id, contract_version, artifact_digest) DO UPDATE SET
    tenant_ids = EXCLUDED.tenant_ids,
    release_versions = EXCLUDED.release_versions,
    expires_at_ms = EXCLUDED.expires_at_ms
"""
# Rows are locked in key order, so dispatchers serving the same records cannot deadlock.
HEARTBEAT_SERVED = f"""
WITH served AS (
    SELECT w.tenant_id, w.pipeline_id, w.worker_id, w.last_heartbeat_at_ms AS before_ms
    FROM workers w
    WHERE w.protocol = 'local' AND {_HOST_SERVES}
    ORDER BY w.tenant_id, w.pipeline_id, w.worker_id
    FOR UPDATE OF w
)
UPDATE workers w SET last_heartbeat_at_ms = GREATEST(w.last_heartbeat_at_ms, %(now_ms)s)
FROM served s
WHERE w.tenant_id = s.tenant_id AND w.pipeline_id = s.pipeline_id AND w.worker_id = s.worker_id
RETURNING w.*, s.before_ms
"""


def _worker_from_row(row: dict[str, Any]) -> Worker:
    return Worker(
        tenant_id=row["tenant_id"],
        pipeline_id=row["pipeline_id"],
        worker_id=row["worker_id"],
        contract_version=row["contract_version"],
        release_version=row["release_version"],
        protocol=WorkerProtocol(row["protocol"]),
        endpoint=row["endpoint"],
        artifact_id=row["artifact_id"],
        artifact_digest=row["artifact_digest"],
        registered_at_epoch_ms=row["registered_at_ms"],
        last_heartbeat_at_epoch_ms=row["last_heartbeat_at_ms"],
        draining_since_epoch_ms=row["draining_since_ms"],
        version=row["version"],
    )


async def _worker_event(
    conn: AsyncConnection[Any],
    version: int,
    event: str,
    worker: Worker,
    *,
    actor: str,
    now_ms: int,
    detail: dict[str, Any] | None = None,
) -> None:
    await record_event(
        conn,
        tenant_id=worker.tenant_id,
        pipeline_id=worker.pipeline_id,
        kind="worker",
        resource_id=worker.worker_id,
        event=event,
        version=version,
        actor=actor,
        now_ms=now_ms,
        detail=detail,
    )


class PostgresWorkerStore:
    """WorkerStore on Postgres."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool

    async def upsert(self, registration: WorkerRegistration, *, actor: str, now_ms: int) -> Worker:
        async with (
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=dict_row) as cur,
        ):
            await cur.execute(
                UPSERT_WORKER,
                {
                    "tenant_id": registration.tenant_id,
                    "pipeline_id": registration.pipeline_id,
                    "worker_id": registration.worker_id,
                    "contract_version": registration.contract_version,
                    "release_version": registration.release_version,
                    "protocol": registration.protocol.value,
                    "endpoint": registration.endpoint,
                    "artifact_id": registration.artifact_id,
                    "artifact_digest": registration.artifact_digest,
                    "now_ms": now_ms,
                },
            )
            row = await cur.fetchone()
            assert row is not None
            worker = _worker_from_row(row)
            await _worker_event(
                conn,
                worker.version,
                "WORKER_REGISTERED",
                worker,
                actor=actor,
                now_ms=now_ms,
                detail={
                    "releaseVersion": worker.release_version,
                    "protocol": worker.protocol.value,
                    "endpoint": worker.endpoint,
                    "drainingSinceEpochMs": worker.draining_since_epoch_ms,
                },
            )
            return worker

    async def heartbeat(
        self, tenant_id: str, pipeline_id: str, worker_id: str, *, now_ms: int, revived: bool
    ) -> Worker | None:
        async with (
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=dict_row) as cur,
        ):
            await cur.execute(HEARTBEAT_WORKER, (now_ms, tenant_id, pipeline_id, worker_id))
            row = await cur.fetchone()
            if row is None:
                return None
            worker = _worker_from_row(row)
            if revived:
                await _worker_event(
                    conn, worker.version, "WORKER_REVIVED", worker, actor=worker_id, now_ms=now_ms
                )
            return worker

    async def get(self, tenant_id: str, pipeline_id: str, worker_id: str) -> Worker | None:
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(GET_WORKER, (tenant_id, pipeline_id, worker_id))
            row = await cur.fetchone()
        return _worker_from_row(row) if row else None

    async def drain(
        self, tenant_id: str, pipeline_id: str, worker_id: str, *, actor: str, now_ms: int
    ) -> Worker | None:
        async with (
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=dict_row) as cur,
        ):
            await cur.execute(DRAIN_WORKER, (now_ms, tenant_id, pipeline_id, worker_id))
            row = await cur.fetchone()
            if row is None:
                # Unknown, or already draining: keep the original drain time (idempotent).
                await cur.execute(GET_WORKER, (tenant_id, pipeline_id, worker_id))
                existing = await cur.fetchone()
                return _worker_from_row(existing) if existing else None
            worker = _worker_from_row(row)
            await _worker_event(
                conn, worker.version, "WORKER_DRAINING", worker, actor=actor, now_ms=now_ms
            )
            return worker

    async def undrain(
        self, tenant_id: str, pipeline_id: str, worker_id: str, *, actor: str, now_ms: int
    ) -> Worker | None:
        async with (
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=dict_row) as cur,
        ):
            await cur.execute(UNDRAIN_WORKER, (tenant_id, pipeline_id, worker_id))
            row = await cur.fetchone()
            if row is None:
                # Unknown, or not draining: nothing changes (idempotent).
                await cur.execute(GET_WORKER, (tenant_id, pipeline_id, worker_id))
                existing = await cur.fetchone()
                return _worker_from_row(existing) if existing else None
            worker = _worker_from_row(row)
            # The events table has no WORKER_UNDRAINED (its CHECK lists the events, and a new
            # one needs a migration): the worker is back, and the detail says why.
            await _worker_event(
                conn,
                worker.version,
                "WORKER_REVIVED",
                worker,
                actor=actor,
                now_ms=now_ms,
                detail={"undrained": True},
            )
            return worker

    async def delete(
        self, tenant_id: str, pipeline_id: str, worker_id: str, *, actor: str, now_ms: int
    ) -> Worker | None:
        async with (
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=dict_row) as cur,
        ):
            await cur.execute(DELETE_WORKER, (tenant_id, pipeline_id, worker_id))
            row = await cur.fetchone()
            if row is None:
                return None
            worker = _worker_from_row(row)
            await _worker_event(
                conn, worker.version + 1, "WORKER_DEREGISTERED", worker, actor=actor, now_ms=now_ms
            )
            return worker

    async def list_after(
        self,
        tenant_id: str,
        pipeline_id: str,
        *,
        contract_version: str,
        release_version: str,
        after_worker_id: str,
        limit: int,
    ) -> list[Worker]:
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                LIST_WORKERS,
                {
                    "tenant_id": tenant_id,
                    "pipeline_id": pipeline_id,
                    "contract_version": contract_version,
                    "release_version": release_version,
                    "after": after_worker_id,
                    "limit": limit,
                },
            )
            rows = await cur.fetchall()
        return [_worker_from_row(row) for row in rows]

    async def for_release(
        self,
        tenant_id: str,
        pipeline_id: str,
        release_version: str,
        *,
        protocol: WorkerProtocol | None,
        heartbeat_since_ms: int,
        now_ms: int,
    ) -> list[Worker]:
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                WORKERS_FOR_RELEASE,
                {
                    "tenant_id": tenant_id,
                    "pipeline_id": pipeline_id,
                    "release_version": release_version,
                    "protocol": protocol.value if protocol else "",
                    "since_ms": heartbeat_since_ms,
                    "host_id": "",
                    "now_ms": now_ms,
                },
            )
            rows = await cur.fetchall()
        return [_worker_from_row(row) for row in rows]

    async def serve_local(
        self, declaration: HostDeclaration, *, now_ms: int, revive_before_ms: int | None
    ) -> list[Worker]:
        async with (
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=dict_row) as cur,
        ):
            await cur.execute(DROP_HOST_DECLARATIONS, (declaration.host_id, now_ms))
            if not declaration.pipelines:
                return []
            expires_at_ms = now_ms + declaration.ttl_ms
            tenants = list(declaration.tenant_ids) if declaration.tenant_ids is not None else None
            releases = (
                list(declaration.release_versions)
                if declaration.release_versions is not None
                else None
            )
            await cur.executemany(
                INSERT_HOST_DECLARATION,
                [
                    (
                        declaration.host_id,
                        hosted.pipeline_id,
                        hosted.contract_version,
                        hosted.artifact_digest,
                        tenants,
                        releases,
                        expires_at_ms,
                    )
                    for hosted in declaration.pipelines
                ],
            )
            await cur.execute(HEARTBEAT_SERVED, {"host_id": declaration.host_id, "now_ms": now_ms})
            rows = await cur.fetchall()
            served = []
            for row in rows:
                worker = _worker_from_row(row)
                served.append(worker)
                if (
                    revive_before_ms is not None
                    and row["before_ms"] < revive_before_ms
                    and worker.draining_since_epoch_ms == 0
                ):
                    await _worker_event(
                        conn,
                        worker.version,
                        "WORKER_REVIVED",
                        worker,
                        actor=declaration.host_id,
                        now_ms=now_ms,
                        detail={"servedBy": declaration.host_id},
                    )
        return sorted(served, key=lambda w: (w.tenant_id, w.pipeline_id, w.worker_id))
