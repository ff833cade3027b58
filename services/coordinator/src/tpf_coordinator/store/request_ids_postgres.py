"""Responses of mutating RPCs by request id (AIP-155), so a retried call gets the first answer."""

from __future__ import annotations

from tpf_store import Pool, single_statement

GET_RESPONSE = "SELECT request_hash, response FROM request_ids WHERE scope = %s AND request_id = %s"
# The stored response only spares a retry the work of running again (where fencing rejects what
# was already applied), so its commit does not wait for the WAL flush (synchronous_commit off
# for this statement's own transaction): on a crash the newest few may be lost, never a
# transition, and a ClaimWork or CompleteWork costs one disk flush instead of two.
PUT_RESPONSE = """
WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true))
INSERT INTO request_ids (scope, request_id, request_hash, response, created_at_ms)
SELECT %s, %s, %s, %s, %s FROM relaxed
ON CONFLICT (scope, request_id) DO NOTHING
"""
DELETE_OLDER_THAN = "DELETE FROM request_ids WHERE created_at_ms < %s"


class PostgresRequestIds:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    # Each call is one statement, run in autocommit (no BEGIN and COMMIT round trips): these
    # are on the path of every ClaimWork and CompleteWork.
    async def get(self, scope: str, request_id: str) -> tuple[str, bytes] | None:
        async with single_statement(self._pool) as conn:
            row = await (await conn.execute(GET_RESPONSE, (scope, request_id))).fetchone()
        return (row[0], bytes(row[1])) if row else None

    async def put(
        self, scope: str, request_id: str, request_hash: str, response: bytes, *, now_ms: int
    ) -> None:
        async with single_statement(self._pool) as conn:
            await conn.execute(PUT_RESPONSE, (scope, request_id, request_hash, response, now_ms))

    async def forget_older_than(self, cutoff_ms: int) -> int:
        async with self._pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(DELETE_OLDER_THAN, (cutoff_ms,))
            return cursor.rowcount
