"""The connection pool every service uses, and waiting for Postgres at startup."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

import psycopg
from psycopg import AsyncConnection
from psycopg.pq import ConnStatus, TransactionStatus
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool
from tenacity import (
    AsyncRetrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from tpf_store import _pool_backoff

_LOG = logging.getLogger(__name__)

_pool_backoff.install()

Pool: TypeAlias = AsyncConnectionPool[AsyncConnection[TupleRow]]

# libpq's connect_timeout has a floor of 2 seconds; a single attempt should not eat the whole
# startup budget when the server is unreachable rather than refusing.
_CONNECT_TIMEOUT_S = 5
# How long a call waits for a connection before it answers DATABASE_UNAVAILABLE. The pool keeps
# reconnecting meanwhile, so this wait is the call's one retry of the database; short, so that
# every API answers within 5 s while Postgres is down, including a call that reaches the
# database through another service (the coordinator asking the registry).
DEFAULT_ACQUIRE_TIMEOUT_S = 2.5
# A connection returned to the pool this recently, healthy as far as libpq knows, is handed out
# again without the round trip of a check: under load every checkout would otherwise cost one
# more query (about a fifth of a busy coordinator's statements). A connection idle longer is
# checked, so one broken by a Postgres restart is still replaced rather than handed out; one
# broken within this window fails its call with DATABASE_UNAVAILABLE and is discarded.
RECENTLY_USED_S = 1.0


class TrackedConnection(AsyncConnection[TupleRow]):
    """A pooled connection that remembers when it was last returned to the pool."""

    returned_at: float = 0.0


async def _on_return(conn: Any) -> None:
    """A unit of work may switch its connection to autocommit for a single statement (one round
    trip instead of three); every connection goes back into the pool transactional."""
    if conn.autocommit:
        await conn.set_autocommit(False)
    conn.returned_at = time.monotonic()


async def check_unless_recently_used(conn: Any) -> None:
    """The pool's checkout check: skipped for a connection returned under RECENTLY_USED_S ago."""
    if (
        time.monotonic() - getattr(conn, "returned_at", 0.0) < RECENTLY_USED_S
        and conn.pgconn.status == ConnStatus.OK
        and conn.pgconn.transaction_status == TransactionStatus.IDLE
    ):
        return
    await AsyncConnectionPool.check_connection(conn)


async def open_pool(
    url: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    name: str = "tpf",
    open_timeout_s: float = 30.0,
    acquire_timeout_s: float = DEFAULT_ACQUIRE_TIMEOUT_S,
) -> Pool:
    """Open a pool and wait until `min_size` connections are established.

    Connections start with autocommit off: a unit of work is
    `async with pool.connection() as conn, conn.transaction():`; one that is a single statement
    may run in autocommit (`single_statement`), and the pool turns that off again on return. A
    connection is checked on checkout unless it was returned moments ago
    (`check_unless_recently_used`), so connections broken by a Postgres restart are replaced
    rather than handed out.
    Raises psycopg_pool.PoolTimeout if the database is not reachable within `open_timeout_s`.
    A call waits at most `acquire_timeout_s` for a connection (PoolTimeout), so a caller learns
    that the database is down in seconds rather than after psycopg's default of 30 s. With a
    healthy database a wait that long means every connection is busy for seconds: answering
    UNAVAILABLE then is the honest answer too.
    """
    pool: Pool = AsyncConnectionPool(
        url,
        connection_class=TrackedConnection,
        min_size=min_size,
        max_size=max_size,
        name=name,
        kwargs={"autocommit": False, "connect_timeout": _CONNECT_TIMEOUT_S},
        check=check_unless_recently_used,
        reset=_on_return,
        timeout=acquire_timeout_s,
        open=False,
    )
    try:
        await pool.open(wait=True, timeout=open_timeout_s)
    except BaseException:
        # open() already started the pool's workers; without close() they keep reconnecting.
        await pool.close()
        raise
    return pool


@asynccontextmanager
async def single_statement(pool: Pool) -> AsyncIterator[AsyncConnection[TupleRow]]:
    """A pooled connection in autocommit, for work that is one statement (or reads that need no
    common snapshot): no BEGIN and COMMIT (or ROLLBACK) round trips. The pool makes it
    transactional again when it is returned."""
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        yield conn


def connection_retrying(*, timeout_s: float) -> AsyncRetrying:
    """Retry policy for transient connection failures (psycopg.OperationalError).

    Exponential backoff with jitter, so that services restarted together do not reconnect in
    lockstep, and a deadline after which the last error is re-raised. Usage:

        async for attempt in connection_retrying(timeout_s=30):
            with attempt:
                ...
    """
    return AsyncRetrying(
        stop=stop_after_delay(timeout_s),
        wait=wait_exponential_jitter(multiplier=0.05, max=2.0, jitter=0.25),
        retry=retry_if_exception_type(psycopg.OperationalError),
        before_sleep=before_sleep_log(_LOG, logging.INFO),
        reraise=True,
    )


async def wait_for_database(url: str, timeout_s: float) -> None:
    """Wait until `url` accepts a connection and answers a query; for service startup.

    Raises the last psycopg.OperationalError once `timeout_s` has passed.
    """
    async for attempt in connection_retrying(timeout_s=timeout_s):
        with attempt:
            conn = await psycopg.AsyncConnection.connect(
                url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT_S
            )
            async with conn:
                await conn.execute("SELECT 1")
