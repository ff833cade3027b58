"""RedisLeaseStore on a real redis-server: the shared contract, TTLs, batching, and outages."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis

from tests.harness.redis import RedisServer
from tests.harness.wait import wait_until
from tests.unit.test_lease_contract import LEASE_MS, LeaseStoreContract, MovableClock, lease
from tpf_lease import LeaseKey, LeaseStoreUnavailable, RedisLeaseStore, RenewRefusal


@pytest.fixture
def key_prefix() -> str:
    """Keys of this test only: the Redis is shared by the whole run."""
    return f"tpf:lease:test-{uuid.uuid4().hex}:"


@pytest.fixture
async def admin(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """A plain client for looking at what the store wrote."""
    await asyncio.to_thread(redis_server.ensure_running)
    client = Redis.from_url(redis_server.url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def redis_store(
    redis_server: RedisServer, key_prefix: str, clock: MovableClock
) -> AsyncIterator[RedisLeaseStore]:
    await asyncio.to_thread(redis_server.ensure_running)
    store = RedisLeaseStore(redis_server.url, clock=clock, key_prefix=key_prefix)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


class TestRedisLeaseStore(LeaseStoreContract):
    @pytest.fixture
    def store(self, redis_store: RedisLeaseStore) -> RedisLeaseStore:
        return redis_store


async def test_lease_is_a_key_holding_owner_and_version_with_the_lease_as_ttl(
    redis_store: RedisLeaseStore, admin: Redis, key_prefix: str, clock: MovableClock
) -> None:
    held = lease(clock, "e-1", owner="dispatcher-1", version=3)

    await redis_store.acquire([held])

    name = f"{key_prefix}acme:e-1"
    assert await admin.get(name) == b"dispatcher-1:3"
    assert 0 < await admin.pttl(name) <= LEASE_MS


async def test_renewal_sets_the_ttl_to_the_new_expiry(
    redis_store: RedisLeaseStore, admin: Redis, clock: MovableClock
) -> None:
    held = lease(clock)
    await redis_store.acquire([held])

    clock.advance(10_000)
    [result] = await redis_store.renew([lease(clock, lease_ms=120_000)])

    assert result.renewed
    assert LEASE_MS < await admin.pttl(redis_store.key_name(held.key)) <= 120_000


async def test_an_unrenewed_lease_expires(
    redis_store: RedisLeaseStore, clock: MovableClock
) -> None:
    held = lease(clock, lease_ms=50)
    await redis_store.acquire([held])

    await wait_until(lambda: _is_gone(redis_store, held.key), timeout_s=5, what="lease key expired")
    [result] = await redis_store.renew([held])
    assert result.reason is RenewRefusal.UNKNOWN


async def _is_gone(store: RedisLeaseStore, key: LeaseKey) -> bool:
    return await store.alive([key]) == set()


async def test_owners_with_colons_compare_exactly(
    redis_store: RedisLeaseStore, clock: MovableClock
) -> None:
    held = lease(clock, owner="10.0.0.7:50053", version=12)
    await redis_store.acquire([held])
    await redis_store.acquire([lease(clock, owner="10.0.0.7:50053", version=11)])

    results = await redis_store.renew([held, lease(clock, owner="10.0.0.7", version=50053)])

    assert [r.renewed for r in results] == [True, False]


async def test_500_renewals_take_one_script_call(
    redis_store: RedisLeaseStore, admin: Redis, clock: MovableClock
) -> None:
    leases = [lease(clock, f"e{i}", version=i) for i in range(500)]
    await redis_store.acquire(leases)
    await redis_store.renew(leases[:1])  # the script is loaded; no NOSCRIPT round trip below
    before = await admin.info("commandstats")

    results = await redis_store.renew(leases)

    after = await admin.info("commandstats")
    assert all(result.renewed for result in results)
    # From the client: one EVALSHA. Inside it, one PEXPIRE per lease.
    assert _calls(after, "evalsha") - _calls(before, "evalsha") == 1
    assert _calls(after, "pexpire") - _calls(before, "pexpire") == 500


def _calls(stats: dict[str, dict[str, int]], command: str) -> int:
    return stats.get(f"cmdstat_{command}", {}).get("calls", 0)


async def test_redis_down_raises_lease_store_unavailable_and_a_restart_recovers(
    redis_server: RedisServer, redis_store: RedisLeaseStore, clock: MovableClock
) -> None:
    redis_server.require_control()
    held = lease(clock)
    await redis_store.acquire([held])

    await asyncio.to_thread(redis_server.kill)
    try:
        assert await redis_store.healthy() is False
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: redis_store.acquire([held]),
            lambda: redis_store.renew([held]),
            lambda: redis_store.release([held.holder]),
            lambda: redis_store.alive([held.key]),
        ]
        for call in calls:
            with pytest.raises(LeaseStoreUnavailable) as raised:
                await call()
            assert raised.value.store == "redis"
    finally:
        await asyncio.to_thread(redis_server.restart)

    # Same store, pooled connections broken by the restart, script cache empty: it recovers,
    # and the lease is gone with Redis's memory.
    assert await redis_store.healthy() is True
    [result] = await redis_store.renew([held])
    assert result.reason is RenewRefusal.UNKNOWN
