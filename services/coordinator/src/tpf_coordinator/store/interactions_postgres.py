"""Postgres store of await interactions: the pending list, completion lookups and writes.

Interactions and their await units are created by the work protocol (`work_postgres`); this
module reads them and records completions. Every write is conditional on the version read under
the row lock, as every write to execution-state tables is (CONVENTIONS §2.4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from tpf_coordinator.domain.interactions import AwaitUnitStatus, InteractionStatus
from tpf_envelope import Envelope
from tpf_store import Pool

FIND_BY_ID = "SELECT * FROM interactions WHERE tenant_id = %s AND interaction_id = %s"
FIND_BY_CORRELATION = "SELECT * FROM interactions WHERE tenant_id = %s AND correlation_id = %s"
# Locks the interaction and its await unit (FOR UPDATE covers both joined rows). Callers lock
# the execution row first, in the order cancel and the work protocol use.
LOCK_WITH_UNIT = """
SELECT i.*, u.version AS unit_version, u.status AS unit_status
FROM interactions i
JOIN await_units u ON u.tenant_id = i.tenant_id AND u.unit_id = i.unit_id
WHERE i.tenant_id = %s AND i.interaction_id = %s
FOR UPDATE
"""
COMPLETE_INTERACTION = """
UPDATE interactions SET
    status = 'COMPLETED', version = version + 1, response_type_id = %(response_type_id)s,
    response_encoding = %(response_encoding)s, response = %(response)s, actor = %(actor)s,
    completion_idempotency_key = %(idempotency_key)s, completed_at_ms = %(now_ms)s,
    updated_at_ms = %(now_ms)s
WHERE tenant_id = %(tenant_id)s AND interaction_id = %(interaction_id)s
  AND version = %(version)s
RETURNING version
"""
COMPLETE_UNIT = """
UPDATE await_units SET
    status = 'COMPLETED', version = version + 1,
    completed_item_count = completed_item_count + 1, updated_at_ms = %(now_ms)s
WHERE tenant_id = %(tenant_id)s AND unit_id = %(unit_id)s AND version = %(version)s
RETURNING version
"""
# The pending list, in TPF's order; the status list is the predicate of the partial index
# `interactions_pending`, which serves the tenant + keyset scan.
LIST_PENDING = """
SELECT * FROM interactions
WHERE tenant_id = %(tenant_id)s AND status IN ('WAITING', 'DISPATCHING', 'DISPATCHED')
  {filters}
ORDER BY deadline_ms, created_at_ms, interaction_id
LIMIT %(limit)s
"""


@dataclass(frozen=True, slots=True)
class InteractionRecord:
    tenant_id: str
    interaction_id: str
    unit_id: str
    execution_id: str
    step_id: str
    step_index: int
    output_type: str
    correlation_id: str
    status: InteractionStatus
    version: int
    request_payload: Any
    assignee: str | None
    group: str | None
    transport_type: str
    transport_metadata: dict[str, Any]
    deadline_ms: int
    created_at_ms: int
    updated_at_ms: int

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> InteractionRecord:
        return cls(
            tenant_id=row["tenant_id"],
            interaction_id=row["interaction_id"],
            unit_id=row["unit_id"],
            execution_id=row["execution_id"],
            step_id=row["step_id"],
            step_index=row["step_index"],
            output_type=row["output_type"],
            correlation_id=row["correlation_id"],
            status=InteractionStatus(row["status"]),
            version=row["version"],
            request_payload=row["request_payload"],
            assignee=row["assignee"],
            group=row["group"],
            transport_type=row["transport_type"],
            transport_metadata=row["transport_metadata"] or {},
            deadline_ms=row["deadline_ms"],
            created_at_ms=row["created_at_ms"],
            updated_at_ms=row["updated_at_ms"],
        )


@dataclass(frozen=True, slots=True)
class LockedInteraction:
    """An interaction read under its row lock, with the version and status of its await unit."""

    interaction: InteractionRecord
    unit_version: int
    unit_status: AwaitUnitStatus


@dataclass(frozen=True, slots=True)
class PendingFilter:
    """Exact-match filters (already trimmed); empty means no filter."""

    step_id: str = ""
    assignee: str = ""
    group: str = ""


# Keyset cursor of the pending list: the (deadline, created, id) of the last row of a page.
PendingCursor = tuple[int, int, str]


class StaleInteraction(Exception):
    """The interaction or its unit moved although it was locked; nothing was written."""


class PostgresInteractionStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    def connection(self) -> Any:
        return self._pool.connection()

    async def list_pending(
        self,
        tenant_id: str,
        filters: PendingFilter,
        *,
        after: PendingCursor | None,
        limit: int,
    ) -> list[InteractionRecord]:
        clauses: list[sql.Composable] = []
        params: dict[str, Any] = {"tenant_id": tenant_id, "limit": limit}
        # TPF compares trimmed values, so stored values are trimmed too.
        for column, value in (
            ("step_id", filters.step_id),
            ("assignee", filters.assignee),
            ("group", filters.group),
        ):
            if value:
                clauses.append(
                    sql.SQL("AND btrim({}) = {}").format(
                        sql.Identifier(column), sql.Placeholder(column)
                    )
                )
                params[column] = value
        if after is not None:
            clauses.append(
                sql.SQL(
                    "AND (deadline_ms, created_at_ms, interaction_id) > "
                    "(%(after_deadline)s, %(after_created)s, %(after_id)s)"
                )
            )
            params.update(after_deadline=after[0], after_created=after[1], after_id=after[2])
        query = sql.SQL(LIST_PENDING).format(filters=sql.SQL(" ").join(clauses))
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query, params)
            rows = await cur.fetchall()
        return [InteractionRecord.from_row(row) for row in rows]

    @staticmethod
    async def find(
        conn: AsyncConnection[Any],
        tenant_id: str,
        *,
        interaction_id: str = "",
        correlation_id: str = "",
    ) -> InteractionRecord | None:
        """By interaction id if given, else by correlation id; no lock."""
        if interaction_id:
            query, handle = FIND_BY_ID, interaction_id
        else:
            query, handle = FIND_BY_CORRELATION, correlation_id
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query, (tenant_id, handle))
            row = await cur.fetchone()
        return InteractionRecord.from_row(row) if row else None

    @staticmethod
    async def lock(
        conn: AsyncConnection[Any], tenant_id: str, interaction_id: str
    ) -> LockedInteraction | None:
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(LOCK_WITH_UNIT, (tenant_id, interaction_id))
            row = await cur.fetchone()
        if row is None:
            return None
        return LockedInteraction(
            InteractionRecord.from_row(row),
            unit_version=row["unit_version"],
            unit_status=AwaitUnitStatus(row["unit_status"]),
        )

    @staticmethod
    async def record_completion(
        conn: AsyncConnection[Any],
        locked: LockedInteraction,
        *,
        response: Envelope,
        actor: str,
        idempotency_key: str,
        now_ms: int,
    ) -> None:
        """Mark the interaction and its unit COMPLETED, each conditional on its locked version."""
        interaction = locked.interaction
        cursor = await conn.execute(
            COMPLETE_INTERACTION,
            {
                "response_type_id": response.payload_type_id,
                "response_encoding": response.payload_encoding,
                "response": response.payload,
                "actor": actor,
                "idempotency_key": idempotency_key or None,
                "now_ms": now_ms,
                "tenant_id": interaction.tenant_id,
                "interaction_id": interaction.interaction_id,
                "version": interaction.version,
            },
        )
        if await cursor.fetchone() is None:
            raise StaleInteraction(interaction.interaction_id)
        cursor = await conn.execute(
            COMPLETE_UNIT,
            {
                "now_ms": now_ms,
                "tenant_id": interaction.tenant_id,
                "unit_id": interaction.unit_id,
                "version": locked.unit_version,
            },
        )
        if await cursor.fetchone() is None:
            raise StaleInteraction(interaction.interaction_id)
