"""FallbackLeaseStore's switching rules, with in-memory stores and a clock the test moves.

The real thing (Redis killed and restarted, rows in Postgres) is in
tests/integration/test_lease_fallback_redis_outage.py; here the outage is a switch we own.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest

from tests.unit.test_lease_contract import MovableClock, lease
from tpf_lease import (
    FallbackLeaseStore,
    InMemoryLeaseStore,
    Lease,
    LeaseHolder,
    LeaseKey,
    LeaseStoreUnavailable,
    RenewRefusal,
    RenewResult,
)

REPROBE_MS = 5_000
LOGGER = "test.lease.fallback"


class SwitchableStore:
    """An InMemoryLeaseStore that raises LeaseStoreUnavailable while `down`, counting calls."""

    def __init__(self, clock: MovableClock) -> None:
        self.inner = InMemoryLeaseStore(clock=clock)
        self.down = False
        self.attempts = 0
        self.closed = False

    def _attempt(self) -> None:
        self.attempts += 1
        if self.down:
            raise LeaseStoreUnavailable("switchable", "switched off")

    async def acquire(self, leases: Sequence[Lease]) -> None:
        self._attempt()
        await self.inner.acquire(leases)

    async def renew(self, renewals: Sequence[Lease]) -> list[RenewResult]:
        self._attempt()
        return await self.inner.renew(renewals)

    async def release(self, holders: Sequence[LeaseHolder]) -> None:
        self._attempt()
        await self.inner.release(holders)

    async def alive(self, keys: Sequence[LeaseKey]) -> set[LeaseKey]:
        self._attempt()
        return await self.inner.alive(keys)

    async def healthy(self) -> bool:
        return not self.down

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def primary(clock: MovableClock) -> SwitchableStore:
    return SwitchableStore(clock)


@pytest.fixture
def rows(clock: MovableClock) -> SwitchableStore:
    """Stands in for the row store: the authority the fallback consults."""
    return SwitchableStore(clock)


@pytest.fixture
def store(
    primary: SwitchableStore, rows: SwitchableStore, clock: MovableClock
) -> FallbackLeaseStore:
    return FallbackLeaseStore(
        primary,
        rows,
        clock=clock,
        log=logging.getLogger(LOGGER),
        reprobe_interval_ms=REPROBE_MS,
    )


def _records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno == level]


async def test_a_healthy_primary_answers_everything(
    store: FallbackLeaseStore, primary: SwitchableStore, rows: SwitchableStore, clock: MovableClock
) -> None:
    held = lease(clock)
    await store.acquire([held])
    [result] = await store.renew([held])
    alive = await store.alive([held.key])
    await store.release([held.holder])

    assert result.renewed
    assert alive == {held.key}
    assert primary.attempts == 4
    assert rows.attempts == 0
    assert not store.is_degraded


async def test_primary_outage_falls_back_to_rows_and_warns_once(
    store: FallbackLeaseStore,
    primary: SwitchableStore,
    rows: SwitchableStore,
    clock: MovableClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    held = lease(clock)
    await rows.inner.acquire([held])
    primary.down = True

    results = [await store.renew([held]) for _ in range(3)]

    assert all(result.renewed for [result] in results)
    assert store.is_degraded
    assert len(_records(caplog, logging.WARNING)) == 1
    assert "switched off" in _records(caplog, logging.WARNING)[0].getMessage()
    # Only the first call tried the primary; the others went straight to the rows.
    assert primary.attempts == 1
    assert rows.attempts == 3


async def test_degraded_store_reprobes_the_primary_at_most_once_per_interval(
    store: FallbackLeaseStore,
    primary: SwitchableStore,
    clock: MovableClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    primary.down = True
    key = LeaseKey("acme", "e1")
    await store.alive([key])
    assert primary.attempts == 1

    clock.advance(REPROBE_MS - 1)
    await store.alive([key])
    assert primary.attempts == 1

    clock.advance(1)
    await store.alive([key])
    await store.alive([key])
    assert primary.attempts == 2
    assert store.is_degraded
    assert len(_records(caplog, logging.WARNING)) == 1


async def test_primary_answering_again_ends_the_fallback_and_logs_once(
    store: FallbackLeaseStore,
    primary: SwitchableStore,
    rows: SwitchableStore,
    clock: MovableClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    key = LeaseKey("acme", "e1")
    primary.down = True
    await store.alive([key])
    primary.down = False

    await store.alive([key])
    assert store.is_degraded, "no probe before the interval has passed"

    clock.advance(REPROBE_MS)
    await store.alive([key])
    await store.alive([key])

    assert not store.is_degraded
    assert primary.attempts == 3
    assert rows.attempts == 2
    assert len(_records(caplog, logging.INFO)) == 1


async def test_a_renewal_the_primary_lost_is_confirmed_by_the_row_and_written_back(
    store: FallbackLeaseStore, primary: SwitchableStore, rows: SwitchableStore, clock: MovableClock
) -> None:
    # As after a Redis restart: the row holds the lease, the primary has forgotten it.
    held = lease(clock, owner="d1", version=3)
    await rows.inner.acquire([held])
    extended = lease(clock, owner="d1", version=3, lease_ms=60_000)

    [result] = await store.renew([extended])

    assert result == RenewResult.granted(held.key, extended.expires_at_ms)
    [again] = await primary.inner.renew([extended])
    assert again.renewed, "the lease was written back to the primary"


async def test_a_renewal_the_primary_lost_and_the_row_refuses_is_not_held(
    store: FallbackLeaseStore, primary: SwitchableStore, rows: SwitchableStore, clock: MovableClock
) -> None:
    await rows.inner.acquire([lease(clock, owner="d2", version=4)])
    stale = lease(clock, owner="d1", version=3)

    [result] = await store.renew([stale])

    assert result.reason is RenewRefusal.NOT_HELD
    assert await primary.inner.alive([stale.key]) == set()


async def test_only_unknown_renewals_are_asked_of_the_row(
    store: FallbackLeaseStore, primary: SwitchableStore, rows: SwitchableStore, clock: MovableClock
) -> None:
    in_primary = lease(clock, "e1")
    only_in_rows = lease(clock, "e2")
    await primary.inner.acquire([in_primary])
    await rows.inner.acquire([only_in_rows])

    results = await store.renew([in_primary, only_in_rows, lease(clock, "e3")])

    assert [r.renewed for r in results] == [True, True, False]
    assert results[2].reason is RenewRefusal.UNKNOWN
    assert rows.attempts == 1


async def test_healthy_while_either_store_answers(
    store: FallbackLeaseStore, primary: SwitchableStore, rows: SwitchableStore
) -> None:
    primary.down = True
    assert await store.healthy() is True
    rows.down = True
    assert await store.healthy() is False


async def test_close_closes_both_stores(
    store: FallbackLeaseStore, primary: SwitchableStore, rows: SwitchableStore
) -> None:
    await store.close()

    assert primary.closed
    assert rows.closed
