"""Postgres reads of release drift: non-terminal executions per pinned release."""

from __future__ import annotations

from psycopg import sql

from tpf_coordinator.domain.model import ExecutionStatus
from tpf_coordinator.domain.release_drift import NON_TERMINAL_STATUSES
from tpf_store import Pool

# The statuses are written into the text as literals, not bound: a partial index is used only
# when the planner can prove its predicate from the query, which it cannot do for a parameter
# of a generic prepared plan. Same list, same order as the predicate of
# `executions_pinned_non_terminal` (migration 0005), so this is an index-only scan.
COUNT_PINNED_NON_TERMINAL = sql.SQL(
    """
SELECT release_version, status, count(*) AS executions
FROM executions
WHERE tenant_id = %(tenant_id)s AND pipeline_id = %(pipeline_id)s
  AND status IN ({statuses})
GROUP BY release_version, status
"""
).format(statuses=sql.SQL(", ").join(sql.Literal(s.value) for s in NON_TERMINAL_STATUSES))


class PostgresPinnedExecutions:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def count_non_terminal(
        self, tenant_id: str, pipeline_id: str
    ) -> dict[str, dict[ExecutionStatus, int]]:
        """Release version → non-terminal status → executions pinned to it in that status."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                COUNT_PINNED_NON_TERMINAL, {"tenant_id": tenant_id, "pipeline_id": pipeline_id}
            )
            rows = await cursor.fetchall()
        counts: dict[str, dict[ExecutionStatus, int]] = {}
        for release_version, status, executions in rows:
            counts.setdefault(release_version, {})[ExecutionStatus(status)] = int(executions)
        return counts
