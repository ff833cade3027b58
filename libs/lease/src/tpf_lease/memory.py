"""InMemoryLeaseStore: RedisLeaseStore's semantics in a dict, for unit tests of lease users.

It follows the Redis store rule for rule (a higher stored version survives acquire; renew and
release compare owner and version; a lease past its expiry is gone), with time read from the
injected clock, so a test moves the clock instead of waiting. One process only; not for
production.
"""

from __future__ import annotations

from collections.abc import Sequence

from tpf_lease.clock import Clock
from tpf_lease.protocol import Lease, LeaseHolder, LeaseKey, RenewRefusal, RenewResult


class InMemoryLeaseStore:
    def __init__(self, *, clock: Clock) -> None:
        self._clock = clock
        self._leases: dict[LeaseKey, Lease] = {}

    def _current(self, key: LeaseKey) -> Lease | None:
        lease = self._leases.get(key)
        if lease is not None and lease.expires_at_ms <= self._clock.now_ms():
            del self._leases[key]
            return None
        return lease

    async def acquire(self, leases: Sequence[Lease]) -> None:
        for lease in leases:
            current = self._current(lease.key)
            if current is None or current.version < lease.version or current.holder == lease.holder:
                self._leases[lease.key] = lease

    async def renew(self, renewals: Sequence[Lease]) -> list[RenewResult]:
        results: list[RenewResult] = []
        for lease in renewals:
            current = self._current(lease.key)
            if current is None:
                results.append(RenewResult.refused(lease.key, RenewRefusal.UNKNOWN))
            elif current.holder != lease.holder:
                results.append(RenewResult.refused(lease.key, RenewRefusal.NOT_HELD))
            else:
                self._leases[lease.key] = lease
                results.append(RenewResult.granted(lease.key, lease.expires_at_ms))
        return results

    async def release(self, holders: Sequence[LeaseHolder]) -> None:
        for holder in holders:
            current = self._current(holder.key)
            if current is not None and current.holder == holder:
                del self._leases[holder.key]

    async def alive(self, keys: Sequence[LeaseKey]) -> set[LeaseKey]:
        return {key for key in keys if self._current(key) is not None}

    async def healthy(self) -> bool:
        return True

    async def close(self) -> None:
        self._leases.clear()
