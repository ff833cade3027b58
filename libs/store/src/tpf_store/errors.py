"""What a client should see when Postgres fails underneath a call."""

from __future__ import annotations

import psycopg
from psycopg_pool import PoolTimeout

from tpf_errors import TpfError, Unavailable


def database_unavailable(error: Exception) -> TpfError | None:
    """UNAVAILABLE DATABASE_UNAVAILABLE for connection-level failures; None for anything else.

    Lost connections, refused connections, server shutdown and an exhausted pool are all
    transient from the client's side: the same call may succeed once Postgres is back. Errors of
    the statement itself (constraint violations, bad SQL) are bugs and stay INTERNAL.
    """
    if isinstance(error, PoolTimeout | psycopg.OperationalError):
        return Unavailable(
            "DATABASE_UNAVAILABLE",
            "The database cannot be reached right now; retry the call later",
        )
    return None
