"""Postgres store of await interactions: the pending list, completion lookups and writes.

Interactions and their await units are created by the work protocol (`work_postgres`); this
module reads them and records completions. Every write is conditional on the version read under
the row lock, as every write to execution-state tables is (CONVENTIONS §2.4).
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from tpf_coordinator.domain.interactions import AwaitUnitStatus, InteractionStatus
from tpf_coordinator.store.protocol import PendingCursor, PendingFilter
from tpf_coordinator.store.records import InteractionRecord, LockedInteraction, UnitProgress
from tpf_coordinator.store.status_sql import PENDING_INTERACTIONS
from tpf_envelope import Envelope
from tpf_store import Pool

FIND_BY_ID = "SELECT * FROM interactions WHERE tenant_id = %s AND interaction_id = %s"
FIND_BY_CORRELATION = "SELECT * FROM interactions WHERE tenant_id = %s AND correlation_id = %s"
# Locks the interaction and its await unit (FOR UPDATE covers both joined rows). Callers lock
# the execution row first, in the order cancel and the work protocol use.
LOCK_WITH_UNIT = """
SELECT i.*, u.version AS unit_version, u.status AS unit_status,
       u.expected_item_count AS unit_expected_item_count,
       u.item_interaction_ids AS unit_item_interaction_ids
FROM interactions i
JOIN await_units u ON u.tenant_id = i.tenant_id AND u.unit_id = i.unit_id
WHERE i.tenant_id = %s AND i.interaction_id = %s
FOR UPDATE
"""
COMPLETE_INTERACTION = """
UPDATE interactions SET
    status = %(completed)s, version = version + 1, response_type_id = %(response_type_id)s,
    response_encoding = %(response_encoding)s, response = %(response)s, actor = %(actor)s,
    completion_idempotency_key = %(idempotency_key)s, completed_at_ms = %(now_ms)s,
    updated_at_ms = %(now_ms)s
WHERE tenant_id = %(tenant_id)s AND interaction_id = %(interaction_id)s
  AND version = %(version)s
RETURNING version
"""
# One more item answered; the unit is COMPLETED with its last expected item. The caller holds
# the interaction's row lock and has checked that the interaction was pending, so an item counts
# once.
COMPLETE_UNIT_ITEM = """
UPDATE await_units SET
    status = CASE WHEN completed_item_count + 1 >= expected_item_count
                  THEN %(completed)s ELSE status END,
    version = version + 1,
    completed_item_count = completed_item_count + 1,
    completed_item_keys = array_append(completed_item_keys, %(item_key)s),
    updated_at_ms = %(now_ms)s
WHERE tenant_id = %(tenant_id)s AND unit_id = %(unit_id)s AND version = %(version)s
RETURNING status, completed_item_count, expected_item_count
"""
# The answers of a completed unit's items, in item order (a one-to-one unit has one, with no
# item index).
ITEM_RESPONSES = """
SELECT response_type_id, response_encoding, response FROM interactions
WHERE tenant_id = %s AND interaction_id = ANY(%s::text[]) AND status = %s
ORDER BY item_index NULLS FIRST, interaction_id
"""
# The pending list, in TPF's order; the status list is the predicate of the partial index
# `interactions_pending`, which serves the tenant + keyset scan (so literals: see status_sql).
# Interactions past their record TTL are gone even before the sweeper marks them EXPIRED.
LIST_PENDING = f"""
SELECT * FROM interactions
WHERE tenant_id = %(tenant_id)s AND status IN ({PENDING_INTERACTIONS})
  AND deadline_ms > %(expired_before_ms)s
  {{filters}}
ORDER BY deadline_ms, created_at_ms, interaction_id
LIMIT %(limit)s
"""


class StaleInteraction(Exception):
    """The interaction or its unit moved although it was locked; nothing was written."""


class PostgresInteractionStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def list_pending(
        self,
        tenant_id: str,
        filters: PendingFilter,
        *,
        after: PendingCursor | None,
        limit: int,
        expired_before_ms: int,
    ) -> list[InteractionRecord]:
        """Pending interactions in TPF's order; those whose deadline is at or before
        `expired_before_ms` (now - the record TTL) have expired and are left out."""
        clauses: list[sql.Composable] = []
        params: dict[str, Any] = {
            "tenant_id": tenant_id,
            "limit": limit,
            "expired_before_ms": expired_before_ms,
        }
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
            unit_expected_item_count=row["unit_expected_item_count"],
            unit_item_interaction_ids=tuple(row["unit_item_interaction_ids"]),
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
    ) -> UnitProgress:
        """Mark the interaction COMPLETED and count its item on the unit, each conditional on
        its locked version; the unit is COMPLETED with its last expected item."""
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
                "completed": InteractionStatus.COMPLETED.value,
            },
        )
        if await cursor.fetchone() is None:
            raise StaleInteraction(interaction.interaction_id)
        cursor = await conn.execute(
            COMPLETE_UNIT_ITEM,
            {
                "item_key": interaction.idempotency_key,
                "now_ms": now_ms,
                "tenant_id": interaction.tenant_id,
                "unit_id": interaction.unit_id,
                "version": locked.unit_version,
                "completed": AwaitUnitStatus.COMPLETED.value,
            },
        )
        unit = await cursor.fetchone()
        if unit is None:
            raise StaleInteraction(interaction.interaction_id)
        status, completed, expected = unit
        return UnitProgress(
            completed=status == AwaitUnitStatus.COMPLETED.value,
            completed_item_count=completed,
            expected_item_count=expected,
        )

    @staticmethod
    async def item_responses(
        conn: AsyncConnection[Any], tenant_id: str, item_interaction_ids: tuple[str, ...]
    ) -> list[Envelope]:
        """The stored answers of the given items, in item order."""
        cursor = await conn.execute(
            ITEM_RESPONSES,
            (tenant_id, list(item_interaction_ids), InteractionStatus.COMPLETED.value),
        )
        rows = await cursor.fetchall()
        return [Envelope(type_id, encoding, text) for type_id, encoding, text in rows]
