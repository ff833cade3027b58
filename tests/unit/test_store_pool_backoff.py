"""The pool's reconnect backoff is capped (tpf_store._pool_backoff)."""

from __future__ import annotations

from psycopg_pool import pool_async

from tpf_store import pool  # noqa: F401  (importing the pool module installs the cap)
from tpf_store._pool_backoff import MAX_RECONNECT_DELAY_S, CappedBackoff


def test_async_pools_use_the_capped_backoff() -> None:
    assert getattr(pool_async, "AttemptWithBackoff") is CappedBackoff  # noqa: B009


def test_delays_grow_but_never_past_the_cap() -> None:
    attempt = CappedBackoff(timeout=300)
    delays = []
    for now in range(10):
        attempt.update_delay(float(now))
        delays.append(attempt.delay)
    assert delays[0] < delays[1]
    assert max(delays) == MAX_RECONNECT_DELAY_S
    assert all(delay <= MAX_RECONNECT_DELAY_S for delay in delays)
