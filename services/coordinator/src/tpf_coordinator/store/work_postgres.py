"""Postgres side of the dispatcher work protocol: batch claims, row locks, await records."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tpf_coordinator.domain.model import HistoryEvent
from tpf_coordinator.store.protocol import ClaimFilter, NewAwait, TransitionWrite
from tpf_coordinator.store.records import ExecutionRecord
from tpf_coordinator.store.transactions_postgres import PostgresTransactions
from tpf_coordinator.store.transitions_sql import write_transitions

# The claim is the one transition computed in SQL rather than by `domain.transitions.apply`:
# one statement claims a whole batch. Its conditions are exactly the domain's Claim rule
# (QUEUED or WAIT_RETRY, once due; tests/integration/test_coordinator_claim_rule.py checks the
# two against each other), it bumps the version, sets the lease and clears the previous
# attempt's error, and every claimed row gets its CLAIMED history row in the same statement.
# The partial index `executions_runnable` makes the scan touch runnable rows only; SKIP LOCKED
# lets concurrent claimants (dispatchers, coordinator replicas) take disjoint batches without
# waiting.
CLAIM_RUNNABLE = """
WITH picked AS (
    SELECT tenant_id, execution_id, status AS from_status
    FROM executions
    WHERE status IN ('QUEUED', 'WAIT_RETRY') AND next_due_at_ms <= %(now_ms)s
      AND (cardinality(%(tenants)s::text[]) = 0 OR tenant_id = ANY(%(tenants)s))
      AND (cardinality(%(pipelines)s::text[]) = 0 OR pipeline_id = ANY(%(pipelines)s))
      AND (cardinality(%(releases)s::text[]) = 0 OR release_version = ANY(%(releases)s))
    ORDER BY next_due_at_ms
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
claimed AS (
    UPDATE executions e
    SET status = 'RUNNING', version = e.version + 1, lease_owner = %(owner)s,
        lease_expires_at_ms = %(now_ms)s + %(lease_ms)s, updated_at_ms = %(now_ms)s,
        error_code = NULL, error_message = NULL
    FROM picked
    WHERE e.tenant_id = picked.tenant_id AND e.execution_id = picked.execution_id
    RETURNING e.*, picked.from_status
),
history AS (
    INSERT INTO execution_history (
        tenant_id, execution_id, version, event, from_status, to_status, step_index, attempt,
        actor, reason, release_version, occurred_at_ms)
    SELECT tenant_id, execution_id, version, %(event)s, from_status, status, step_index,
           attempt, %(owner)s, '', release_version, %(now_ms)s
    FROM claimed
)
SELECT * FROM claimed
"""

LOCK_EXECUTIONS = """
SELECT * FROM executions
WHERE (tenant_id, execution_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
ORDER BY tenant_id, execution_id
FOR UPDATE
"""

# The unit id is derived from execution and step, so the same execution reaching the same
# await again (after a redrive) re-creates the unit: it starts over with the new interactions as
# its items, and answers to the earlier ones no longer count.
INSERT_AWAIT_UNIT = """
INSERT INTO await_units (
    tenant_id, unit_id, execution_id, step_id, step_index, cardinality, version, status,
    primary_interaction_id, expected_item_count, completed_item_count, item_interaction_ids,
    completed_item_keys, deadline_ms, created_at_ms, updated_at_ms)
VALUES (%(tenant_id)s, %(unit_id)s, %(execution_id)s, %(step_id)s, %(step_index)s,
        %(cardinality)s, 0, 'WAITING_EXTERNAL', %(primary_interaction_id)s,
        %(expected_item_count)s, 0, %(item_interaction_ids)s, '{}', %(deadline_ms)s,
        %(now_ms)s, %(now_ms)s)
ON CONFLICT (tenant_id, unit_id) DO UPDATE SET
    status = 'WAITING_EXTERNAL', version = await_units.version + 1,
    cardinality = EXCLUDED.cardinality,
    primary_interaction_id = EXCLUDED.primary_interaction_id,
    expected_item_count = EXCLUDED.expected_item_count, completed_item_count = 0,
    item_interaction_ids = EXCLUDED.item_interaction_ids, completed_item_keys = '{}',
    deadline_ms = EXCLUDED.deadline_ms, updated_at_ms = EXCLUDED.updated_at_ms
"""

INSERT_INTERACTION = """
INSERT INTO interactions (
    tenant_id, interaction_id, unit_id, execution_id, step_id, step_index, output_type,
    correlation_id, idempotency_key, causation_id, item_index, version, status, request_payload,
    assignee, "group", transport_type, transport_metadata, deadline_ms, created_at_ms,
    updated_at_ms)
VALUES (%(tenant_id)s, %(interaction_id)s, %(unit_id)s, %(execution_id)s, %(step_id)s,
        %(step_index)s, %(output_type)s, %(correlation_id)s, %(idempotency_key)s,
        %(causation_id)s, %(item_index)s, 0, 'DISPATCHED', %(request_payload)s, %(assignee)s,
        %(group)s, %(transport_type)s, %(transport_metadata)s, %(deadline_ms)s, %(now_ms)s,
        %(now_ms)s)
"""


class PostgresWorkStore(PostgresTransactions):
    async def claim(
        self,
        *,
        owner: str,
        limit: int,
        lease_ms: int,
        now_ms: int,
        filters: ClaimFilter,
        before_commit: Callable[[list[ExecutionRecord]], Awaitable[None]] | None = None,
    ) -> list[ExecutionRecord]:
        """Claim a batch; `before_commit(records)` runs in the claim's transaction, and if it
        raises, the claim is rolled back."""
        async with (
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=dict_row) as cur,
        ):
            await cur.execute(
                CLAIM_RUNNABLE,
                {
                    "now_ms": now_ms,
                    "tenants": list(filters.tenant_ids),
                    "pipelines": list(filters.pipeline_ids),
                    "releases": list(filters.release_versions),
                    "limit": limit,
                    "owner": owner,
                    "lease_ms": lease_ms,
                    "event": HistoryEvent.CLAIMED.value,
                },
            )
            rows = await cur.fetchall()
            records = [ExecutionRecord.from_row(row) for row in rows]
            if records and before_commit is not None:
                await before_commit(records)
        return records

    @staticmethod
    async def lock_many(
        conn: AsyncConnection[Any], keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], ExecutionRecord]:
        """Lock the rows (in a fixed order, so concurrent batches cannot deadlock)."""
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                LOCK_EXECUTIONS, ([tenant for tenant, _ in keys], [eid for _, eid in keys])
            )
            rows = await cur.fetchall()
        return {
            (row["tenant_id"], row["execution_id"]): ExecutionRecord.from_row(row) for row in rows
        }

    @staticmethod
    async def write_many(conn: AsyncConnection[Any], writes: Sequence[TransitionWrite]) -> None:
        await write_transitions(conn, writes)

    @staticmethod
    async def insert_await(
        conn: AsyncConnection[Any], record: ExecutionRecord, new: NewAwait, *, now_ms: int
    ) -> None:
        primary = new.interactions[0].interaction_id if new.interactions else ""
        await conn.execute(
            INSERT_AWAIT_UNIT,
            {
                "tenant_id": record.tenant_id,
                "unit_id": new.unit_id,
                "execution_id": record.execution_id,
                "step_id": new.step_id,
                "step_index": new.step_index,
                "cardinality": new.cardinality,
                "primary_interaction_id": primary,
                "expected_item_count": max(1, len(new.interactions)),
                "item_interaction_ids": [i.interaction_id for i in new.interactions],
                "deadline_ms": new.deadline_ms,
                "now_ms": now_ms,
            },
        )
        # One statement per interaction, sent as one pipelined batch (an itemized await may
        # have thousands).
        async with conn.cursor() as cur:
            await cur.executemany(
                INSERT_INTERACTION,
                [
                    {
                        "tenant_id": record.tenant_id,
                        "interaction_id": interaction.interaction_id,
                        "unit_id": new.unit_id,
                        "execution_id": record.execution_id,
                        "step_id": new.step_id,
                        "step_index": new.step_index,
                        "output_type": interaction.output_type,
                        "correlation_id": interaction.correlation_id,
                        "idempotency_key": interaction.idempotency_key,
                        "causation_id": interaction.causation_id,
                        "item_index": interaction.item_index,
                        "request_payload": Jsonb(interaction.request_payload),
                        "assignee": interaction.assignee,
                        "group": interaction.group,
                        "transport_type": interaction.transport_type,
                        "transport_metadata": Jsonb(interaction.transport_metadata),
                        "deadline_ms": new.deadline_ms,
                        "now_ms": now_ms,
                    }
                    for interaction in new.interactions
                ],
            )
