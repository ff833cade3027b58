"""RowLeaseStore: leases kept only in the executions row (the embedded default, no Redis).

It implements tpf_lease's LeaseStore on the coordinator's own table, so its SQL lives with the
coordinator's other SQL; tpf_lease holds only the protocol and the Redis side.

The claim and the commit already write the row in the coordinator's own transactions, so
acquire and release have nothing to do here. Renewal moves `lease_expires_at_ms` and nothing
else: it is not a transition, so it never touches `version` and writes no history row. It is
still conditional on owner, version and status RUNNING, which makes a stale heartbeat a no-op.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import psycopg
from psycopg_pool import PoolTimeout

from tpf_coordinator.domain.model import ExecutionStatus
from tpf_lease import Clock, Lease, LeaseHolder, LeaseKey, RenewRefusal, RenewResult
from tpf_store import Pool

RUNNING_STATUS: Final = ExecutionStatus.RUNNING.value

# One statement per batch. The CTE reads the rows before the update, so `row_exists` tells a
# lease held by someone else (not_held) from an execution that does not exist (unknown).
RENEW_ROW_LEASES: Final = """
WITH requested AS (
    SELECT *
      FROM unnest(%(tenant_ids)s::text[], %(execution_ids)s::text[], %(owners)s::text[],
                  %(versions)s::bigint[], %(expires_at_ms)s::bigint[])
           WITH ORDINALITY AS r(tenant_id, execution_id, owner, version, expires_at_ms, position)
), renewed AS (
    UPDATE executions AS e
       SET lease_expires_at_ms = r.expires_at_ms
      FROM requested AS r
     WHERE e.tenant_id = r.tenant_id
       AND e.execution_id = r.execution_id
       AND e.status = %(running)s
       AND e.lease_owner = r.owner
       AND e.version = r.version
 RETURNING e.tenant_id, e.execution_id, e.lease_owner, e.version
)
SELECT r.position,
       n.tenant_id IS NOT NULL AS renewed,
       EXISTS (SELECT 1 FROM executions AS x
                WHERE x.tenant_id = r.tenant_id AND x.execution_id = r.execution_id)
           AS row_exists
  FROM requested AS r
  LEFT JOIN renewed AS n
    ON n.tenant_id = r.tenant_id AND n.execution_id = r.execution_id
   AND n.lease_owner = r.owner AND n.version = r.version
 ORDER BY r.position
"""

# First, in the same transaction: the rows in (tenant, execution) order, the order in which the
# coordinator's commits lock theirs. The UPDATE alone locks them in whatever order its plan
# visits them, and could hold one row while waiting for another that a commit holds while
# waiting for the first (a deadlock Postgres breaks by failing one of the two).
LOCK_ROWS_IN_KEY_ORDER: Final = """
SELECT 1
  FROM executions
 WHERE (tenant_id, execution_id) IN (SELECT * FROM unnest(%(tenant_ids)s::text[],
                                                         %(execution_ids)s::text[]))
 ORDER BY tenant_id, execution_id
   FOR NO KEY UPDATE
"""

SELECT_ALIVE_ROW_LEASES: Final = """
SELECT e.tenant_id, e.execution_id
  FROM unnest(%(tenant_ids)s::text[], %(execution_ids)s::text[]) AS r(tenant_id, execution_id)
  JOIN executions AS e ON e.tenant_id = r.tenant_id AND e.execution_id = r.execution_id
 WHERE e.status = %(running)s
   AND e.lease_expires_at_ms > %(now_ms)s
"""

SELECT_ONE: Final = "SELECT 1"


class RowLeaseStore:
    """LeaseStore on the `executions` row. Uses the caller's pool and never closes it.

    Postgres errors are not wrapped: the row is the authority, so a database outage is the
    caller's DATABASE_UNAVAILABLE (tpf_store.errors.database_unavailable), not a lease-store
    outage to fall back from.
    """

    def __init__(self, pool: Pool, *, clock: Clock) -> None:
        self._pool = pool
        self._clock = clock

    async def acquire(self, leases: Sequence[Lease]) -> None:
        """Nothing to do: the claim wrote owner and expiry into the row."""

    async def renew(self, renewals: Sequence[Lease]) -> list[RenewResult]:
        if not renewals:
            return []
        params = {
            "tenant_ids": [lease.key.tenant_id for lease in renewals],
            "execution_ids": [lease.key.execution_id for lease in renewals],
            "owners": [lease.owner for lease in renewals],
            "versions": [lease.version for lease in renewals],
            "expires_at_ms": [lease.expires_at_ms for lease in renewals],
            "running": RUNNING_STATUS,
        }
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(LOCK_ROWS_IN_KEY_ORDER, params)
            cursor = await conn.execute(RENEW_ROW_LEASES, params)
            rows = await cursor.fetchall()
        results: list[RenewResult] = []
        for lease, (_position, renewed, row_exists) in zip(renewals, rows, strict=True):
            if renewed:
                results.append(RenewResult.granted(lease.key, lease.expires_at_ms))
            elif row_exists:
                results.append(RenewResult.refused(lease.key, RenewRefusal.NOT_HELD))
            else:
                results.append(RenewResult.refused(lease.key, RenewRefusal.UNKNOWN))
        return results

    async def release(self, holders: Sequence[LeaseHolder]) -> None:
        """Nothing to do: the commit that ends the lease rewrote the row."""

    async def alive(self, keys: Sequence[LeaseKey]) -> set[LeaseKey]:
        if not keys:
            return set()
        params = {
            "tenant_ids": [key.tenant_id for key in keys],
            "execution_ids": [key.execution_id for key in keys],
            "running": RUNNING_STATUS,
            "now_ms": self._clock.now_ms(),
        }
        async with self._pool.connection() as conn:
            cursor = await conn.execute(SELECT_ALIVE_ROW_LEASES, params)
            rows = await cursor.fetchall()
        return {LeaseKey(tenant_id, execution_id) for tenant_id, execution_id in rows}

    async def healthy(self) -> bool:
        try:
            async with self._pool.connection() as conn:
                await conn.execute(SELECT_ONE)
        except (psycopg.OperationalError, PoolTimeout):
            return False
        return True

    async def close(self) -> None:
        """Nothing to do: the pool belongs to the caller."""
