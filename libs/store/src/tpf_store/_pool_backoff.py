"""Cap psycopg_pool's reconnect backoff, so a pool notices a restarted Postgres in seconds.

psycopg_pool retries a lost connection with a doubling delay (1, 2, 4, 8, 16 s, ...) for up to
`reconnect_timeout`. After a Postgres restart that meant up to ~20 s of DATABASE_UNAVAILABLE
with the database long back (`tests/fault/test_registry_database_outage.py`). The pool has no
setting for the largest delay, so the attempt class its async pool uses is replaced by one that
caps it; pinned by uv.lock, and checked at install time so a psycopg_pool that no longer has the
hook is left as it is rather than broken.
"""

from __future__ import annotations

import logging

from psycopg_pool import base, pool_async

_LOG = logging.getLogger(__name__)

MAX_RECONNECT_DELAY_S = 2.0


class CappedBackoff(base.AttemptWithBackoff):
    """psycopg_pool's backoff, at most MAX_RECONNECT_DELAY_S between attempts."""

    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, MAX_RECONNECT_DELAY_S)


def install() -> None:
    """Make async pools created from now on use CappedBackoff. Idempotent."""
    current = getattr(pool_async, "AttemptWithBackoff", None)
    if current is CappedBackoff:
        return
    if current is not base.AttemptWithBackoff:
        _LOG.warning("psycopg_pool changed; reconnect backoff left uncapped")
        return
    pool_async.AttemptWithBackoff = CappedBackoff  # type: ignore[attr-defined]
