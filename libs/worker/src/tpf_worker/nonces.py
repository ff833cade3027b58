"""Nonce caches for signed worker requests: a replayed request is refused while it could still
pass the timestamp check (`signed_at ± tolerance`), at any request rate.

`MemoryNonceCache` is bounded by time, not by a count: an entry lives until the request it
belongs to would be refused as stale anyway. `RedisNonceCache` shares the nonces of every replica
of a worker (`SET NX PX`: one atomic round trip per request), so a request replayed to another
replica is caught too. Redis holds nothing that must survive: when it cannot be reached the
cache falls back to memory (replays to the same replica are still caught) and says so in the log.
"""

from __future__ import annotations

import heapq
import logging
from datetime import UTC, datetime
from typing import Protocol

import redis.asyncio as redis_asyncio
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

KEY_PREFIX = "tpf:worker-nonce:"


class NonceCache(Protocol):
    async def seen(self, nonce: str, now: datetime) -> bool:
        """Whether `nonce` is remembered at `now` (without remembering it)."""
        ...

    async def remember(self, nonce: str, until: datetime, now: datetime) -> bool:
        """Remember `nonce` from `now` until `until`; False if it already was (a replay)."""
        ...


def _epoch_s(moment: datetime) -> float:
    return moment.astimezone(UTC).timestamp()


class MemoryNonceCache:
    """Nonces of this process, each kept until its `until` time (a heap orders the purge)."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._expiries: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._until)

    async def seen(self, nonce: str, now: datetime) -> bool:
        self._purge(_epoch_s(now))
        return nonce in self._until

    async def remember(self, nonce: str, until: datetime, now: datetime) -> bool:
        self._purge(_epoch_s(now))
        if nonce in self._until:
            return False
        expires = _epoch_s(until)
        self._until[nonce] = expires
        heapq.heappush(self._expiries, (expires, nonce))
        return True

    def _purge(self, now: float) -> None:
        while self._expiries and self._expiries[0][0] < now:
            expires, nonce = heapq.heappop(self._expiries)
            if self._until.get(nonce) == expires:
                del self._until[nonce]


class RedisNonceCache:
    """Nonces shared through Redis by every replica; memory while Redis is unreachable."""

    def __init__(self, client: redis_asyncio.Redis, *, prefix: str = KEY_PREFIX) -> None:
        self._client = client
        self._prefix = prefix
        self._fallback = MemoryNonceCache()
        self._degraded = False

    @classmethod
    def from_url(cls, url: str) -> RedisNonceCache:
        return cls(
            redis_asyncio.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def seen(self, nonce: str, now: datetime) -> bool:
        try:
            found = bool(await self._client.exists(self._prefix + nonce))
        except RedisError as error:
            self._degrade(error)
            return await self._fallback.seen(nonce, now)
        self._recover()
        return found or await self._fallback.seen(nonce, now)

    async def remember(self, nonce: str, until: datetime, now: datetime) -> bool:
        ttl_ms = max(1, int((_epoch_s(until) - _epoch_s(now)) * 1000))
        try:
            stored = await self._client.set(self._prefix + nonce, b"1", nx=True, px=ttl_ms)
        except RedisError as error:
            self._degrade(error)
            return await self._fallback.remember(nonce, until, now)
        self._recover()
        # A nonce remembered in memory during an outage is still a replay after it.
        return bool(stored) and not await self._fallback.seen(nonce, now)

    def _degrade(self, error: RedisError) -> None:
        if not self._degraded:
            self._degraded = True
            logger.warning(
                "Redis is unreachable (%s): worker nonces are checked in this replica's memory "
                "only until it answers again, so a replay to another replica is not caught",
                error,
            )

    def _recover(self) -> None:
        if self._degraded:
            self._degraded = False
            logger.info("Redis answers again: worker nonces are shared across replicas")
