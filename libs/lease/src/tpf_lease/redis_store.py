"""RedisLeaseStore: leases as Redis keys with a TTL, compared and extended by Lua in batches.

Key `tpf:lease:{tenant}:{execution}` holds `{owner}:{version}` with `PX` = time left on the
lease. Every call is one round trip whatever the batch size: acquire, renew and release each run
one script over all their keys (EVALSHA, falling back to loading the script after a Redis
restart), and alive is one MGET. The scripts take several keys, so with Redis Cluster the keys of
one batch would have to share a hash slot; we target a single Redis (or a primary with replicas).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Final

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tpf_lease.clock import Clock
from tpf_lease.errors import LeaseStoreUnavailable
from tpf_lease.protocol import Lease, LeaseHolder, LeaseKey, RenewRefusal, RenewResult

DEFAULT_KEY_PREFIX: Final = "tpf:lease:"
STORE_NAME: Final = "redis"

# KEYS[i]: lease key; ARGV[3i-2]: "{owner}:{version}", ARGV[3i-1]: version, ARGV[3i]: ttl ms.
# A plain SET could let a late write of an old claim (or a heartbeat re-seeding a lease) replace
# the lease of a newer claim; versions only grow, so the higher stored version is kept.
ACQUIRE_SCRIPT: Final = """
for i, key in ipairs(KEYS) do
  local value = ARGV[3 * i - 2]
  local version = tonumber(ARGV[3 * i - 1])
  local current = redis.call('GET', key)
  local current_version = current and tonumber(string.match(current, ':(%d+)$'))
  if not current_version or current_version < version or current == value then
    redis.call('SET', key, value, 'PX', ARGV[3 * i])
  end
end
return #KEYS
"""

# KEYS[i]: lease key; ARGV[2i-1]: expected "{owner}:{version}", ARGV[2i]: ttl ms.
# Returns per key: 1 renewed, 0 no lease stored (unknown), -1 held by someone else (not held).
RENEW_SCRIPT: Final = """
local results = {}
for i, key in ipairs(KEYS) do
  local current = redis.call('GET', key)
  if not current then
    results[i] = 0
  elseif current == ARGV[2 * i - 1] then
    redis.call('PEXPIRE', key, ARGV[2 * i])
    results[i] = 1
  else
    results[i] = -1
  end
end
return results
"""

# KEYS[i]: lease key; ARGV[i]: expected "{owner}:{version}". Returns how many were deleted.
RELEASE_SCRIPT: Final = """
local released = 0
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i] then
    redis.call('DEL', key)
    released = released + 1
  end
end
return released
"""

_RENEWED: Final = 1
_NO_LEASE: Final = 0

# Errors that mean "Redis cannot serve leases right now": unreachable, timed out, still loading
# (BusyLoadingError is a ConnectionError), a replica that refuses writes, or full memory.
# Anything else (a script error, say) is a bug and propagates unchanged.
_UNAVAILABLE_ERRORS: Final = (
    RedisConnectionError,
    RedisTimeoutError,
    ReadOnlyError,
    OutOfMemoryError,
)


def lease_key_name(key: LeaseKey, prefix: str = DEFAULT_KEY_PREFIX) -> str:
    """`{prefix}{tenant}:{execution}`; a ':' or '\\' in the tenant id is escaped with '\\'.

    Without the escape, tenant "a:b" with execution "c" and tenant "a" with execution "b:c"
    would share a key. Tenant ids without those characters get exactly the documented key.
    """
    tenant = key.tenant_id.replace("\\", "\\\\").replace(":", "\\:")
    return f"{prefix}{tenant}:{key.execution_id}"


def lease_value(owner: str, version: int) -> str:
    """`{owner}:{version}`; the scripts read the version back as the digits after the last ':'."""
    return f"{owner}:{version}"


@contextmanager
def _unavailable_on_connection_errors() -> Iterator[None]:
    try:
        yield
    except _UNAVAILABLE_ERRORS as error:
        raise LeaseStoreUnavailable(STORE_NAME, f"{type(error).__name__}: {error}") from error


class RedisLeaseStore:
    """LeaseStore on Redis. Fails fast when Redis is away, so the caller can fall back.

    redis-py's default retry backs off for seconds; here a call retries once at once (enough to
    replace a pooled connection broken by a Redis restart) and then raises
    LeaseStoreUnavailable. Expiries are turned into TTLs with the injected clock, so Redis and
    the row agree on when a lease ends as long as the clock is the coordinator's.
    """

    def __init__(
        self,
        url: str,
        *,
        clock: Clock,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        timeout_s: float = 1.0,
    ) -> None:
        self._clock = clock
        self._key_prefix = key_prefix
        self._redis: Redis = Redis.from_url(
            url,
            socket_connect_timeout=timeout_s,
            socket_timeout=timeout_s,
            retry=Retry(NoBackoff(), retries=1),
        )
        self._acquire_script = self._redis.register_script(ACQUIRE_SCRIPT)
        self._renew_script = self._redis.register_script(RENEW_SCRIPT)
        self._release_script = self._redis.register_script(RELEASE_SCRIPT)

    def key_name(self, key: LeaseKey) -> str:
        return lease_key_name(key, self._key_prefix)

    def _ttl_ms(self, expires_at_ms: int, now_ms: int) -> int:
        # PX must be positive; a lease already past its expiry lives for one millisecond.
        return max(1, expires_at_ms - now_ms)

    async def acquire(self, leases: Sequence[Lease]) -> None:
        if not leases:
            return
        now_ms = self._clock.now_ms()
        args: list[str | int] = []
        for lease in leases:
            args += [
                lease_value(lease.owner, lease.version),
                lease.version,
                self._ttl_ms(lease.expires_at_ms, now_ms),
            ]
        with _unavailable_on_connection_errors():
            await self._acquire_script(
                keys=[self.key_name(lease.key) for lease in leases], args=args
            )

    async def renew(self, renewals: Sequence[Lease]) -> list[RenewResult]:
        if not renewals:
            return []
        now_ms = self._clock.now_ms()
        args: list[str | int] = []
        for lease in renewals:
            args += [
                lease_value(lease.owner, lease.version),
                self._ttl_ms(lease.expires_at_ms, now_ms),
            ]
        with _unavailable_on_connection_errors():
            outcomes = await self._renew_script(
                keys=[self.key_name(lease.key) for lease in renewals], args=args
            )
        return [
            _renew_result(lease, int(outcome))
            for lease, outcome in zip(renewals, outcomes, strict=True)
        ]

    async def release(self, holders: Sequence[LeaseHolder]) -> None:
        if not holders:
            return
        with _unavailable_on_connection_errors():
            await self._release_script(
                keys=[self.key_name(holder.key) for holder in holders],
                args=[lease_value(holder.owner, holder.version) for holder in holders],
            )

    async def alive(self, keys: Sequence[LeaseKey]) -> set[LeaseKey]:
        if not keys:
            return set()
        with _unavailable_on_connection_errors():
            values = await self._redis.mget([self.key_name(key) for key in keys])
        return {key for key, value in zip(keys, values, strict=True) if value is not None}

    async def healthy(self) -> bool:
        try:
            with _unavailable_on_connection_errors():
                return bool(await self._redis.ping())
        except LeaseStoreUnavailable:
            return False

    async def close(self) -> None:
        await self._redis.aclose()


def _renew_result(lease: Lease, outcome: int) -> RenewResult:
    if outcome == _RENEWED:
        return RenewResult.granted(lease.key, lease.expires_at_ms)
    if outcome == _NO_LEASE:
        return RenewResult.refused(lease.key, RenewRefusal.UNKNOWN)
    return RenewResult.refused(lease.key, RenewRefusal.NOT_HELD)
