"""Leases of running executions: a LeaseStore protocol with Redis and Postgres-row implementations.

`RedisLeaseStore` (advisory, fast), `RowLeaseStore` (the executions row; embedded default) and
`FallbackLeaseStore` (Redis, falling back to rows while Redis is away). Safety never depends on
the lease store: commits are fenced by the row version (DESIGN §4).
"""

from tpf_lease.clock import Clock, SystemClock
from tpf_lease.errors import LeaseStoreUnavailable
from tpf_lease.fallback import FallbackLeaseStore
from tpf_lease.memory import InMemoryLeaseStore
from tpf_lease.protocol import (
    Lease,
    LeaseHolder,
    LeaseKey,
    LeaseStore,
    RenewRefusal,
    RenewResult,
)
from tpf_lease.redis_store import RedisLeaseStore
from tpf_lease.row_store import RowLeaseStore

__all__ = [
    "Clock",
    "FallbackLeaseStore",
    "InMemoryLeaseStore",
    "Lease",
    "LeaseHolder",
    "LeaseKey",
    "LeaseStore",
    "LeaseStoreUnavailable",
    "RedisLeaseStore",
    "RenewRefusal",
    "RenewResult",
    "RowLeaseStore",
    "SystemClock",
]
