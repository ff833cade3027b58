"""RowLeaseStore on real Postgres: conditional renewal in one statement, never a new version.

On the coordinator's real, migrated `executions` table (the `database` fixture), with rows as
the claim leaves them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import psycopg
import pytest

from tests.harness.wait import wait_until
from tests.unit.test_lease_contract import MovableClock, lease
from tpf_coordinator.store.leases_postgres import RowLeaseStore
from tpf_lease import Lease, LeaseKey, RenewRefusal, RenewResult
from tpf_store import Pool, open_pool

INSERT_EXECUTION = """
INSERT INTO executions (
    tenant_id, execution_id, pipeline_id, contract_version, release_version, status, version,
    input_shape, result_shape, idempotency_key, input_fingerprint, next_due_at_ms, lease_owner,
    lease_expires_at_ms, created_at_ms, updated_at_ms)
VALUES (%s, %s, 'p', 'c', 'r', %s, %s, 'UNI', 'SINGLE', %s, 'f', 0, %s, %s, 0, 0)
"""
SELECT_EXECUTION = """
SELECT status, version, lease_owner, lease_expires_at_ms FROM executions
 WHERE tenant_id = %s AND execution_id = %s
"""

LOCK_ROW = "SELECT 1 FROM executions WHERE tenant_id = 'acme' AND execution_id = %s FOR UPDATE"
LOCK_WAITERS = """
SELECT count(*) FROM pg_stat_activity
 WHERE datname = current_database() AND wait_event_type = 'Lock'
"""


@dataclass(frozen=True)
class ExecutionRow:
    status: str
    version: int
    lease_owner: str
    lease_expires_at_ms: int


async def insert_rows(pool: Pool, leases: Sequence[Lease], *, status: str = "RUNNING") -> None:
    """Rows as the coordinator's claim leaves them: RUNNING at `version`, owner and expiry."""
    async with pool.connection() as conn, conn.cursor() as cursor:
        await cursor.executemany(
            INSERT_EXECUTION,
            [
                (
                    held.key.tenant_id,
                    held.key.execution_id,
                    status,
                    held.version,
                    held.key.execution_id,
                    held.owner,
                    held.expires_at_ms,
                )
                for held in leases
            ],
        )


async def lock_waiters(database: str) -> int:
    async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
        row = await (await conn.execute(LOCK_WAITERS)).fetchone()
    return int(row[0]) if row else 0


async def read_row(pool: Pool, key: LeaseKey) -> ExecutionRow:
    async with pool.connection() as conn:
        cursor = await conn.execute(SELECT_EXECUTION, (key.tenant_id, key.execution_id))
        row = await cursor.fetchone()
    assert row is not None, key
    return ExecutionRow(*row)


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
def store(pool: Pool, clock: MovableClock) -> RowLeaseStore:
    return RowLeaseStore(pool, clock=clock)


async def test_holder_renewal_moves_only_the_expiry(
    store: RowLeaseStore, pool: Pool, clock: MovableClock
) -> None:
    held = lease(clock, owner="d1", version=3)
    await insert_rows(pool, [held])
    extended = lease(clock, owner="d1", version=3, lease_ms=90_000)

    [result] = await store.renew([extended])

    assert result == RenewResult.granted(held.key, extended.expires_at_ms)
    assert await read_row(pool, held.key) == ExecutionRow(
        "RUNNING", 3, "d1", extended.expires_at_ms
    )


async def test_renewals_never_change_the_version(
    store: RowLeaseStore, pool: Pool, clock: MovableClock
) -> None:
    held = lease(clock, owner="d1", version=8)
    await insert_rows(pool, [held])

    for _ in range(5):
        clock.advance(10_000)
        [result] = await store.renew([lease(clock, owner="d1", version=8)])
        assert result.renewed

    assert (await read_row(pool, held.key)).version == 8


async def test_stale_owner_or_version_cannot_renew_and_changes_nothing(
    store: RowLeaseStore, pool: Pool, clock: MovableClock
) -> None:
    held = lease(clock, owner="d1", version=3)
    await insert_rows(pool, [held])

    results = await store.renew(
        [
            lease(clock, owner="d2", version=3, lease_ms=90_000),
            lease(clock, owner="d1", version=2, lease_ms=90_000),
        ]
    )

    assert [r.reason for r in results] == [RenewRefusal.NOT_HELD, RenewRefusal.NOT_HELD]
    assert await read_row(pool, held.key) == ExecutionRow("RUNNING", 3, "d1", held.expires_at_ms)


async def test_an_execution_that_left_running_is_not_held(
    store: RowLeaseStore, pool: Pool, clock: MovableClock
) -> None:
    # The sweeper requeues without clearing the owner; the version check alone would not notice
    # a requeue that kept it, the status check does.
    held = lease(clock, owner="d1", version=3)
    await insert_rows(pool, [held], status="QUEUED")

    [result] = await store.renew([held])

    assert result.reason is RenewRefusal.NOT_HELD
    assert (await read_row(pool, held.key)).lease_expires_at_ms == held.expires_at_ms


async def test_an_execution_that_does_not_exist_is_unknown(
    store: RowLeaseStore, clock: MovableClock
) -> None:
    [result] = await store.renew([lease(clock, "missing")])

    assert result == RenewResult.refused(LeaseKey("acme", "missing"), RenewRefusal.UNKNOWN)


async def test_renewal_is_scoped_to_the_tenant(
    store: RowLeaseStore, pool: Pool, clock: MovableClock
) -> None:
    held = lease(clock, "e1", tenant_id="acme")
    await insert_rows(pool, [held])

    [result] = await store.renew([lease(clock, "e1", tenant_id="globex", lease_ms=90_000)])

    assert result.reason is RenewRefusal.UNKNOWN
    assert (await read_row(pool, held.key)).lease_expires_at_ms == held.expires_at_ms


async def test_a_batch_of_500_mixed_renewals_is_answered_item_by_item(
    store: RowLeaseStore, pool: Pool, clock: MovableClock
) -> None:
    held = [lease(clock, f"e{i}", owner="d1", version=i + 1) for i in range(500)]
    await insert_rows(pool, held)
    clock.advance(10_000)
    # Even positions renew as the holder; odd ones with a stale version.
    batch = [
        lease(clock, item.key.execution_id, owner="d1", version=item.version - i % 2)
        for i, item in enumerate(held)
    ]

    results = await store.renew(batch)

    assert [r.key for r in results] == [item.key for item in batch]
    assert [r.renewed for r in results] == [i % 2 == 0 for i in range(500)]
    assert {r.reason for r in results[1::2]} == {RenewRefusal.NOT_HELD}
    assert (await read_row(pool, held[0].key)).lease_expires_at_ms == batch[0].expires_at_ms
    assert (await read_row(pool, held[1].key)).lease_expires_at_ms == held[1].expires_at_ms


async def test_alive_is_running_rows_whose_lease_has_not_passed(
    store: RowLeaseStore, pool: Pool, clock: MovableClock
) -> None:
    short = lease(clock, "short", lease_ms=1_000)
    long = lease(clock, "long", lease_ms=60_000)
    queued = lease(clock, "queued", lease_ms=60_000)
    await insert_rows(pool, [short, long])
    await insert_rows(pool, [queued], status="QUEUED")
    keys = [short.key, long.key, queued.key, LeaseKey("acme", "missing")]

    assert await store.alive(keys) == {short.key, long.key}
    clock.advance(1_000)
    assert await store.alive(keys) == {long.key}


async def test_acquire_and_release_leave_the_row_to_the_coordinator(
    store: RowLeaseStore, pool: Pool, clock: MovableClock
) -> None:
    held = lease(clock, owner="d1", version=3)
    await insert_rows(pool, [held])
    before = await read_row(pool, held.key)

    await store.acquire([lease(clock, owner="d2", version=4, lease_ms=90_000)])
    await store.release([held.holder])

    assert await read_row(pool, held.key) == before


async def test_healthy_and_close_leaves_the_callers_pool_open(
    store: RowLeaseStore, pool: Pool
) -> None:
    assert await store.healthy() is True

    await store.close()

    async with pool.connection() as conn:
        await conn.execute("SELECT 1")


async def test_a_renewal_locks_rows_in_key_order_so_a_commit_batch_cannot_deadlock_with_it(
    store: RowLeaseStore, pool: Pool, clock: MovableClock, database: str
) -> None:
    # The coordinator's commits lock their rows in (tenant, execution) order. A renewal asked
    # in another order (e2 before e1, e2 also first on disk) must still take e1 first: else it
    # holds e2 and waits for e1 while a commit holds e1 and waits for e2.
    first, second = lease(clock, "e1", owner="d1"), lease(clock, "e2", owner="d1")
    await insert_rows(pool, [second, first])
    async with await psycopg.AsyncConnection.connect(database) as commit:
        await commit.execute(LOCK_ROW, ("e1",))
        renewal = asyncio.create_task(
            store.renew([lease(clock, "e2", owner="d1"), lease(clock, "e1", owner="d1")])
        )
        await wait_until(
            lambda: lock_waiters(database), what="the renewal waiting for the commit's lock"
        )
        await commit.execute(LOCK_ROW, ("e2",))  # a deadlock here fails one of the two
        await commit.commit()
        results = await asyncio.wait_for(renewal, timeout=10)
    assert [r.renewed for r in results] == [True, True]
