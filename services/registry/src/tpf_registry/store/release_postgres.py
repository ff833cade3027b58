"""Postgres ReleaseStore: all SQL of `releases`, `release_artifacts` and `activations`."""

from __future__ import annotations

import json
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from tpf_registry.domain.contract import PipelineContract
from tpf_registry.domain.descriptor import parse_descriptor
from tpf_registry.domain.release import (
    Activation,
    Release,
    ReleasePolicy,
    ReleaseStatus,
    StoredArtifact,
)
from tpf_registry.store.events import record_event
from tpf_registry.store.protocol import RegisterOutcome

INSERT_RELEASE = """
INSERT INTO releases (
    tenant_id, pipeline_id, release_version, contract_version, status, version, descriptor,
    contract, contract_raw, policy, primary_artifact_id, primary_artifact_digest,
    primary_artifact_uri, primary_artifact_size_bytes, primary_artifact_checksum,
    metadata_fingerprint, created_at_ms, updated_at_ms, activated_at_ms)
VALUES (
    %(tenant_id)s, %(pipeline_id)s, %(release_version)s, %(contract_version)s, 'REGISTERED', 0,
    %(descriptor)s, %(contract)s, %(contract_raw)s, %(policy)s, %(primary_artifact_id)s,
    %(primary_artifact_digest)s, %(primary_artifact_uri)s, %(primary_artifact_size_bytes)s,
    %(primary_artifact_checksum)s, %(metadata_fingerprint)s, %(now_ms)s, %(now_ms)s, 0)
ON CONFLICT (tenant_id, pipeline_id, release_version) DO NOTHING
RETURNING seq
"""

INSERT_ARTIFACT = """
INSERT INTO release_artifacts (
    tenant_id, pipeline_id, release_version, position, artifact_id, kind, digest, source_uri,
    stored_uri, size_bytes, has_contract)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""

SELECT_RELEASE = """
SELECT r.*, COALESCE((
    SELECT jsonb_agg(jsonb_build_object(
        'artifactId', a.artifact_id, 'kind', a.kind, 'digest', a.digest,
        'sourceUri', a.source_uri, 'storedUri', a.stored_uri, 'sizeBytes', a.size_bytes,
        'hasContract', a.has_contract) ORDER BY a.position)
    FROM release_artifacts a
    WHERE a.tenant_id = r.tenant_id AND a.pipeline_id = r.pipeline_id
      AND a.release_version = r.release_version), '[]'::jsonb) AS artifacts
FROM releases r
"""

GET_RELEASE = (
    SELECT_RELEASE + "WHERE r.tenant_id = %s AND r.pipeline_id = %s AND r.release_version = %s"
)
GET_ACTIVE_RELEASE = (
    SELECT_RELEASE + "WHERE r.tenant_id = %s AND r.pipeline_id = %s AND r.status = 'ACTIVE'"
)
LIST_RELEASES = (
    SELECT_RELEASE
    + "WHERE r.tenant_id = %s AND r.pipeline_id = %s AND r.seq > %s ORDER BY r.seq LIMIT %s"
)

# Activations of one pipeline are serialized by a transaction-scoped advisory lock, so the
# read-then-write below cannot interleave with another activation of the same pipeline.
LOCK_PIPELINE = "SELECT pg_advisory_xact_lock(hashtextextended(%s || '/' || %s, 7))"
LOCK_RELEASE_ROW = """
SELECT status, version FROM releases
WHERE tenant_id = %s AND pipeline_id = %s AND release_version = %s
FOR UPDATE
"""
SELECT_ACTIVE_FOR_UPDATE = """
SELECT release_version, version FROM releases
WHERE tenant_id = %s AND pipeline_id = %s AND status = 'ACTIVE'
FOR UPDATE
"""
DEMOTE_RELEASE = """
UPDATE releases SET status = 'REGISTERED', version = version + 1, updated_at_ms = %(now_ms)s
WHERE tenant_id = %(tenant_id)s AND pipeline_id = %(pipeline_id)s
  AND release_version = %(release_version)s AND status = 'ACTIVE'
  AND version = %(expected_version)s
RETURNING version
"""
PROMOTE_RELEASE = """
UPDATE releases SET status = 'ACTIVE', version = version + 1, updated_at_ms = %(now_ms)s,
    activated_at_ms = %(now_ms)s
WHERE tenant_id = %(tenant_id)s AND pipeline_id = %(pipeline_id)s
  AND release_version = %(release_version)s AND status = 'REGISTERED'
  AND version = %(expected_version)s
RETURNING version
"""
INSERT_ACTIVATION = """
INSERT INTO activations (
    tenant_id, pipeline_id, sequence, release_version, previous_release_version, activated_by,
    reason, activated_at_ms)
SELECT %(tenant_id)s, %(pipeline_id)s, COALESCE(MAX(sequence), 0) + 1, %(release_version)s,
       %(previous)s, %(actor)s, %(reason)s, %(now_ms)s
FROM activations WHERE tenant_id = %(tenant_id)s AND pipeline_id = %(pipeline_id)s
RETURNING *
"""
LIST_ACTIVATIONS = """
SELECT * FROM activations
WHERE tenant_id = %s AND pipeline_id = %s AND sequence < %s
ORDER BY sequence DESC LIMIT %s
"""


def _release_from_row(row: dict[str, Any]) -> Release:
    contract_json = row["contract"]
    return Release(
        tenant_id=row["tenant_id"],
        pipeline_id=row["pipeline_id"],
        release_version=row["release_version"],
        contract_version=row["contract_version"],
        status=ReleaseStatus(row["status"]),
        version=row["version"],
        descriptor=parse_descriptor(json.dumps(row["descriptor"])),
        contract=PipelineContract.from_record_json(contract_json) if contract_json else None,
        policy=ReleasePolicy.from_json(row["policy"]),
        artifacts=tuple(
            StoredArtifact(
                artifact_id=a["artifactId"],
                kind=a["kind"],
                digest=a["digest"],
                source_uri=a["sourceUri"],
                stored_uri=a["storedUri"],
                size_bytes=a["sizeBytes"],
                has_contract=a["hasContract"],
            )
            for a in row["artifacts"]
        ),
        primary_artifact_id=row["primary_artifact_id"],
        primary_artifact_digest=row["primary_artifact_digest"],
        primary_artifact_uri=row["primary_artifact_uri"],
        primary_artifact_size_bytes=row["primary_artifact_size_bytes"],
        primary_artifact_checksum=row["primary_artifact_checksum"],
        created_at_epoch_ms=row["created_at_ms"],
        updated_at_epoch_ms=row["updated_at_ms"],
        activated_at_epoch_ms=row["activated_at_ms"],
    )


def _activation_from_row(row: dict[str, Any]) -> Activation:
    return Activation(
        tenant_id=row["tenant_id"],
        pipeline_id=row["pipeline_id"],
        sequence=row["sequence"],
        release_version=row["release_version"],
        previous_release_version=row["previous_release_version"],
        activated_by=row["activated_by"],
        reason=row["reason"],
        activated_at_epoch_ms=row["activated_at_ms"],
    )


class PostgresReleaseStore:
    """ReleaseStore on Postgres."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool

    async def insert(
        self, release: Release, *, actor: str, contract_raw: bytes | None = None
    ) -> RegisterOutcome:
        async with self._pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                INSERT_RELEASE,
                {
                    "tenant_id": release.tenant_id,
                    "pipeline_id": release.pipeline_id,
                    "release_version": release.release_version,
                    "contract_version": release.contract_version,
                    "descriptor": Jsonb(release.descriptor.to_json()),
                    "contract": Jsonb(release.contract.to_record_json())
                    if release.contract
                    else None,
                    "contract_raw": contract_raw,
                    "policy": Jsonb(release.policy.to_json()),
                    "primary_artifact_id": release.primary_artifact_id,
                    "primary_artifact_digest": release.primary_artifact_digest,
                    "primary_artifact_uri": release.primary_artifact_uri,
                    "primary_artifact_size_bytes": release.primary_artifact_size_bytes,
                    "primary_artifact_checksum": release.primary_artifact_checksum,
                    "metadata_fingerprint": release.metadata_fingerprint,
                    "now_ms": release.created_at_epoch_ms,
                },
            )
            if await cursor.fetchone() is None:
                existing = await self._get(
                    conn, release.tenant_id, release.pipeline_id, release.release_version
                )
                assert existing is not None  # the conflicting row exists in this snapshot
                return RegisterOutcome(existing, created=False)
            async with conn.cursor() as cur:
                await cur.executemany(
                    INSERT_ARTIFACT,
                    [
                        (
                            release.tenant_id,
                            release.pipeline_id,
                            release.release_version,
                            position,
                            a.artifact_id,
                            a.kind,
                            a.digest,
                            a.source_uri,
                            a.stored_uri,
                            a.size_bytes,
                            a.has_contract,
                        )
                        for position, a in enumerate(release.artifacts)
                    ],
                )
            await record_event(
                conn,
                tenant_id=release.tenant_id,
                pipeline_id=release.pipeline_id,
                kind="release",
                resource_id=release.release_version,
                event="REGISTERED",
                version=0,
                actor=actor,
                now_ms=release.created_at_epoch_ms,
                detail={"fingerprint": release.metadata_fingerprint},
            )
            stored = await self._get(
                conn, release.tenant_id, release.pipeline_id, release.release_version
            )
            assert stored is not None
            return RegisterOutcome(stored, created=True)

    async def _get(
        self, conn: AsyncConnection[Any], tenant_id: str, pipeline_id: str, version: str
    ) -> Release | None:
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(GET_RELEASE, (tenant_id, pipeline_id, version))
            row = await cur.fetchone()
        return _release_from_row(row) if row else None

    async def get(self, tenant_id: str, pipeline_id: str, release_version: str) -> Release | None:
        async with self._pool.connection() as conn:
            return await self._get(conn, tenant_id, pipeline_id, release_version)

    async def get_active(self, tenant_id: str, pipeline_id: str) -> Release | None:
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(GET_ACTIVE_RELEASE, (tenant_id, pipeline_id))
            row = await cur.fetchone()
        return _release_from_row(row) if row else None

    async def list_after(
        self, tenant_id: str, pipeline_id: str, *, after_seq: int, limit: int
    ) -> list[tuple[int, Release]]:
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(LIST_RELEASES, (tenant_id, pipeline_id, after_seq, limit))
            rows = await cur.fetchall()
        return [(row["seq"], _release_from_row(row)) for row in rows]

    async def activate(
        self,
        tenant_id: str,
        pipeline_id: str,
        release_version: str,
        *,
        actor: str,
        reason: str,
        now_ms: int,
    ) -> tuple[Release, Activation | None] | None:
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(LOCK_PIPELINE, (tenant_id, pipeline_id))
            target = await (
                await conn.execute(LOCK_RELEASE_ROW, (tenant_id, pipeline_id, release_version))
            ).fetchone()
            if target is None:
                return None
            status, target_version = target
            if status == ReleaseStatus.ACTIVE:
                current = await self._get(conn, tenant_id, pipeline_id, release_version)
                assert current is not None
                return current, None
            previous = await (
                await conn.execute(SELECT_ACTIVE_FOR_UPDATE, (tenant_id, pipeline_id))
            ).fetchone()
            previous_version = ""
            if previous is not None:
                previous_version, previous_row_version = previous
                demoted = await (
                    await conn.execute(
                        DEMOTE_RELEASE,
                        {
                            "tenant_id": tenant_id,
                            "pipeline_id": pipeline_id,
                            "release_version": previous_version,
                            "expected_version": previous_row_version,
                            "now_ms": now_ms,
                        },
                    )
                ).fetchone()
                assert demoted is not None  # row locked above, so the version cannot move
                await record_event(
                    conn,
                    tenant_id=tenant_id,
                    pipeline_id=pipeline_id,
                    kind="release",
                    resource_id=previous_version,
                    event="DEMOTED",
                    version=demoted[0],
                    actor=actor,
                    now_ms=now_ms,
                    detail={"replacedBy": release_version},
                )
            promoted = await (
                await conn.execute(
                    PROMOTE_RELEASE,
                    {
                        "tenant_id": tenant_id,
                        "pipeline_id": pipeline_id,
                        "release_version": release_version,
                        "expected_version": target_version,
                        "now_ms": now_ms,
                    },
                )
            ).fetchone()
            assert promoted is not None
            await record_event(
                conn,
                tenant_id=tenant_id,
                pipeline_id=pipeline_id,
                kind="release",
                resource_id=release_version,
                event="ACTIVATED",
                version=promoted[0],
                actor=actor,
                now_ms=now_ms,
                detail={"previous": previous_version, "reason": reason},
            )
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(
                    INSERT_ACTIVATION,
                    {
                        "tenant_id": tenant_id,
                        "pipeline_id": pipeline_id,
                        "release_version": release_version,
                        "previous": previous_version,
                        "actor": actor,
                        "reason": reason,
                        "now_ms": now_ms,
                    },
                )
                activation_row = await cur.fetchone()
            assert activation_row is not None
            release = await self._get(conn, tenant_id, pipeline_id, release_version)
            assert release is not None
            return release, _activation_from_row(activation_row)

    async def list_activations_before(
        self, tenant_id: str, pipeline_id: str, *, before_sequence: int | None, limit: int
    ) -> list[Activation]:
        before = before_sequence if before_sequence is not None else 2**62
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(LIST_ACTIVATIONS, (tenant_id, pipeline_id, before, limit))
            rows = await cur.fetchall()
        return [_activation_from_row(row) for row in rows]
