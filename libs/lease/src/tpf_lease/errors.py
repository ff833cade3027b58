"""The one failure a LeaseStore caller is expected to handle: the advisory store is unreachable."""

from __future__ import annotations


class LeaseStoreUnavailable(Exception):
    """The lease store could not be reached (refused, timed out, loading, read-only, out of memory).

    Raised only by advisory stores (Redis). Callers fall back to the row lease
    (`FallbackLeaseStore` does this for them); nothing is lost, because the row in Postgres is
    the authority and every commit is fenced by its version. The lower-level error is kept as
    `__cause__`. Postgres failures are not wrapped: the row store lets psycopg's errors through,
    so the coordinator maps them as DATABASE_UNAVAILABLE like every other database call.
    """

    def __init__(self, store: str, detail: str) -> None:
        super().__init__(f"{store} lease store unavailable: {detail}")
        self.store = store
        self.detail = detail
