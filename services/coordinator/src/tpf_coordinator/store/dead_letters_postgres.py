"""Postgres store of dead letters: listing, the open ones a bulk redrive selects, and marking a
redriven execution's dead letters.

Dead letters are written by `transitions_sql.write_transition` with the FAILED transition; here
they are only read and, on redrive, stamped (`redriven_at_ms`, `redriven_by`, `redrive_reason`)
in the redrive's own transaction, conditional on the version the redrive was decided on.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from tpf_coordinator.store.protocol import DeadLetterCursor, DeadLetterFilter
from tpf_coordinator.store.records import DeadLetterRecord, OpenDeadLetters
from tpf_store import Pool

# Dead letters with their execution's idempotency key (the DLQ envelope's `executionKey`).
LIST_DEAD_LETTERS = """
SELECT d.*, e.idempotency_key
FROM dead_letters d
LEFT JOIN executions e ON e.tenant_id = d.tenant_id AND e.execution_id = d.execution_id
WHERE {where}
ORDER BY d.created_at_ms DESC, d.id DESC
LIMIT %(limit)s
"""
COUNT_OPEN_EXECUTIONS = """
SELECT count(DISTINCT d.execution_id) FROM dead_letters d WHERE {where}
"""
# One row per execution with open dead letters, oldest first; `execution_version` is what the
# newest open one recorded, the version a redrive of it expects.
OPEN_EXECUTIONS = """
SELECT d.execution_id, min(d.created_at_ms) AS first_created_at_ms, min(d.id) AS first_id,
       max(d.execution_version) AS execution_version
FROM dead_letters d
WHERE {where}
GROUP BY d.execution_id
HAVING %(after_created)s::bigint IS NULL
    OR (min(d.created_at_ms), min(d.id)) > (%(after_created)s::bigint, %(after_id)s::bigint)
ORDER BY first_created_at_ms, first_id
LIMIT %(limit)s
"""
# Only dead letters written at or before the version the redrive moved the execution from.
MARK_REDRIVEN = """
UPDATE dead_letters
SET redriven_at_ms = %(now_ms)s, redriven_by = %(by)s, redrive_reason = %(reason)s
WHERE tenant_id = %(tenant_id)s AND execution_id = %(execution_id)s
  AND redriven_at_ms IS NULL AND execution_version <= %(before_version)s
"""


def _where(
    tenant_id: str, filters: DeadLetterFilter, *, open_only: bool
) -> tuple[sql.Composed, dict[str, Any]]:
    clauses: list[sql.Composable] = [sql.SQL("d.tenant_id = %(tenant_id)s")]
    params: dict[str, Any] = {"tenant_id": tenant_id}
    for column, value in (
        ("pipeline_id", filters.pipeline_id),
        ("release_version", filters.release_version),
        ("error_code", filters.error_code),
        ("execution_id", filters.execution_id),
    ):
        if value:
            clauses.append(
                sql.SQL("d.{} = {}").format(sql.Identifier(column), sql.Placeholder(column))
            )
            params[column] = value
    if filters.terminal_reasons:
        clauses.append(sql.SQL("d.terminal_reason = ANY(%(terminal_reasons)s)"))
        params["terminal_reasons"] = list(filters.terminal_reasons)
    if filters.created_after_ms is not None:
        clauses.append(sql.SQL("d.created_at_ms >= %(created_after_ms)s"))
        params["created_after_ms"] = filters.created_after_ms
    if filters.created_before_ms is not None:
        clauses.append(sql.SQL("d.created_at_ms < %(created_before_ms)s"))
        params["created_before_ms"] = filters.created_before_ms
    if open_only or not filters.include_redriven:
        clauses.append(sql.SQL("d.redriven_at_ms IS NULL"))
    return sql.SQL(" AND ").join(clauses), params


class PostgresDeadLetterStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def list_dead_letters(
        self,
        tenant_id: str,
        filters: DeadLetterFilter,
        *,
        before: DeadLetterCursor | None,
        limit: int,
    ) -> list[DeadLetterRecord]:
        """Newest first; `before` is the cursor of the last dead letter of the previous page."""
        where, params = _where(tenant_id, filters, open_only=False)
        if before is not None:
            where = sql.SQL(" AND ").join(
                [where, sql.SQL("(d.created_at_ms, d.id) < (%(before_created)s, %(before_id)s)")]
            )
            params.update(before_created=before[0], before_id=before[1])
        params["limit"] = limit
        query = sql.SQL(LIST_DEAD_LETTERS).format(where=where)
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query, params)
            rows = await cur.fetchall()
        return [DeadLetterRecord.from_row(row) for row in rows]

    async def count_open_executions(self, tenant_id: str, filters: DeadLetterFilter) -> int:
        where, params = _where(tenant_id, filters, open_only=True)
        query = sql.SQL(COUNT_OPEN_EXECUTIONS).format(where=where)
        async with self._pool.connection() as conn:
            row = await (await conn.execute(query, params)).fetchone()
        return int(row[0]) if row else 0

    async def open_executions(
        self,
        tenant_id: str,
        filters: DeadLetterFilter,
        *,
        after: DeadLetterCursor | None,
        limit: int,
    ) -> list[OpenDeadLetters]:
        """Executions with open dead letters, oldest dead letter first, after `after`."""
        where, params = _where(tenant_id, filters, open_only=True)
        params.update(
            after_created=after[0] if after else None,
            after_id=after[1] if after else None,
            limit=limit,
        )
        query = sql.SQL(OPEN_EXECUTIONS).format(where=where)
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query, params)
            rows = await cur.fetchall()
        return [
            OpenDeadLetters(
                execution_id=row["execution_id"],
                first_created_at_ms=row["first_created_at_ms"],
                first_id=row["first_id"],
                execution_version=row["execution_version"],
            )
            for row in rows
        ]

    @staticmethod
    async def mark_redriven(
        conn: AsyncConnection[Any],
        *,
        tenant_id: str,
        execution_id: str,
        before_version: int,
        now_ms: int,
        by: str,
        reason: str,
    ) -> int:
        """Stamp the execution's open dead letters as redriven; the number stamped."""
        cursor = await conn.execute(
            MARK_REDRIVEN,
            {
                "now_ms": now_ms,
                "by": by,
                "reason": reason,
                "tenant_id": tenant_id,
                "execution_id": execution_id,
                "before_version": before_version,
            },
        )
        return cursor.rowcount
