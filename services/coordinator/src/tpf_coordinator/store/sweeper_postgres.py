"""Postgres side of the sweeper: expired leases, overdue awaits and expired interactions, in
bounded batches, inside the pass's transaction."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from tpf_coordinator.domain.interactions import (
    PENDING_INTERACTION_STATUSES,
    AwaitUnitStatus,
    InteractionStatus,
)
from tpf_coordinator.domain.model import ExecutionStatus
from tpf_coordinator.store.records import ExecutionRecord, OverdueInteraction
from tpf_coordinator.store.status_sql import EXPIRABLE_INTERACTIONS, PENDING_INTERACTIONS, RUNNING
from tpf_coordinator.store.transactions_postgres import PostgresTransactions

# One sweeper at a time across replicas: the transaction that sweeps holds this lock.
TRY_LEAD = "SELECT pg_try_advisory_xact_lock(hashtextextended('tpf-coordinator-sweeper', 0))"

# The status conditions of the selecting queries are partial index predicates (literals, see
# status_sql); the statuses written or matched by primary key are parameters.
EXPIRED_LEASES = f"""
SELECT * FROM executions
WHERE status = {RUNNING} AND lease_expires_at_ms <= %s
ORDER BY lease_expires_at_ms
LIMIT %s
FOR UPDATE SKIP LOCKED
"""

OVERDUE_INTERACTIONS = f"""
SELECT tenant_id, interaction_id, unit_id, execution_id FROM interactions
WHERE status IN ({PENDING_INTERACTIONS}) AND deadline_ms <= %s
ORDER BY deadline_ms
LIMIT %s
FOR UPDATE SKIP LOCKED
"""
TIME_OUT_INTERACTION = """
UPDATE interactions SET status = %(timed_out)s, version = version + 1, updated_at_ms = %(now_ms)s
WHERE tenant_id = %(tenant_id)s AND interaction_id = %(interaction_id)s
  AND status = ANY(%(pending)s)
"""
TIME_OUT_UNIT = """
UPDATE await_units SET status = %(timed_out)s, version = version + 1, updated_at_ms = %(now_ms)s
WHERE tenant_id = %(tenant_id)s AND unit_id = %(unit_id)s AND status = %(waiting)s
"""
WAITING_ON_UNIT = """
SELECT * FROM executions
WHERE tenant_id = %(tenant_id)s AND execution_id = %(execution_id)s AND status = %(waiting)s
  AND await_unit_id = %(unit_id)s
FOR UPDATE
"""

# Interactions past their record TTL (deadline + TTL <= now) become EXPIRED. Only ended ones
# are taken: a pending interaction is past its deadline too, so the timeout pass ends it first
# (failing its execution with AWAIT_TIMEOUT) and a later pass expires it. The status list is the
# predicate of the partial index `interactions_expirable`.
EXPIRE_INTERACTIONS = f"""
WITH due AS (
    SELECT tenant_id, interaction_id FROM interactions
    WHERE status IN ({EXPIRABLE_INTERACTIONS}) AND deadline_ms <= %(expired_before_ms)s
    ORDER BY deadline_ms
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE interactions i SET status = %(expired)s, version = i.version + 1,
    updated_at_ms = %(now_ms)s
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
        params = {
            "tenant_id": overdue.tenant_id,
            "interaction_id": overdue.interaction_id,
            "unit_id": overdue.unit_id,
            "execution_id": overdue.execution_id,
            "now_ms": now_ms,
            "pending": [status.value for status in PENDING_INTERACTION_STATUSES],
            "timed_out": InteractionStatus.TIMED_OUT.value,
            "waiting": ExecutionStatus.WAITING_EXTERNAL.value,
        }
        await conn.execute(TIME_OUT_INTERACTION, params)
        await conn.execute(TIME_OUT_UNIT, {**params, "timed_out": AwaitUnitStatus.TIMED_OUT.value})
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(WAITING_ON_UNIT, params)
            waiting = await cur.fetchone()
        return ExecutionRecord.from_row(waiting) if waiting else None

    @staticmethod
    async def expire_interactions(
        conn: AsyncConnection[Any], *, expired_before_ms: int, now_ms: int, limit: int
    ) -> int:
        """Mark up to `limit` ended interactions whose deadline is at or before
        `expired_before_ms` (now - the record TTL) EXPIRED; return how many."""
        cursor = await conn.execute(
            EXPIRE_INTERACTIONS,
            {
                "expired_before_ms": expired_before_ms,
                "limit": limit,
                "now_ms": now_ms,
                "expired": InteractionStatus.EXPIRED.value,
            },
        )
        return cursor.rowcount
