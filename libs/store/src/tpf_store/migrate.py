"""Schema migrations: numbered SQL files per component, applied once each, under an advisory lock.

A component (e.g. "registry") ships `migrations/NNNN_<what>.sql` inside its package. `migrate()`
runs at service startup, or once per rollout as the service's `migrate` command; replicas
starting together serialise on a per-component advisory lock, so each file runs exactly once.
Every applied file is recorded in `schema_version` with its sha256, in the same transaction as
the file itself; a file edited after it was applied makes startup fail rather than leave the
schema different from what the code expects. A service started with TPF_MIGRATE_ON_START=false
checks `pending_migrations()` instead of migrating.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import itertools
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_result,
    stop_after_delay,
    wait_exponential_jitter,
)

from tpf_store.pool import Pool

_LOG = logging.getLogger(__name__)

NO_TRANSACTION_MARKER = "-- tpf:no-transaction"
_FILE_NAME = re.compile(r"^(?P<version>\d{4,})_(?P<what>[A-Za-z0-9_]+)\.sql$")

CREATE_SCHEMA_VERSION = """
CREATE TABLE IF NOT EXISTS schema_version (
    component  text        NOT NULL,
    version    int         NOT NULL,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version)
)
"""
SELECT_APPLIED = "SELECT version, name, checksum FROM schema_version WHERE component = %s"
SCHEMA_VERSION_EXISTS = "SELECT to_regclass('schema_version') IS NOT NULL"
INSERT_APPLIED = """
INSERT INTO schema_version (component, version, name, checksum, applied_at)
VALUES (%s, %s, %s, %s, now())
"""
TRY_LOCK = "SELECT pg_try_advisory_lock(%s)"
UNLOCK = "SELECT pg_advisory_unlock(%s)"
LOCK_FOR_TRANSACTION = "SELECT pg_advisory_xact_lock(%s)"


class MigrationError(Exception):
    """Migrations could not be loaded or applied; the service must not start."""


class MigrationFileInvalid(MigrationError):
    """A file in migrations/ is misnamed, duplicated, or not UTF-8."""


class MigrationChecksumMismatch(MigrationError):
    """An applied migration file changed afterwards; merged migrations are append-only."""

    def __init__(
        self, *, component: str, file_name: str, recorded_checksum: str, actual_checksum: str
    ) -> None:
        super().__init__(
            f"migration {file_name} of component {component!r} was edited after it was applied"
            f" (recorded sha256 {recorded_checksum}, file now {actual_checksum}); put the change"
            " in a new file instead"
        )
        self.component = component
        self.file_name = file_name
        self.recorded_checksum = recorded_checksum
        self.actual_checksum = actual_checksum


class MigrationsPending(MigrationError):
    """The database lacks migrations this code needs, and the service was told not to apply
    them (TPF_MIGRATE_ON_START=false): the `migrate` command has not run yet."""

    def __init__(self, *, component: str, file_names: list[str]) -> None:
        super().__init__(
            f"the database lacks {len(file_names)} migration(s) of component {component!r} "
            f"({', '.join(file_names)}); run `tpf-{component} migrate` first"
        )
        self.component = component
        self.file_names = file_names


class MigrationFailed(MigrationError):
    """A migration file raised an error; its transaction was rolled back."""

    def __init__(self, *, component: str, file_name: str) -> None:
        super().__init__(f"migration {file_name} of component {component!r} failed")
        self.component = component
        self.file_name = file_name


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    file_name: str
    sql: str
    checksum: str
    is_transactional: bool


def parse_migration(file_name: str, content: bytes) -> Migration:
    """Build a Migration from a file's name and bytes; the checksum covers the bytes."""
    match = _FILE_NAME.match(file_name)
    if match is None:
        raise MigrationFileInvalid(f"{file_name}: migration files are named NNNN_<what>.sql")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MigrationFileInvalid(f"{file_name}: not UTF-8 ({error})") from error
    first_line = text.split("\n", 1)[0].strip()
    return Migration(
        version=int(match["version"]),
        file_name=file_name,
        sql=text,
        checksum=hashlib.sha256(content).hexdigest(),
        is_transactional=first_line != NO_TRANSACTION_MARKER,
    )


def load_migrations(package: str) -> list[Migration]:
    """The migrations in `<package>/migrations/`, in version order. Files not ending in .sql
    (an `__init__.py`, a README) are ignored."""
    root = importlib.resources.files(package) / "migrations"
    if not root.is_dir():
        raise MigrationFileInvalid(f"package {package} has no migrations/ directory")
    migrations = [
        parse_migration(entry.name, entry.read_bytes())
        for entry in root.iterdir()
        if entry.is_file() and entry.name.endswith(".sql")
    ]
    migrations.sort(key=lambda migration: migration.version)
    for previous, current in itertools.pairwise(migrations):
        if previous.version == current.version:
            raise MigrationFileInvalid(
                f"{previous.file_name} and {current.file_name} share version {current.version}"
            )
    return migrations


def advisory_lock_key(component: str) -> int:
    """A stable bigint for pg_advisory_lock, the same in every process and release."""
    digest = hashlib.sha256(f"tpf_store.migrate:{component}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


# Components migrate under different locks, so two of them may race to create schema_version;
# concurrent CREATE TABLE IF NOT EXISTS can still fail on the catalog's unique index.
_SCHEMA_VERSION_LOCK_KEY = advisory_lock_key("schema_version")


# How long a process waits for another one's migrations (an index build may take minutes).
LOCK_WAIT_S = 1800.0


class MigrationLockTimeout(MigrationError):
    """Another process held the component's migration lock for longer than we wait."""


async def migrate(
    pool_or_url: Pool | str, *, component: str, package: str, lock_wait_s: float = LOCK_WAIT_S
) -> list[int]:
    """Apply the pending migrations of `component` from `package`; return the versions applied.

    Raises MigrationChecksumMismatch if an applied file changed, MigrationFailed if a file fails,
    MigrationLockTimeout if another process kept the lock for `lock_wait_s`.
    """
    migrations = load_migrations(package)
    lock_key = advisory_lock_key(component)
    async with _autocommit_connection(pool_or_url) as conn:
        await _lock(conn, component, lock_key, lock_wait_s)
        try:
            await _ensure_schema_version_table(conn)
            applied_checksums = await _applied_checksums(conn, component)
            _verify_checksums(component, migrations, applied_checksums)
            applied_now: list[int] = []
            for migration in migrations:
                if migration.version not in applied_checksums:
                    await _apply(conn, component, migration)
                    applied_now.append(migration.version)
            return applied_now
        finally:
            if not conn.broken:
                await conn.execute(UNLOCK, (lock_key,))


async def pending_migrations(
    pool_or_url: Pool | str, *, component: str, package: str
) -> list[Migration]:
    """The migrations of `component` not applied yet, changing nothing.

    Versions applied by newer code are fine (a rollback keeps running on an expanded schema);
    raises MigrationChecksumMismatch if an applied file changed.
    """
    migrations = load_migrations(package)
    async with _autocommit_connection(pool_or_url) as conn:
        cursor = await conn.execute(SCHEMA_VERSION_EXISTS)
        row = await cursor.fetchone()
        applied_checksums = await _applied_checksums(conn, component) if row and row[0] else {}
    _verify_checksums(component, migrations, applied_checksums)
    return [m for m in migrations if m.version not in applied_checksums]


async def _lock(
    conn: AsyncConnection[TupleRow], component: str, lock_key: int, wait_s: float
) -> None:
    # Polled, not pg_advisory_lock: a statement blocked on a lock holds a snapshot, and
    # CREATE INDEX CONCURRENTLY in the holder's migration waits for every older snapshot, so
    # the two would deadlock (Postgres aborts one of them).
    async def try_lock() -> bool:
        cursor = await conn.execute(TRY_LOCK, (lock_key,))
        row = await cursor.fetchone()
        return bool(row and row[0])

    retrying = AsyncRetrying(
        retry=retry_if_result(lambda locked: not locked),
        wait=wait_exponential_jitter(multiplier=0.05, max=1.0, jitter=0.05),
        stop=stop_after_delay(wait_s),
    )
    try:
        await retrying(try_lock)
    except RetryError:
        raise MigrationLockTimeout(
            f"another process has held the migration lock of component {component!r} for "
            f"{wait_s:.0f} s"
        ) from None


@asynccontextmanager
async def _autocommit_connection(
    pool_or_url: Pool | str,
) -> AsyncIterator[AsyncConnection[TupleRow]]:
    # Autocommit, so that the session-level advisory lock outlives each file's transaction and a
    # no-transaction file really runs outside one.
    if isinstance(pool_or_url, str):
        async with await AsyncConnection.connect(pool_or_url, autocommit=True) as conn:
            yield conn
        return
    async with pool_or_url.connection() as conn:
        await conn.set_autocommit(True)
        try:
            yield conn
        finally:
            # The pool hands this connection out again; it must come back as it left.
            if not conn.broken:
                await conn.set_autocommit(False)


async def _ensure_schema_version_table(conn: AsyncConnection[TupleRow]) -> None:
    async with conn.transaction():
        await conn.execute(LOCK_FOR_TRANSACTION, (_SCHEMA_VERSION_LOCK_KEY,))
        await conn.execute(CREATE_SCHEMA_VERSION)


async def _applied_checksums(conn: AsyncConnection[TupleRow], component: str) -> dict[int, str]:
    cursor = await conn.execute(SELECT_APPLIED, (component,))
    return {version: checksum for version, _name, checksum in await cursor.fetchall()}


def _verify_checksums(
    component: str, migrations: list[Migration], applied_checksums: dict[int, str]
) -> None:
    for migration in migrations:
        recorded = applied_checksums.get(migration.version)
        if recorded is not None and recorded != migration.checksum:
            raise MigrationChecksumMismatch(
                component=component,
                file_name=migration.file_name,
                recorded_checksum=recorded,
                actual_checksum=migration.checksum,
            )


async def _apply(conn: AsyncConnection[TupleRow], component: str, migration: Migration) -> None:
    # Migration files are code shipped inside our packages, never user input: running their text
    # as a query is the one place where SQL does not come from a literal.
    statements = migration.sql
    record = (component, migration.version, migration.file_name, migration.checksum)
    try:
        if migration.is_transactional:
            async with conn.transaction():
                await conn.execute(statements)
                await conn.execute(INSERT_APPLIED, record)
        else:
            # CREATE INDEX CONCURRENTLY cannot run inside a transaction block, and a query string
            # holding several statements is one implicit transaction: such a file holds one
            # statement. If we crash between it and the INSERT below, the statement runs again on
            # the next start, so write it to be repeatable (IF NOT EXISTS).
            await conn.execute(statements)
            async with conn.transaction():
                await conn.execute(INSERT_APPLIED, record)
    except psycopg.Error as error:
        raise MigrationFailed(component=component, file_name=migration.file_name) from error
    _LOG.info(
        "applied migration %s",
        migration.file_name,
        extra={"component": component, "version": migration.version},
    )
