"""FallbackLeaseStore with a real Redis that dies and comes back, over real executions rows."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.harness.redis import RedisServer
from tests.integration.test_lease_row_store import (
    ExecutionRow,
    insert_rows,
    read_row,
)
from tests.unit.test_lease_contract import MovableClock, lease
from tpf_coordinator.store.leases_postgres import RowLeaseStore
from tpf_lease import (
    FallbackLeaseStore,
    LeaseStoreUnavailable,
    RedisLeaseStore,
    RenewRefusal,
)
from tpf_store import Pool, open_pool

REPROBE_MS = 5_000
LOGGER = "test.lease.fallback.integration"


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
async def pool(database: str) -> AsyncIterator[Pool]:
    pool = await open_pool(database, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def redis_store(
    redis_server: RedisServer, clock: MovableClock
) -> AsyncIterator[RedisLeaseStore]:
    await asyncio.to_thread(redis_server.ensure_running)
    store = RedisLeaseStore(
        redis_server.url, clock=clock, key_prefix=f"tpf:lease:test-{uuid.uuid4().hex}:"
    )
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def store(redis_store: RedisLeaseStore, pool: Pool, clock: MovableClock) -> FallbackLeaseStore:
    # Not closed here: redis_store's fixture closes Redis, and the pool belongs to its fixture.
    return FallbackLeaseStore(
        redis_store,
        RowLeaseStore(pool, clock=clock),
        clock=clock,
        log=logging.getLogger(LOGGER),
        reprobe_interval_ms=REPROBE_MS,
    )


async def test_heartbeats_extend_only_redis_while_it_answers(
    store: FallbackLeaseStore, pool: Pool, clock: MovableClock
) -> None:
    held = lease(clock, owner="d1", version=3)
    await insert_rows(pool, [held])
    await store.acquire([held])

    clock.advance(10_000)
    [result] = await store.renew([lease(clock, owner="d1", version=3)])

    assert result.renewed
    assert await read_row(pool, held.key) == ExecutionRow("RUNNING", 3, "d1", held.expires_at_ms)
    assert not store.is_degraded


async def test_redis_outage_falls_back_to_rows_and_a_restart_switches_back(
    redis_server: RedisServer,
    redis_store: RedisLeaseStore,
    store: FallbackLeaseStore,
    pool: Pool,
    clock: MovableClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    redis_server.require_control()
    caplog.set_level(logging.INFO, logger=LOGGER)
    held = lease(clock, owner="d1", version=3)
    await insert_rows(pool, [held])
    await store.acquire([held])

    await asyncio.to_thread(redis_server.kill)
    try:
        with pytest.raises(LeaseStoreUnavailable):
            await redis_store.renew([held])

        clock.advance(10_000)
        during = lease(clock, owner="d1", version=3)
        [renewed] = await store.renew([during])
        [stale] = await store.renew([lease(clock, owner="d2", version=3)])
        alive = await store.alive([held.key])

        assert store.is_degraded
        assert renewed.renewed
        assert stale.reason is RenewRefusal.NOT_HELD
        assert alive == {held.key}
        # The heartbeat landed on the row, and renewal is not a transition.
        assert await read_row(pool, held.key) == ExecutionRow(
            "RUNNING", 3, "d1", during.expires_at_ms
        )
    finally:
        await asyncio.to_thread(redis_server.restart)

    clock.advance(REPROBE_MS)
    after = lease(clock, owner="d1", version=3)
    [result] = await store.renew([after])

    assert not store.is_degraded
    assert result.renewed
    # Redis came back empty; the row confirmed the lease and it was written back to Redis.
    admin = Redis.from_url(redis_server.url)
    try:
        assert await admin.get(redis_store.key_name(held.key)) == b"d1:3"
    finally:
        await admin.aclose()
    assert await redis_store.alive([held.key]) == {held.key}
    warnings = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    recoveries = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.INFO]
    assert len(warnings) == 1
    assert len(recoveries) == 1


async def test_after_a_redis_restart_a_requeued_execution_is_not_held(
    redis_server: RedisServer,
    store: FallbackLeaseStore,
    redis_store: RedisLeaseStore,
    pool: Pool,
    clock: MovableClock,
) -> None:
    redis_server.require_control()
    held = lease(clock, owner="d1", version=3)
    await insert_rows(pool, [held], status="QUEUED")
    await store.acquire([held])

    await asyncio.to_thread(redis_server.restart)
    [result] = await store.renew([held])

    assert result.reason is RenewRefusal.NOT_HELD
    assert await redis_store.alive([held.key]) == set()
