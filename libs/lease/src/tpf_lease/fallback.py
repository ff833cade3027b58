"""FallbackLeaseStore: Redis while it answers, the executions row while it does not.

Safety never depends on Redis. Every commit of a step's outcome is a conditional UPDATE on the
row's version (the fencing token), so a dispatcher whose lease was lost, expired early or never
recorded can at worst have its late commit refused; it can never overwrite a newer claimant's
work. Losing Redis therefore loses no data: the sweeper either waits for the row lease (slower
recovery) or requeues an execution whose Redis key vanished while its worker was still busy
(earlier recovery, whose stale commit is then fenced off by the version check).

While Redis is down, every call goes to the row store, the outage is logged once (warning), and
Redis is tried again at most every `reprobe_interval_ms`; a call that finds it answering switches
back and logs that once too. A Redis that comes back from a restart has lost its keys, so a
renewal Redis answers with "unknown" is asked of the row, and a lease the row confirms is written
back to Redis: heartbeats heal the store rather than dropping work that is still held.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from tpf_lease.clock import Clock
from tpf_lease.errors import LeaseStoreUnavailable
from tpf_lease.protocol import Lease, LeaseHolder, LeaseKey, LeaseStore, RenewRefusal, RenewResult

_LOG = logging.getLogger(__name__)

DEFAULT_REPROBE_INTERVAL_MS = 5_000

T = TypeVar("T")


class FallbackLeaseStore:
    """A LeaseStore over an advisory `primary` (Redis) and the authoritative `fallback` (rows).

    Owns both stores: `close()` closes them. Only LeaseStoreUnavailable from the primary causes
    a fallback; errors of the fallback itself (Postgres down) reach the caller unchanged.
    """

    def __init__(
        self,
        primary: LeaseStore,
        fallback: LeaseStore,
        *,
        clock: Clock,
        log: logging.Logger = _LOG,
        reprobe_interval_ms: int = DEFAULT_REPROBE_INTERVAL_MS,
    ) -> None:
        self._primary = primary
        self._fallback = fallback
        self._clock = clock
        self._log = log
        self._reprobe_interval_ms = reprobe_interval_ms
        self._degraded = False
        self._next_probe_at_ms = 0

    @property
    def is_degraded(self) -> bool:
        """True while calls go to the row store because the primary did not answer."""
        return self._degraded

    async def acquire(self, leases: Sequence[Lease]) -> None:
        await self._call(lambda store: store.acquire(leases))

    async def renew(self, renewals: Sequence[Lease]) -> list[RenewResult]:
        results, answered_by_primary = await self._call(lambda store: store.renew(renewals))
        if not answered_by_primary:
            return results
        return await self._resolve_unknown(renewals, results)

    async def release(self, holders: Sequence[LeaseHolder]) -> None:
        await self._call(lambda store: store.release(holders))

    async def alive(self, keys: Sequence[LeaseKey]) -> set[LeaseKey]:
        alive, _ = await self._call(lambda store: store.alive(keys))
        return alive

    async def healthy(self) -> bool:
        """True while either store answers: leases keep working on rows alone."""
        return await self._primary.healthy() or await self._fallback.healthy()

    async def close(self) -> None:
        try:
            await self._primary.close()
        finally:
            await self._fallback.close()

    async def _call(self, operation: Callable[[LeaseStore], Awaitable[T]]) -> tuple[T, bool]:
        """Run `operation` on the primary if it is due, else on the fallback.

        Returns the result and whether the primary produced it.
        """
        if self._degraded:
            now_ms = self._clock.now_ms()
            if now_ms < self._next_probe_at_ms:
                return await operation(self._fallback), False
            # Claim this probe before awaiting, so concurrent calls keep using the rows.
            self._next_probe_at_ms = now_ms + self._reprobe_interval_ms
        try:
            result = await operation(self._primary)
        except LeaseStoreUnavailable as error:
            self._enter_degraded(error)
            return await operation(self._fallback), False
        self._leave_degraded()
        return result, True

    async def _resolve_unknown(
        self, renewals: Sequence[Lease], results: list[RenewResult]
    ) -> list[RenewResult]:
        """Ask the row about renewals the primary had no lease for; re-seed those it confirms."""
        positions = [i for i, result in enumerate(results) if result.reason is RenewRefusal.UNKNOWN]
        if not positions:
            return results
        asked = [renewals[i] for i in positions]
        answers = await self._fallback.renew(asked)
        merged = list(results)
        for i, answer in zip(positions, answers, strict=True):
            merged[i] = answer
        confirmed = [lease for lease, answer in zip(asked, answers, strict=True) if answer.renewed]
        if confirmed:
            try:
                await self._primary.acquire(confirmed)
            except LeaseStoreUnavailable as error:
                # The row already holds the renewed lease, so the answer stands.
                self._enter_degraded(error)
        return merged

    def _enter_degraded(self, error: LeaseStoreUnavailable) -> None:
        if self._degraded:
            return
        self._degraded = True
        self._next_probe_at_ms = self._clock.now_ms() + self._reprobe_interval_ms
        self._log.warning(
            "lease store falling back to row leases: %s; retrying the primary every %d ms",
            error,
            self._reprobe_interval_ms,
        )

    def _leave_degraded(self) -> None:
        if not self._degraded:
            return
        self._degraded = False
        self._log.info("lease store primary answers again; leaving the row-lease fallback")
