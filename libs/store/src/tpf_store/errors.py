"""What a client should see when Postgres fails underneath a call."""

from __future__ import annotations

import psycopg
from psycopg_pool import PoolTimeout

from tpf_errors import InvalidArgument, TpfError, Unavailable


def database_unavailable(error: Exception) -> TpfError | None:
    """UNAVAILABLE DATABASE_UNAVAILABLE for connection-level failures; None for anything else.

    Lost connections, refused connections, server shutdown and an exhausted pool are all
    transient from the client's side: the same call may succeed once Postgres is back. Errors of
    the statement itself (constraint violations, bad SQL) are bugs and stay INTERNAL.
    """
    if isinstance(error, PoolTimeout | psycopg.OperationalError):
        return database_unavailable_error()
    return None


def database_unavailable_error() -> TpfError:
    """UNAVAILABLE DATABASE_UNAVAILABLE, as every service answers it."""
    return Unavailable(
        "DATABASE_UNAVAILABLE",
        "The database cannot be reached right now; retry the call later",
    )


def text_not_storable(error: Exception) -> TpfError | None:
    """INVALID_ARGUMENT FIELD_INVALID for text Postgres cannot hold (the NUL character).

    Postgres text and jsonb cannot store U+0000, so a request carrying it would otherwise fail
    deep in a query as INTERNAL; it is the client's input that is wrong.
    """
    message = str(error)
    if isinstance(error, psycopg.errors.UntranslatableCharacter) or (
        isinstance(error, psycopg.DataError) and "NUL (0x00)" in message
    ):
        return InvalidArgument(
            "FIELD_INVALID",
            "Text values cannot contain the NUL character (U+0000); remove it and retry",
            detail=message.splitlines()[0] if message else "NUL character",
        )
    return None
