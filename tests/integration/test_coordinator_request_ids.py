"""Stored responses of mutating RPCs (AIP-155 request ids) on the coordinator's migrated schema."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tpf_coordinator.store.request_ids_postgres import PostgresRequestIds
from tpf_store import Pool, open_pool


@pytest.fixture
async def pool(database: str) -> AsyncIterator[Pool]:
    pool = await open_pool(database, min_size=1, max_size=1)
    try:
        yield pool
    finally:
        await pool.close()


async def test_a_stored_response_is_read_back_and_the_first_one_stays(pool: Pool) -> None:
    store = PostgresRequestIds(pool)
    assert await store.get("CompleteWork/d1", "id-1") is None
    await store.put("CompleteWork/d1", "id-1", "hash-a", b"\x01first", now_ms=10)
    await store.put("CompleteWork/d1", "id-1", "hash-b", b"\x02second", now_ms=20)
    assert await store.get("CompleteWork/d1", "id-1") == ("hash-a", b"\x01first")
    assert await store.get("ClaimWork/d1", "id-1") is None


async def test_only_the_put_itself_skips_the_wal_flush(pool: Pool) -> None:
    """synchronous_commit is off for the put's own transaction, and on again right after on the
    same connection (the pool's only one), so no later transition commits without its flush."""
    store = PostgresRequestIds(pool)
    await store.put("ClaimWork/d1", "id-2", "hash", b"response", now_ms=10)
    async with pool.connection() as conn:
        cursor = await conn.execute("SHOW synchronous_commit")
        assert await cursor.fetchone() == ("on",)
        relaxed = await conn.execute(
            "WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true)) "
            "SELECT current_setting('synchronous_commit') FROM relaxed"
        )
        assert await relaxed.fetchone() == ("off",)
