"""The one query behind the coordinator's gauges: backlog, oldest runnable, interactions, DLQ.

Each part is served by a partial index (`executions_runnable`, `executions_pinned_non_terminal`,
`interactions_pending`, `dead_letters_pending`), so its cost follows the backlog, not the
history. The status lists are those indexes' predicates, which the planner matches only when
spelled out (store/status_sql.py renders them from the enums).
"""

from __future__ import annotations

from psycopg.rows import dict_row

from tpf_coordinator.store.records import BacklogSnapshot
from tpf_coordinator.store.status_sql import NON_TERMINAL, PENDING_INTERACTIONS, RUNNABLE
from tpf_store import Pool

BACKLOG = f"""
SELECT
    (SELECT count(*) FROM executions
     WHERE status IN ({RUNNABLE}) AND next_due_at_ms <= %(now_ms)s) AS runnable,
    (SELECT min(next_due_at_ms) FROM executions
     WHERE status IN ({RUNNABLE}) AND next_due_at_ms <= %(now_ms)s) AS oldest_due_ms,
    (SELECT count(*) FROM interactions
     WHERE status IN ({PENDING_INTERACTIONS})) AS waiting_interactions,
    (SELECT count(*) FROM dead_letters WHERE redriven_at_ms IS NULL) AS open_dead_letters
"""
NON_TERMINAL_BY_STATUS = f"""
SELECT status, count(*) AS executions FROM executions
WHERE status IN ({NON_TERMINAL})
GROUP BY status
"""


async def read_backlog(pool: Pool, *, now_ms: int) -> BacklogSnapshot:
    # One read-only snapshot for all parts, so they agree with each other.
    async with (
        pool.connection() as conn,
        conn.transaction(),
        conn.cursor(row_factory=dict_row) as cur,
    ):
        await cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        await cur.execute(BACKLOG, {"now_ms": now_ms})
        row = await cur.fetchone()
        await cur.execute(NON_TERMINAL_BY_STATUS)
        by_status = {r["status"]: int(r["executions"]) for r in await cur.fetchall()}
    assert row is not None
    oldest = row["oldest_due_ms"]
    return BacklogSnapshot(
        runnable=int(row["runnable"]),
        oldest_runnable_age_s=max(now_ms - int(oldest), 0) / 1000 if oldest is not None else 0.0,
        waiting_interactions=int(row["waiting_interactions"]),
        open_dead_letters=int(row["open_dead_letters"]),
        by_status=by_status,
    )
