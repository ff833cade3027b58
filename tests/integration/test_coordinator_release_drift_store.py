"""The release-drift count on real Postgres: non-terminal executions per pinned release and
status, for one tenant and pipeline only, read from the partial index of migration 0005."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from tpf_coordinator.domain.model import ExecutionStatus
from tpf_coordinator.store.release_drift_postgres import (
    COUNT_PINNED_NON_TERMINAL,
    PostgresPinnedExecutions,
)
from tpf_store import Pool, open_pool

PIPELINE = "org.example.drift"
# Test rows only: the coordinator itself inserts executions through its store.
INSERT_ROW = """
INSERT INTO executions (tenant_id, execution_id, pipeline_id, contract_version, release_version,
    status, input_shape, result_shape, idempotency_key, input_fingerprint, next_due_at_ms,
    created_at_ms, updated_at_ms)
SELECT %(tenant)s, %(prefix)s || n, %(pipeline)s, 'c', %(release)s, %(status)s, 'UNI',
    'SINGLE', %(prefix)s || n, 'f', 0, 0, 0
FROM generate_series(1, %(count)s) AS n
"""


@pytest.fixture
async def pool(database: str) -> AsyncIterator[Pool]:
    pool = await open_pool(database, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


async def insert(pool: Pool, **row: Any) -> None:
    params = {"tenant": "t1", "pipeline": PIPELINE, **row}
    params["prefix"] = "-".join(str(params[k]) for k in ("tenant", "pipeline", "release", "status"))
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(INSERT_ROW, params)


async def test_counts_non_terminal_executions_per_release_and_status(pool: Pool) -> None:
    await insert(pool, release="v1", status="WAITING_EXTERNAL", count=3)
    await insert(pool, release="v1", status="QUEUED", count=1)
    await insert(pool, release="v2", status="RUNNING", count=2)
    for terminal in ("SUCCEEDED", "FAILED", "CANCELLED", "DLQ"):
        await insert(pool, release="v1", status=terminal, count=4)
    await insert(pool, release="v3", status="SUCCEEDED", count=5)
    # Other tenants and pipelines are not counted.
    await insert(pool, tenant="t2", release="v1", status="QUEUED", count=7)
    await insert(pool, pipeline="org.example.other", release="v1", status="QUEUED", count=7)

    counts = await PostgresPinnedExecutions(pool).count_non_terminal("t1", PIPELINE)

    assert counts == {
        "v1": {ExecutionStatus.WAITING_EXTERNAL: 3, ExecutionStatus.QUEUED: 1},
        "v2": {ExecutionStatus.RUNNING: 2},
    }
    assert await PostgresPinnedExecutions(pool).count_non_terminal("t3", PIPELINE) == {}


async def test_the_count_reads_only_the_partial_index_of_live_work(
    pool: Pool, database: str
) -> None:
    await insert(pool, release="v1", status="SUCCEEDED", count=20_000)
    await insert(pool, release="v1", status="WAITING_EXTERNAL", count=10)
    # VACUUM sets the visibility map, without which an index-only scan is not worth planning.
    async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
        await conn.execute("VACUUM ANALYZE executions")
        cursor = await conn.execute(
            b"EXPLAIN " + COUNT_PINNED_NON_TERMINAL.as_bytes(conn),
            {"tenant_id": "t1", "pipeline_id": PIPELINE},
        )
        plan = "\n".join(row[0] for row in await cursor.fetchall())
    assert "Index Only Scan using executions_pinned_non_terminal" in plan, plan
