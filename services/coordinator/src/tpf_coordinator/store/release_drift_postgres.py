"""Postgres reads of release drift: non-terminal executions per pinned release."""

from __future__ import annotations

from psycopg import sql

from tpf_coordinator.domain.model import ExecutionStatus
from tpf_coordinator.store.status_sql import NON_TERMINAL
from tpf_store import Pool

# The statuses are written into the text as literals, not bound (see status_sql): same list,
# same order as the predicate of `executions_pinned_non_terminal` (migration 0005), so this is
# an index-only scan.
COUNT_PINNED_NON_TERMINAL = sql.SQL(
    """
SELECT release_version, status, count(*) AS executions
FROM executions
WHERE tenant_id = %(tenant_id)s AND pipeline_id = %(pipeline_id)s
  AND status IN ({statuses})
GROUP BY release_version, status
"""
).format(statuses=sql.SQL(NON_TERMINAL))


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
