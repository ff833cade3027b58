"""Leases of running executions: the LeaseStore protocol and its Redis side.

`RedisLeaseStore` (advisory, fast) and `FallbackLeaseStore` (Redis, falling back to another
store while Redis is away). The store on the executions row itself (the embedded default) is the
coordinator's `tpf_coordinator.store.leases_postgres.RowLeaseStore`, beside the table it writes.
Safety never depends on the lease store: commits are fenced by the row version.
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
    "SystemClock",
]
