"""Postgres side of the sweeper: expired leases, overdue awaits and expired interactions, in
bounded batches, inside the pass's transaction."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from tpf_coordinator.store.records import ExecutionRecord, OverdueInteraction
from tpf_coordinator.store.transactions_postgres import PostgresTransactions

# One sweeper at a time across replicas: the transaction that sweeps holds this lock.
TRY_LEAD = "SELECT pg_try_advisory_xact_lock(hashtextextended('tpf-coordinator-sweeper', 0))"

EXPIRED_LEASES = """
SELECT * FROM executions
WHERE status = 'RUNNING' AND lease_expires_at_ms <= %s
ORDER BY lease_expires_at_ms
LIMIT %s
FOR UPDATE SKIP LOCKED
"""

OVERDUE_INTERACTIONS = """
SELECT tenant_id, interaction_id, unit_id, execution_id FROM interactions
WHERE status IN ('WAITING', 'DISPATCHING', 'DISPATCHED') AND deadline_ms <= %s
ORDER BY deadline_ms
LIMIT %s
FOR UPDATE SKIP LOCKED
"""
TIME_OUT_INTERACTION = """
UPDATE interactions SET status = 'TIMED_OUT', version = version + 1, updated_at_ms = %s
WHERE tenant_id = %s AND interaction_id = %s AND status IN ('WAITING', 'DISPATCHING', 'DISPATCHED')
"""
TIME_OUT_UNIT = """
UPDATE await_units SET status = 'TIMED_OUT', version = version + 1, updated_at_ms = %s
WHERE tenant_id = %s AND unit_id = %s AND status = 'WAITING_EXTERNAL'
"""
WAITING_ON_UNIT = """
SELECT * FROM executions
WHERE tenant_id = %s AND execution_id = %s AND status = 'WAITING_EXTERNAL' AND await_unit_id = %s
FOR UPDATE
"""

# Interactions past their record TTL (deadline + TTL <= now) become EXPIRED. Only ended ones
# are taken: a pending interaction is past its deadline too, so the timeout pass ends it first
# (failing its execution with AWAIT_TIMEOUT) and a later pass expires it. The status list is the
# predicate of the partial index `interactions_expirable`.
EXPIRE_INTERACTIONS = """
WITH due AS (
    SELECT tenant_id, interaction_id FROM interactions
    WHERE status IN ('COMPLETED', 'FAILED', 'TIMED_OUT', 'CANCELLED') AND deadline_ms <= %s
    ORDER BY deadline_ms
    LIMIT %s
    FOR UPDATE SKIP LOCKED
)
UPDATE interactions i SET status = 'EXPIRED', version = i.version + 1, updated_at_ms = %s
FROM due
WHERE i.tenant_id = due.tenant_id AND i.interaction_id = due.interaction_id
"""


class PostgresSweeperStore(PostgresTransactions):
    @staticmethod
    async def try_lead(conn: AsyncConnection[Any]) -> bool:
        row = await (await conn.execute(TRY_LEAD)).fetchone()
        return bool(row and row[0])

    @staticmethod
    async def expired_leases(
        conn: AsyncConnection[Any], *, now_ms: int, limit: int
    ) -> list[ExecutionRecord]:
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(EXPIRED_LEASES, (now_ms, limit))
            rows = await cur.fetchall()
        return [ExecutionRecord.from_row(row) for row in rows]

    @staticmethod
    async def overdue_interactions(
        conn: AsyncConnection[Any], *, now_ms: int, limit: int
    ) -> list[OverdueInteraction]:
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(OVERDUE_INTERACTIONS, (now_ms, limit))
            rows = await cur.fetchall()
        return [
            OverdueInteraction(
                tenant_id=row["tenant_id"],
                interaction_id=row["interaction_id"],
                unit_id=row["unit_id"],
                execution_id=row["execution_id"],
            )
            for row in rows
        ]

    @staticmethod
    async def time_out_interaction(
        conn: AsyncConnection[Any], overdue: OverdueInteraction, *, now_ms: int
    ) -> ExecutionRecord | None:
        """Mark the interaction and its unit TIMED_OUT; return the execution still waiting on
        it."""
        tenant_id = overdue.tenant_id
        await conn.execute(TIME_OUT_INTERACTION, (now_ms, tenant_id, overdue.interaction_id))
        await conn.execute(TIME_OUT_UNIT, (now_ms, tenant_id, overdue.unit_id))
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(WAITING_ON_UNIT, (tenant_id, overdue.execution_id, overdue.unit_id))
            waiting = await cur.fetchone()
        return ExecutionRecord.from_row(waiting) if waiting else None

    @staticmethod
    async def expire_interactions(
        conn: AsyncConnection[Any], *, expired_before_ms: int, now_ms: int, limit: int
    ) -> int:
        """Mark up to `limit` ended interactions whose deadline is at or before
        `expired_before_ms` (now - the record TTL) EXPIRED; return how many."""
        cursor = await conn.execute(EXPIRE_INTERACTIONS, (expired_before_ms, limit, now_ms))
        return cursor.rowcount
