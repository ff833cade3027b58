"""migrate() against real Postgres, with migration packages written into tmp_path per test."""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import psycopg
import pytest

from tests.harness.wait import wait_until
from tpf_store import (
    MigrationChecksumMismatch,
    MigrationFailed,
    MigrationFileInvalid,
    MigrationLockTimeout,
    migrate,
    open_pool,
)
from tpf_store.migrate import advisory_lock_key


class MigrationPackage:
    """An importable package `<name>/migrations/*.sql` that a test writes files into."""

    def __init__(self, root: Path, name: str) -> None:
        self.name = name
        self.migrations_dir = root / name / "migrations"
        self.migrations_dir.mkdir(parents=True)
        (root / name / "__init__.py").write_text("")

    def write(self, file_name: str, text: str) -> Path:
        path = self.migrations_dir / file_name
        path.write_text(text)
        return path


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MigrationPackage:
    """A throwaway migrations package on sys.path, uniquely named so imports never collide."""
    monkeypatch.syspath_prepend(str(tmp_path))
    created = MigrationPackage(tmp_path, f"tpf_test_migrations_{uuid.uuid4().hex}")
    importlib.invalidate_caches()
    return created


async def _rows(url: str, query: str) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cursor = await conn.execute(query)
        return await cursor.fetchall()


async def test_applies_files_in_version_order_and_records_each(
    database: str, package: MigrationPackage
) -> None:
    package.write("0010_third.sql", "INSERT INTO events (what) VALUES ('third');")
    package.write("0002_second.sql", "INSERT INTO events (what) VALUES ('second');")
    first = package.write(
        "0001_first.sql",
        "CREATE TABLE events (id serial PRIMARY KEY, what text);\n"
        "INSERT INTO events (what) VALUES ('first');",
    )
    package.write("README.md", "not a migration")

    applied = await migrate(database, component="demo", package=package.name)

    assert applied == [1, 2, 10]
    assert await _rows(database, "SELECT what FROM events ORDER BY id") == [
        ("first",),
        ("second",),
        ("third",),
    ]
    recorded = await _rows(
        database,
        "SELECT version, name, checksum FROM schema_version"
        " WHERE component = 'demo' ORDER BY version",
    )
    assert [(version, name) for version, name, _ in recorded] == [
        (1, "0001_first.sql"),
        (2, "0002_second.sql"),
        (10, "0010_third.sql"),
    ]
    assert recorded[0][2] == hashlib.sha256(first.read_bytes()).hexdigest()


async def test_second_run_applies_nothing_and_a_new_file_applies_alone(
    database: str, package: MigrationPackage
) -> None:
    package.write("0001_table.sql", "CREATE TABLE counter (n int); INSERT INTO counter VALUES (1);")
    await migrate(database, component="demo", package=package.name)

    assert await migrate(database, component="demo", package=package.name) == []

    package.write("0002_more.sql", "INSERT INTO counter VALUES (2);")
    assert await migrate(database, component="demo", package=package.name) == [2]
    assert await _rows(database, "SELECT n FROM counter ORDER BY n") == [(1,), (2,)]


async def test_concurrent_migrators_apply_each_file_exactly_once(
    database: str, package: MigrationPackage
) -> None:
    package.write("0001_log.sql", "CREATE TABLE log (version int PRIMARY KEY);")
    package.write("0002_a.sql", "INSERT INTO log VALUES (2);")
    package.write("0003_b.sql", "INSERT INTO log VALUES (3);")
    migrators = 4
    # Hold the component's lock so that every migrator is started and queued on it before any
    # can proceed; releasing it then makes them all race for the same pending files.
    async with await psycopg.AsyncConnection.connect(database, autocommit=True) as holder:
        await holder.execute("SELECT pg_advisory_lock(%s)", (advisory_lock_key("demo"),))
        runs = [
            asyncio.create_task(migrate(database, component="demo", package=package.name))
            for _ in range(migrators)
        ]

        await wait_until(all_tried_the_lock(database, migrators), what="every migrator waiting")
        await holder.execute("SELECT pg_advisory_unlock(%s)", (advisory_lock_key("demo"),))
        results = await asyncio.gather(*runs)

    applied_versions = sorted(version for result in results for version in result)
    assert applied_versions == [1, 2, 3]
    assert await _rows(database, "SELECT version FROM log ORDER BY version") == [(2,), (3,)]
    assert await _rows(
        database, "SELECT count(*) FROM schema_version WHERE component = 'demo'"
    ) == [(3,)]


def all_tried_the_lock(database: str, migrators: int) -> Callable[[], Awaitable[bool]]:
    """True once `migrators` sessions have asked for a migration lock (they poll for it)."""

    async def tried() -> bool:
        asking = await _rows(
            database,
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE query LIKE 'SELECT pg_try_advisory_lock%' AND pid <> pg_backend_pid()",
        )
        return asking == [(migrators,)]

    return tried


async def test_migrators_waiting_on_one_that_builds_an_index_concurrently_all_succeed(
    database: str, package: MigrationPackage
) -> None:
    # CREATE INDEX CONCURRENTLY waits for every older snapshot; a migrator blocked inside a
    # lock statement holds one, so blocking waits deadlocked (pods starting together).
    package.write("0001_table.sql", "CREATE TABLE items (x int);")
    package.write(
        "0002_index.sql",
        "-- tpf:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS items_x ON items (x);\n",
    )
    async with await psycopg.AsyncConnection.connect(database, autocommit=True) as holder:
        await holder.execute("SELECT pg_advisory_lock(%s)", (advisory_lock_key("demo"),))
        runs = [
            asyncio.create_task(migrate(database, component="demo", package=package.name))
            for _ in range(2)
        ]
        await wait_until(all_tried_the_lock(database, 2), what="both migrators waiting")
        await holder.execute("SELECT pg_advisory_unlock(%s)", (advisory_lock_key("demo"),))
        results = await asyncio.gather(*runs)

    assert sorted(results) == [[], [1, 2]]
    assert await _rows(
        database, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'items_x'::regclass"
    ) == [(True,)]


async def test_a_migrator_gives_up_when_another_keeps_the_lock(
    database: str, package: MigrationPackage
) -> None:
    package.write("0001_table.sql", "CREATE TABLE never (x int);")
    async with await psycopg.AsyncConnection.connect(database, autocommit=True) as holder:
        await holder.execute("SELECT pg_advisory_lock(%s)", (advisory_lock_key("demo"),))
        with pytest.raises(MigrationLockTimeout, match="'demo'"):
            await migrate(database, component="demo", package=package.name, lock_wait_s=0.3)
    assert await _rows(database, "SELECT to_regclass('never') IS NULL") == [(True,)]


async def test_edited_applied_file_is_refused_naming_the_file(
    database: str, package: MigrationPackage
) -> None:
    package.write("0001_table.sql", "CREATE TABLE t (x int);")
    await migrate(database, component="demo", package=package.name)
    package.write("0001_table.sql", "CREATE TABLE t (x bigint);")
    package.write("0002_pending.sql", "CREATE TABLE never_applied (x int);")

    with pytest.raises(MigrationChecksumMismatch, match=r"0001_table\.sql") as refused:
        await migrate(database, component="demo", package=package.name)

    assert refused.value.file_name == "0001_table.sql"
    assert await _rows(database, "SELECT to_regclass('never_applied') IS NULL") == [(True,)]


async def test_no_transaction_file_runs_create_index_concurrently(
    database: str, package: MigrationPackage
) -> None:
    package.write("0001_table.sql", "CREATE TABLE items (x int);")
    package.write(
        "0002_index.sql",
        "-- tpf:no-transaction\n"
        "-- CONCURRENTLY cannot run in a transaction block.\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS items_x ON items (x);\n",
    )

    assert await migrate(database, component="demo", package=package.name) == [1, 2]

    assert await _rows(
        database,
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'items_x'::regclass",
    ) == [(True,)]


async def test_create_index_concurrently_without_the_marker_fails_and_is_not_recorded(
    database: str, package: MigrationPackage
) -> None:
    package.write("0001_table.sql", "CREATE TABLE items (x int);")
    package.write("0002_index.sql", "CREATE INDEX CONCURRENTLY items_x ON items (x);")

    with pytest.raises(MigrationFailed, match=r"0002_index\.sql"):
        await migrate(database, component="demo", package=package.name)

    assert await _rows(database, "SELECT version FROM schema_version WHERE component = 'demo'") == [
        (1,)
    ]


async def test_failing_file_rolls_back_entirely_and_releases_the_lock(
    database: str, package: MigrationPackage
) -> None:
    package.write("0001_ok.sql", "CREATE TABLE ok (x int);")
    package.write("0002_broken.sql", "CREATE TABLE half (x int); SELECT 1 / 0;")

    with pytest.raises(MigrationFailed, match=r"0002_broken\.sql"):
        await migrate(database, component="demo", package=package.name)

    assert await _rows(database, "SELECT to_regclass('half') IS NULL") == [(True,)]
    assert await _rows(database, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == [
        (0,)
    ]
    package.write("0002_broken.sql", "CREATE TABLE half (x int);")
    assert await migrate(database, component="demo", package=package.name) == [2]


async def test_components_keep_separate_versions(
    database: str, package: MigrationPackage, tmp_path: Path
) -> None:
    other = MigrationPackage(tmp_path, f"{package.name}_other")
    package.write("0001_a.sql", "CREATE TABLE a (x int);")
    other.write("0001_b.sql", "CREATE TABLE b (x int);")

    first, second = await asyncio.gather(
        migrate(database, component="alpha", package=package.name),
        migrate(database, component="beta", package=other.name),
    )

    assert (first, second) == ([1], [1])
    assert await _rows(
        database,
        "SELECT component, name FROM schema_version"
        " WHERE component IN ('alpha', 'beta') ORDER BY component",
    ) == [("alpha", "0001_a.sql"), ("beta", "0001_b.sql")]


async def test_migrating_through_a_pool_returns_the_connection_as_it_was(
    database: str, package: MigrationPackage
) -> None:
    package.write("0001_a.sql", "CREATE TABLE a (x int);")
    pool = await open_pool(database, min_size=1, max_size=1)
    try:
        assert await migrate(pool, component="demo", package=package.name) == [1]

        async with pool.connection() as conn:
            assert conn.autocommit is False
            cursor = await conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
            assert await cursor.fetchone() == (0,)
    finally:
        await pool.close()


async def test_misnamed_and_duplicate_files_are_rejected_before_connecting(
    package: MigrationPackage,
) -> None:
    unreachable = "postgresql://postgres@127.0.0.1:1/postgres"
    package.write("0001_a.sql", "SELECT 1;")
    package.write("0001_b.sql", "SELECT 1;")
    with pytest.raises(MigrationFileInvalid, match="share version 1"):
        await migrate(unreachable, component="demo", package=package.name)

    (package.migrations_dir / "0001_b.sql").unlink()
    package.write("2_short.sql", "SELECT 1;")
    with pytest.raises(MigrationFileInvalid, match=r"2_short\.sql"):
        await migrate(unreachable, component="demo", package=package.name)
