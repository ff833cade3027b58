"""The behaviour every advisory LeaseStore shares, run here against InMemoryLeaseStore.

`LeaseStoreContract` is reused by tests/integration/test_lease_redis_store.py against a real
Redis, so the in-memory double that lease users test with cannot drift from Redis's semantics.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tpf_lease import (
    InMemoryLeaseStore,
    Lease,
    LeaseKey,
    LeaseStore,
    RenewRefusal,
    RenewResult,
)
from tpf_lease.redis_store import lease_key_name, lease_value

LEASE_MS = 30_000


@dataclass
class MovableClock:
    """A clock the test moves instead of waiting."""

    now: int = 1_700_000_000_000

    def now_ms(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


def lease(
    clock: MovableClock,
    execution_id: str = "e1",
    *,
    owner: str = "dispatcher-1",
    version: int = 1,
    tenant_id: str = "acme",
    lease_ms: int = LEASE_MS,
) -> Lease:
    return Lease(LeaseKey(tenant_id, execution_id), owner, version, clock.now_ms() + lease_ms)


class LeaseStoreContract:
    """Subclasses provide a `store` fixture built on the `clock` fixture."""

    @pytest.fixture
    def clock(self) -> MovableClock:
        return MovableClock()

    async def test_acquired_lease_is_alive_and_others_are_not(
        self, store: LeaseStore, clock: MovableClock
    ) -> None:
        held = lease(clock, "e1")
        await store.acquire([held])

        assert await store.alive([held.key, LeaseKey("acme", "e2")]) == {held.key}

    async def test_holder_renews_until_the_requested_expiry(
        self, store: LeaseStore, clock: MovableClock
    ) -> None:
        held = lease(clock)
        await store.acquire([held])
        extended = lease(clock, lease_ms=60_000)

        [result] = await store.renew([extended])

        assert result == RenewResult.granted(held.key, extended.expires_at_ms)

    async def test_stale_owner_or_version_cannot_renew(
        self, store: LeaseStore, clock: MovableClock
    ) -> None:
        held = lease(clock, owner="d1", version=4)
        await store.acquire([held])

        results = await store.renew(
            [lease(clock, owner="d2", version=4), lease(clock, owner="d1", version=3)]
        )

        assert [r.reason for r in results] == [RenewRefusal.NOT_HELD, RenewRefusal.NOT_HELD]
        assert not any(r.renewed for r in results)
        assert [r.expires_at_ms for r in results] == [0, 0]
        # The real holder is unaffected.
        [result] = await store.renew([held])
        assert result.renewed

    async def test_renewing_a_lease_the_store_never_had_is_unknown(
        self, store: LeaseStore, clock: MovableClock
    ) -> None:
        [result] = await store.renew([lease(clock, "never-acquired")])

        assert result == RenewResult.refused(
            LeaseKey("acme", "never-acquired"), RenewRefusal.UNKNOWN
        )

    async def test_renew_answers_each_item_of_a_mixed_batch_in_order(
        self, store: LeaseStore, clock: MovableClock
    ) -> None:
        mine = [lease(clock, f"e{i}", owner="d1", version=i) for i in range(3)]
        await store.acquire(mine)
        batch = [
            mine[2],
            lease(clock, "missing"),
            lease(clock, "e1", owner="d9", version=1),
            mine[0],
        ]

        results = await store.renew(batch)

        assert [r.key for r in results] == [item.key for item in batch]
        assert [r.renewed for r in results] == [True, False, False, True]
        assert [r.reason for r in results] == [
            None,
            RenewRefusal.UNKNOWN,
            RenewRefusal.NOT_HELD,
            None,
        ]

    async def test_release_by_a_stale_holder_keeps_the_lease(
        self, store: LeaseStore, clock: MovableClock
    ) -> None:
        held = lease(clock, owner="d1", version=5)
        await store.acquire([held])

        await store.release(
            [
                lease(clock, owner="d2", version=5).holder,
                lease(clock, owner="d1", version=4).holder,
            ]
        )

        assert await store.alive([held.key]) == {held.key}

    async def test_release_by_the_holder_ends_the_lease(
        self, store: LeaseStore, clock: MovableClock
    ) -> None:
        held = lease(clock, owner="d1", version=5)
        await store.acquire([held])

        await store.release([held.holder])

        assert await store.alive([held.key]) == set()
        [result] = await store.renew([held])
        assert result.reason is RenewRefusal.UNKNOWN

    async def test_a_newer_claim_replaces_the_lease_and_fences_the_old_holder(
        self, store: LeaseStore, clock: MovableClock
    ) -> None:
        old = lease(clock, owner="d1", version=1)
        new = lease(clock, owner="d2", version=2)
        await store.acquire([old])
        await store.acquire([new])

        results = await store.renew([old, new])

        assert [r.renewed for r in results] == [False, True]
        assert results[0].reason is RenewRefusal.NOT_HELD

    async def test_a_late_acquire_of_an_older_claim_does_not_replace_a_newer_one(
        self, store: LeaseStore, clock: MovableClock
    ) -> None:
        new = lease(clock, owner="d2", version=7)
        await store.acquire([new])

        await store.acquire([lease(clock, owner="d1", version=6)])

        [result] = await store.renew([new])
        assert result.renewed

    async def test_leases_are_per_tenant(self, store: LeaseStore, clock: MovableClock) -> None:
        held = lease(clock, "e1", tenant_id="acme")
        await store.acquire([held])

        other_tenant = lease(clock, "e1", tenant_id="globex")
        assert await store.alive([other_tenant.key]) == set()
        [result] = await store.renew([other_tenant])
        assert result.reason is RenewRefusal.UNKNOWN

    async def test_empty_batches_do_nothing(self, store: LeaseStore) -> None:
        await store.acquire([])
        await store.release([])
        assert await store.renew([]) == []
        assert await store.alive([]) == set()

    async def test_is_healthy(self, store: LeaseStore) -> None:
        assert await store.healthy() is True


class TestInMemoryLeaseStore(LeaseStoreContract):
    @pytest.fixture
    def store(self, clock: MovableClock) -> InMemoryLeaseStore:
        return InMemoryLeaseStore(clock=clock)

    async def test_a_lease_past_its_expiry_is_gone(
        self, store: InMemoryLeaseStore, clock: MovableClock
    ) -> None:
        held = lease(clock, lease_ms=1_000)
        await store.acquire([held])

        clock.advance(1_000)

        assert await store.alive([held.key]) == set()
        [result] = await store.renew([held])
        assert result.reason is RenewRefusal.UNKNOWN


def test_lease_key_is_the_documented_format() -> None:
    assert lease_key_name(LeaseKey("acme", "e-1")) == "tpf:lease:acme:e-1"
    assert lease_key_name(LeaseKey("acme", "e-1"), "p:") == "p:acme:e-1"
    assert lease_value("dispatcher-1", 42) == "dispatcher-1:42"


def test_lease_keys_of_colon_tenants_do_not_collide() -> None:
    first = lease_key_name(LeaseKey("a:b", "c"))
    second = lease_key_name(LeaseKey("a", "b:c"))

    assert first != second
    assert lease_key_name(LeaseKey("a\\", ":c")) != lease_key_name(LeaseKey("a\\:", "c"))
