"""The LeaseStore seam and the values that cross it.

A lease says "execution (tenant, id) is being worked on by `owner`, who claimed it at `version`,
until `expires_at_ms`". The executions row in Postgres is the authority: a claim writes status
RUNNING, `version + 1`, the lease owner and expiry in one transaction, and every later commit is
conditional on that version (the fencing token). A LeaseStore is the fast, advisory layer on top:
it keeps heartbeats off the row (Redis), or, with no Redis configured, extends the row itself.
Either way, losing a lease can make recovery slower or earlier, never unsafe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True, slots=True)
class LeaseKey:
    """Which execution a lease is for."""

    tenant_id: str
    execution_id: str


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """Who holds a lease: the claimant and the row version its claim wrote (the fencing token).

    Release takes a holder rather than a bare key, so a late release from a claimant that lost
    the lease cannot delete the lease of the claimant that replaced it.
    """

    key: LeaseKey
    owner: str
    version: int


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease to record (acquire) or extend (renew): held by `owner` at `version` until
    `expires_at_ms` (epoch ms)."""

    key: LeaseKey
    owner: str
    version: int
    expires_at_ms: int

    @property
    def holder(self) -> LeaseHolder:
        return LeaseHolder(self.key, self.owner, self.version)


class RenewRefusal(StrEnum):
    """Why a renewal was refused."""

    # The store holds the lease for another owner or another version, or (rows) the execution is
    # no longer RUNNING: the caller has lost the lease and must drop the work.
    NOT_HELD = "not_held"
    # The store has no lease for this key: expired, released, never recorded, or lost with a
    # Redis restart (rows: no such execution). Only the row can tell whether the caller still
    # holds it; FallbackLeaseStore asks the row before answering.
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class RenewResult:
    """The answer for one renewal: renewed until `expires_at_ms`, or refused with `reason`."""

    key: LeaseKey
    renewed: bool
    # The new expiry (epoch ms) when renewed; 0 when refused.
    expires_at_ms: int
    reason: RenewRefusal | None

    @classmethod
    def granted(cls, key: LeaseKey, expires_at_ms: int) -> RenewResult:
        return cls(key=key, renewed=True, expires_at_ms=expires_at_ms, reason=None)

    @classmethod
    def refused(cls, key: LeaseKey, reason: RenewRefusal) -> RenewResult:
        return cls(key=key, renewed=False, expires_at_ms=0, reason=reason)


class LeaseStore(Protocol):
    """Leases of running executions, in batches; one round trip per call.

    Advisory implementations raise `LeaseStoreUnavailable` when their backend cannot be
    reached; nothing else about an outage reaches the caller.
    """

    async def acquire(self, leases: Sequence[Lease]) -> None:
        """Record freshly claimed leases (the claim already wrote the row).

        A lease never replaces one stored for a higher version of the same execution: versions
        only grow, so the higher one belongs to the newer claim.
        """
        ...

    async def renew(self, renewals: Sequence[Lease]) -> list[RenewResult]:
        """Compare-and-extend: extend each lease to its `expires_at_ms` only if the store still
        holds it for that `owner` at that `version`. One result per renewal, in order."""
        ...

    async def release(self, holders: Sequence[LeaseHolder]) -> None:
        """Drop leases after their commit, each only if still held by that owner and version."""
        ...

    async def alive(self, keys: Sequence[LeaseKey]) -> set[LeaseKey]:
        """The keys whose lease is still held by anyone (for the sweeper)."""
        ...

    async def healthy(self) -> bool:
        """Whether the backend answers right now; never raises."""
        ...

    async def close(self) -> None:
        """Release connections this store opened (not those it was given)."""
        ...
