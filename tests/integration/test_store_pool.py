"""open_pool and wait_for_database against a real server, including one that restarts."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import psycopg
import psycopg_pool
import pytest

from tests.harness.ports import free_port
from tests.harness.wait import wait_until
from tpf_store import EmbeddedPostgres, Pool, open_pool, single_statement, wait_for_database
from tpf_store.pool import RECENTLY_USED_S, TrackedConnection, check_unless_recently_used


@pytest.fixture
def embedded(embedded_data_dir: Path) -> Iterator[EmbeddedPostgres]:
    """A server of the test's own (not yet started), so that restarting it disturbs nobody."""
    server = EmbeddedPostgres(embedded_data_dir, port=free_port(), fast=True)
    try:
        yield server
    finally:
        server.stop()


@asynccontextmanager
async def started_pool(
    embedded: EmbeddedPostgres, *, min_size: int, max_size: int
) -> AsyncIterator[Pool]:
    """The test's server started, and a pool on it (closed when the block ends)."""
    await asyncio.to_thread(embedded.start)
    pool = await open_pool(embedded.url, min_size=min_size, max_size=max_size)
    try:
        yield pool
    finally:
        await pool.close()


async def test_pool_connections_are_transactional(embedded: EmbeddedPostgres) -> None:
    async with started_pool(embedded, min_size=1, max_size=2) as pool:
        async with pool.connection() as conn:
            assert conn.autocommit is False
            await conn.execute("CREATE TABLE t (x int)")
            await conn.execute("INSERT INTO t VALUES (1)")
            await conn.rollback()
        async with pool.connection() as conn:
            cursor = await conn.execute("SELECT to_regclass('t') IS NULL")
            assert await cursor.fetchone() == (True,)


async def test_a_connection_switched_to_autocommit_comes_back_transactional(
    embedded: EmbeddedPostgres,
) -> None:
    async with started_pool(embedded, min_size=1, max_size=1) as pool:
        async with single_statement(pool) as conn:
            assert conn.autocommit is True
            await conn.execute("CREATE TABLE single (x int)")
        async with pool.connection() as conn:
            assert conn.autocommit is False
            cursor = await conn.execute("SELECT to_regclass('single') IS NOT NULL")
            assert await cursor.fetchone() == (True,)


async def test_pool_replaces_connections_broken_by_a_postgres_restart(
    embedded: EmbeddedPostgres,
) -> None:
    async with started_pool(embedded, min_size=2, max_size=2) as pool:
        async with pool.connection() as conn:
            cursor = await conn.execute("SELECT pg_backend_pid()")
            old_backend = await cursor.fetchone()

        await asyncio.to_thread(embedded.kill)
        await asyncio.to_thread(embedded.start)
        await asyncio.sleep(RECENTLY_USED_S)

        # Without the checkout check the pool would hand out a connection to the dead server.
        async with pool.connection() as conn:
            cursor = await conn.execute("SELECT pg_backend_pid()")
            new_backend = await cursor.fetchone()
        assert new_backend is not None
        assert new_backend != old_backend


async def test_a_connection_broken_moments_after_use_fails_one_call_and_is_replaced(
    embedded: EmbeddedPostgres,
) -> None:
    async with started_pool(embedded, min_size=1, max_size=1) as pool:
        async with pool.connection() as conn:
            backend = await (await conn.execute("SELECT pg_backend_pid()")).fetchone()
        assert backend is not None
        async with await psycopg.AsyncConnection.connect(embedded.url, autocommit=True) as admin:
            await admin.execute("SELECT pg_terminate_backend(%s)", backend)

        # Returned an instant ago, the connection is handed out unchecked: its call fails
        # (DATABASE_UNAVAILABLE for a client) and the pool discards it.
        with pytest.raises(psycopg.OperationalError):
            async with pool.connection() as conn:
                await conn.execute("SELECT 1")
        async with pool.connection() as conn:
            fresh = await (await conn.execute("SELECT pg_backend_pid()")).fetchone()
        assert fresh is not None and fresh != backend


async def test_the_checkout_check_runs_only_for_connections_idle_past_the_window(
    embedded: EmbeddedPostgres,
) -> None:
    await asyncio.to_thread(embedded.start)
    conn = await TrackedConnection.connect(embedded.url, autocommit=True)
    try:
        backend = await (await conn.execute("SELECT pg_backend_pid()")).fetchone()
        async with await psycopg.AsyncConnection.connect(embedded.url, autocommit=True) as admin:
            await admin.execute("SELECT pg_terminate_backend(%s)", backend)
        await asyncio.sleep(0.2)  # the backend is gone; libpq does not know it yet

        conn.returned_at = time.monotonic()
        await check_unless_recently_used(conn)  # no round trip: nothing notices

        conn.returned_at = time.monotonic() - RECENTLY_USED_S
        with pytest.raises(psycopg.OperationalError):
            await check_unless_recently_used(conn)
    finally:
        await conn.close()


async def test_open_pool_gives_up_when_the_database_is_unreachable() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"

    with pytest.raises(psycopg_pool.PoolTimeout):
        await open_pool(url, open_timeout_s=0.5)


async def test_wait_for_database_retries_until_the_server_comes_up(
    embedded: EmbeddedPostgres, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tpf_store.pool")
    waiting = asyncio.create_task(wait_for_database(embedded.url, timeout_s=60))
    await wait_until(
        lambda: any("OperationalError" in record.getMessage() for record in caplog.records),
        what="a refused attempt logged before the server starts",
    )
    assert not waiting.done()

    await asyncio.to_thread(embedded.start)

    await asyncio.wait_for(waiting, timeout=30)


async def test_wait_for_database_raises_the_connection_error_at_the_deadline() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"

    with pytest.raises(psycopg.OperationalError):
        await wait_for_database(url, timeout_s=0.5)
