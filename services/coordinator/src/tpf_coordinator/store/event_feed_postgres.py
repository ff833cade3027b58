"""Postgres side of the terminal-event feed: reading terminal history rows, consumer cursors.

Positions are (xact_id, history id); migration 0004 explains the ordering. xid8 travels as text
(psycopg has no xid8 loader, and there is no cast from bigint to xid8).
"""

from __future__ import annotations

from typing import Any

from psycopg.rows import dict_row

from tpf_coordinator.domain.event_feed import (
    EventCursor,
    FeedPosition,
    TenantSet,
    TerminalHistoryRow,
)
from tpf_coordinator.domain.model import ExecutionStatus, HistoryEvent
from tpf_coordinator.store.protocol import TerminalRows
from tpf_coordinator.store.status_sql import TERMINAL
from tpf_store import Pool

# The oldest transaction still running, as the statement's snapshot sees it: every transaction
# below it has ended, so the rows they wrote are all visible now and none can appear later.
READ_HORIZON = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS horizon"

# Terminal rows after the position and below the horizon (taken by an earlier statement: what
# ended before that snapshot is visible to this one too). The status list is the partial index's.
READ_TERMINAL_ROWS = f"""
SELECT h.xact_id::text AS xact_id, h.id, h.tenant_id, h.execution_id, h.version, h.event,
       h.to_status, h.error_code, h.error_message, h.release_version, h.occurred_at_ms,
       e.pipeline_id, e.version AS current_version, e.error_code AS current_error_code,
       e.error_message AS current_error_message,
       e.terminal_reason AS current_terminal_reason,
       d.terminal_reason AS dead_letter_reason
FROM execution_history h
JOIN executions e ON e.tenant_id = h.tenant_id AND e.execution_id = h.execution_id
LEFT JOIN dead_letters d
       ON d.tenant_id = h.tenant_id AND d.execution_id = h.execution_id
      AND d.execution_version = h.version
WHERE h.xact_id IS NOT NULL
  AND h.to_status IN ({TERMINAL})
  AND (h.xact_id, h.id) > (%(after_xact_id)s::text::xid8, %(after_id)s)
  AND h.xact_id < %(horizon)s::text::xid8
  AND (cardinality(%(tenants)s::text[]) = 0 OR h.tenant_id = ANY(%(tenants)s::text[]))
ORDER BY h.xact_id, h.id
LIMIT %(limit)s
"""

_CURSOR_COLUMNS = """
consumer_id, tenant_ids, position_xact_id::text AS position_xact_id, position_id, version,
updated_at_ms
"""

# A new cursor starts at the horizon: what ended before it is the past, anything still running
# (or starting later) is after it.
OPEN_CURSOR = (
    """
INSERT INTO event_cursors (consumer_id, tenant_ids, position_xact_id, position_id, version,
                           created_at_ms, updated_at_ms, updated_by)
VALUES (%(consumer_id)s, %(tenants)s::text[], pg_snapshot_xmin(pg_current_snapshot()), 0, 0,
        %(now_ms)s, %(now_ms)s, %(actor)s)
ON CONFLICT (consumer_id, tenant_ids) DO NOTHING
RETURNING """
    + _CURSOR_COLUMNS
)

GET_CURSOR = (
    "SELECT "
    + _CURSOR_COLUMNS
    + " FROM event_cursors WHERE consumer_id = %(consumer_id)s AND tenant_ids = %(tenants)s::text[]"
)

# Forward only: the update applies only while the stored position is behind the new one, so a
# slower consumer sharing the cursor cannot move it back.
ADVANCE_CURSOR = (
    """
INSERT INTO event_cursors (consumer_id, tenant_ids, position_xact_id, position_id, version,
                           created_at_ms, updated_at_ms, updated_by)
VALUES (%(consumer_id)s, %(tenants)s::text[], %(xact_id)s::text::xid8, %(history_id)s, 0,
        %(now_ms)s, %(now_ms)s, %(actor)s)
ON CONFLICT (consumer_id, tenant_ids) DO UPDATE SET
    position_xact_id = EXCLUDED.position_xact_id,
    position_id = EXCLUDED.position_id,
    version = event_cursors.version + 1,
    updated_at_ms = EXCLUDED.updated_at_ms,
    updated_by = EXCLUDED.updated_by
WHERE (event_cursors.position_xact_id, event_cursors.position_id)
    < (EXCLUDED.position_xact_id, EXCLUDED.position_id)
RETURNING """
    + _CURSOR_COLUMNS
)


class PostgresEventFeedStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def read(self, after: FeedPosition, tenants: TenantSet, *, limit: int) -> TerminalRows:
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(READ_HORIZON)
            horizon_row = await cur.fetchone()
            assert horizon_row is not None
            horizon = str(horizon_row["horizon"])
            await cur.execute(
                READ_TERMINAL_ROWS,
                {
                    "after_xact_id": str(after.xact_id),
                    "after_id": after.history_id,
                    "horizon": horizon,
                    "tenants": list(tenants.tenant_ids),
                    "limit": limit,
                },
            )
            rows = await cur.fetchall()
        return TerminalRows([_history_row(row) for row in rows], horizon_xact_id=int(horizon))

    async def open_cursor(
        self, consumer_id: str, tenants: TenantSet, *, now_ms: int, actor: str
    ) -> tuple[EventCursor, bool]:
        """The cursor, created at the horizon when absent; and whether it was created."""
        params = {
            "consumer_id": consumer_id,
            "tenants": list(tenants.tenant_ids),
            "now_ms": now_ms,
            "actor": actor,
        }
        async with (
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=dict_row) as cur,
        ):
            await cur.execute(OPEN_CURSOR, params)
            row = await cur.fetchone()
            if row is not None:
                return _cursor(row), True
            await cur.execute(GET_CURSOR, params)
            existing = await cur.fetchone()
        assert existing is not None  # the conflicting row is visible once committed
        return _cursor(existing), False

    async def advance_cursor(
        self,
        consumer_id: str,
        tenants: TenantSet,
        position: FeedPosition,
        *,
        now_ms: int,
        actor: str,
    ) -> tuple[EventCursor, bool]:
        """The cursor after moving it to `position` if that is forward; and whether it moved."""
        params = {
            "consumer_id": consumer_id,
            "tenants": list(tenants.tenant_ids),
            "xact_id": str(position.xact_id),
            "history_id": position.history_id,
            "now_ms": now_ms,
            "actor": actor,
        }
        async with (
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=dict_row) as cur,
        ):
            await cur.execute(ADVANCE_CURSOR, params)
            row = await cur.fetchone()
            if row is not None:
                return _cursor(row), True
            await cur.execute(GET_CURSOR, params)
            current = await cur.fetchone()
        assert current is not None  # the row that stopped the update exists
        return _cursor(current), False


def _history_row(row: dict[str, Any]) -> TerminalHistoryRow:
    return TerminalHistoryRow(
        position=FeedPosition(int(row["xact_id"]), row["id"]),
        tenant_id=row["tenant_id"],
        execution_id=row["execution_id"],
        version=row["version"],
        event=HistoryEvent(row["event"]),
        to_status=ExecutionStatus(row["to_status"]),
        error_code=row["error_code"],
        error_message=row["error_message"],
        release_version=row["release_version"],
        occurred_at_ms=row["occurred_at_ms"],
        pipeline_id=row["pipeline_id"],
        current_version=row["current_version"],
        current_error_code=row["current_error_code"],
        current_error_message=row["current_error_message"],
        current_terminal_reason=row["current_terminal_reason"],
        dead_letter_reason=row["dead_letter_reason"],
    )


def _cursor(row: dict[str, Any]) -> EventCursor:
    return EventCursor(
        consumer_id=row["consumer_id"],
        tenants=TenantSet(tuple(row["tenant_ids"])),
        position=FeedPosition(int(row["position_xact_id"]), row["position_id"]),
        version=row["version"],
        updated_at_ms=row["updated_at_ms"],
    )
