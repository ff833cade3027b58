"""Postgres store of executions: submission, reads, listing, history, single transitions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from tpf_coordinator.domain.model import ExecutionStatus, HistoryEvent
from tpf_coordinator.store.protocol import ListFilter, NewExecution, SubmitOutcome
from tpf_coordinator.store.records import ExecutionRecord, HistoryRecord
from tpf_coordinator.store.transactions_postgres import PostgresTransactions

# Submissions in one statement (one round trip, run in autocommit), one or many rows: the QUEUED
# rows, their SUBMITTED history rows and one wake-up of the dispatchers. A row whose idempotency
# key is taken (already, or by an earlier row of the same statement) is not inserted and not
# returned; the caller then reads the existing execution.
SUBMIT_EXECUTIONS = """
WITH new AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb) AS n(
        tenant_id text, execution_id text, pipeline_id text, contract_version text,
        release_version text, input_shape text, result_shape text, idempotency_key text,
        input_fingerprint text, payload_type_id text, payload_encoding text, payload text,
        payload_ref text, now_ms bigint, trace_parent text, actor text, ord int)
),
inserted AS (
    INSERT INTO executions (
        tenant_id, execution_id, pipeline_id, contract_version, release_version, status,
        step_index, attempt, version, input_shape, result_shape, idempotency_key,
        input_fingerprint, next_due_at_ms, payload_type_id, payload_encoding, payload,
        payload_ref, created_at_ms, updated_at_ms, trace_parent)
    SELECT tenant_id, execution_id, pipeline_id, contract_version, release_version,
           %(status)s, 0, 0, 0, input_shape, result_shape, idempotency_key, input_fingerprint,
           now_ms, payload_type_id, payload_encoding, payload, payload_ref, now_ms, now_ms,
           trace_parent
    FROM new ORDER BY ord
    ON CONFLICT (tenant_id, pipeline_id, idempotency_key) DO NOTHING
    RETURNING *
),
history AS (
    INSERT INTO execution_history (
        tenant_id, execution_id, version, event, from_status, to_status, step_index, attempt,
        actor, reason, release_version, occurred_at_ms)
    SELECT inserted.tenant_id, inserted.execution_id, 0, %(event)s, NULL, inserted.status, 0,
           0, new.actor, '', inserted.release_version, inserted.created_at_ms
    FROM inserted JOIN new USING (execution_id)
),
notified AS (
    SELECT pg_notify('tpf_work', '') WHERE EXISTS (SELECT 1 FROM inserted)
)
SELECT inserted.*, (SELECT count(*) FROM notified) AS notified FROM inserted
"""
GET_EXECUTION = "SELECT * FROM executions WHERE tenant_id = %s AND execution_id = %s"
GET_EXECUTION_FOR_UPDATE = GET_EXECUTION + " FOR UPDATE"
GET_BY_IDEMPOTENCY_KEY = """
SELECT * FROM executions WHERE tenant_id = %s AND pipeline_id = %s AND idempotency_key = %s
"""
CANCEL_AWAIT_UNITS = """
UPDATE await_units SET status = 'CANCELLED', version = version + 1, updated_at_ms = %s
WHERE tenant_id = %s AND execution_id = %s AND status = 'WAITING_EXTERNAL'
"""
CANCEL_INTERACTIONS = """
UPDATE interactions SET status = 'CANCELLED', version = version + 1, updated_at_ms = %s
WHERE tenant_id = %s AND execution_id = %s AND status IN ('WAITING', 'DISPATCHING', 'DISPATCHED')
"""
LIST_HISTORY = """
SELECT * FROM execution_history
WHERE tenant_id = %s AND execution_id = %s AND id > %s
ORDER BY id LIMIT %s
"""


def _submit_row(new: NewExecution, ord_: int) -> dict[str, Any]:
    """One row of SUBMIT_EXECUTIONS's JSON document (its `jsonb_to_recordset` columns)."""
    return {
        "tenant_id": new.tenant_id,
        "execution_id": new.execution_id,
        "pipeline_id": new.pipeline_id,
        "contract_version": new.contract_version,
        "release_version": new.release_version,
        "input_shape": new.input_shape,
        "result_shape": new.result_shape,
        "idempotency_key": new.idempotency_key,
        "input_fingerprint": new.input_fingerprint,
        "payload_type_id": new.payload.payload_type_id,
        "payload_encoding": new.payload.payload_encoding,
        "payload": new.payload_text.inline,
        "payload_ref": new.payload_text.ref,
        "now_ms": new.now_ms,
        "trace_parent": new.trace_parent,
        "actor": new.actor,
        "ord": ord_,
    }


class PostgresExecutionStore(PostgresTransactions):
    async def submit(self, new: NewExecution) -> SubmitOutcome:
        """Insert a QUEUED execution with its SUBMITTED history row, or find the existing one."""
        return (await self.submit_many([new]))[0]

    async def submit_many(self, news: Sequence[NewExecution]) -> list[SubmitOutcome]:
        """`submit` of each, in one statement; outcomes in the order given."""
        # The rows as one JSON document: json.dumps is far cheaper than adapting a list per
        # column (psycopg dumps arrays element by element).
        rows = json.dumps(
            [_submit_row(new, ord_) for ord_, new in enumerate(news)], separators=(",", ":")
        )
        params: dict[str, Any] = {
            "rows": rows,
            "status": ExecutionStatus.QUEUED.value,
            "event": HistoryEvent.SUBMITTED.value,
        }
        async with self.single_statement() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(SUBMIT_EXECUTIONS, params)
            created = {
                row["execution_id"]: ExecutionRecord.from_row(row) for row in await cur.fetchall()
            }
            outcomes: list[SubmitOutcome] = []
            for new in news:
                record = created.get(new.execution_id)
                if record is not None:
                    outcomes.append(SubmitOutcome(record, created=True))
                    continue
                # Its key is taken; the row holding it is committed (or was inserted by this
                # very statement), so it is visible now.
                await cur.execute(
                    GET_BY_IDEMPOTENCY_KEY, (new.tenant_id, new.pipeline_id, new.idempotency_key)
                )
                existing = await cur.fetchone()
                assert existing is not None
                outcomes.append(SubmitOutcome(ExecutionRecord.from_row(existing), created=False))
        return outcomes

    async def find_by_key(
        self, tenant_id: str, pipeline_id: str, idempotency_key: str
    ) -> ExecutionRecord | None:
        async with self.single_statement() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(GET_BY_IDEMPOTENCY_KEY, (tenant_id, pipeline_id, idempotency_key))
            row = await cur.fetchone()
        return ExecutionRecord.from_row(row) if row else None

    async def get(self, tenant_id: str, execution_id: str) -> ExecutionRecord | None:
        async with self.single_statement() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(GET_EXECUTION, (tenant_id, execution_id))
            row = await cur.fetchone()
        return ExecutionRecord.from_row(row) if row else None

    async def list_executions(
        self,
        tenant_id: str,
        filters: ListFilter,
        *,
        before: tuple[int, str] | None,
        limit: int,
    ) -> list[ExecutionRecord]:
        """Newest first; `before` is the (created_at_ms, execution_id) of the last row seen."""
        clauses = [sql.SQL("tenant_id = {}").format(sql.Literal(tenant_id))]
        if filters.pipeline_id:
            clauses.append(sql.SQL("pipeline_id = {}").format(sql.Literal(filters.pipeline_id)))
        if filters.release_version:
            clauses.append(
                sql.SQL("release_version = {}").format(sql.Literal(filters.release_version))
            )
        if filters.statuses:
            clauses.append(
                sql.SQL("status = ANY({})").format(
                    sql.Literal([status.value for status in filters.statuses])
                )
            )
        if filters.created_after_ms is not None:
            clauses.append(
                sql.SQL("created_at_ms >= {}").format(sql.Literal(filters.created_after_ms))
            )
        if filters.created_before_ms is not None:
            clauses.append(
                sql.SQL("created_at_ms < {}").format(sql.Literal(filters.created_before_ms))
            )
        if filters.idempotency_key:
            clauses.append(
                sql.SQL("idempotency_key = {}").format(sql.Literal(filters.idempotency_key))
            )
        if before is not None:
            clauses.append(
                sql.SQL("(created_at_ms, execution_id) < ({}, {})").format(
                    sql.Literal(before[0]), sql.Literal(before[1])
                )
            )
        query = sql.SQL(
            "SELECT * FROM executions WHERE {} ORDER BY created_at_ms DESC, execution_id DESC "
            "LIMIT {}"
        ).format(sql.SQL(" AND ").join(clauses), sql.Literal(limit))
        async with self.single_statement() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query)
            rows = await cur.fetchall()
        return [ExecutionRecord.from_row(row) for row in rows]

    async def history(
        self, tenant_id: str, execution_id: str, *, after_id: int, limit: int
    ) -> list[HistoryRecord]:
        async with self.single_statement() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(LIST_HISTORY, (tenant_id, execution_id, after_id, limit))
            rows = await cur.fetchall()
        return [HistoryRecord.from_row(row) for row in rows]

    async def lock(
        self, conn: AsyncConnection[Any], tenant_id: str, execution_id: str
    ) -> ExecutionRecord | None:
        """Read the row FOR UPDATE inside the caller's transaction."""
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(GET_EXECUTION_FOR_UPDATE, (tenant_id, execution_id))
            row = await cur.fetchone()
        return ExecutionRecord.from_row(row) if row else None

    @staticmethod
    async def cancel_awaits(
        conn: AsyncConnection[Any], record: ExecutionRecord, *, now_ms: int
    ) -> None:
        """Close the execution's open await unit and interactions (it was cancelled)."""
        params = (now_ms, record.tenant_id, record.execution_id)
        await conn.execute(CANCEL_AWAIT_UNITS, params)
        await conn.execute(CANCEL_INTERACTIONS, params)
