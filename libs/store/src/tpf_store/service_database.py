"""The database a service runs on: its Postgres URL or the embedded default, a pool, migrations."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import PoolTimeout

from tpf_config import ConfigError
from tpf_store.embedded import EmbeddedPostgres, embedded_available, embedded_default_database
from tpf_store.migrate import MigrationsPending, migrate, pending_migrations
from tpf_store.pool import Pool, open_pool

log = logging.getLogger(__name__)


@dataclass
class ServiceDatabase:
    pool: Pool
    url: str
    embedded: EmbeddedPostgres | None

    async def close(self) -> None:
        await self.pool.close()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)


async def open_service_database(
    *,
    database_url: str | None,
    data_dir: Path,
    component: str,
    package: str,
    pool_name: str,
    min_size: int,
    max_size: int,
    migrate_on_start: bool = True,
) -> ServiceDatabase:
    """Open the pool on `database_url` (or start the embedded default under `data_dir`) and
    apply the component's migrations; everything opened is closed again if a step fails.

    With `migrate_on_start` False (TPF_MIGRATE_ON_START=false: the `migrate` command runs once
    per rollout instead), only check that every migration is applied: ConfigError if not, so a
    pod on a schema that is behind stops before it serves.
    """
    embedded = None
    if database_url is not None:
        url = database_url
    elif not embedded_available():
        raise ConfigError(
            "TPF_DATABASE_URL is not set and the embedded default is not installed (the "
            "tpf-store[embedded] extra, which `make dev` has and the image leaves out); set "
            "TPF_DATABASE_URL to your Postgres"
        )
    else:
        embedded, url = await asyncio.to_thread(embedded_default_database, data_dir)
        log.info("using embedded Postgres", extra={"data_dir": str(data_dir)})
    try:
        pool = await open_pool(url, min_size=min_size, max_size=max_size, name=pool_name)
    except PoolTimeout:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
        # A startup problem the operator fixes, not a bug: a one-line message, no traceback.
        raise ConfigError(
            f"Cannot connect to the database at {_where(url)}; check TPF_DATABASE_URL and that "
            "Postgres is up"
        ) from None
    except BaseException:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
        raise
    database = ServiceDatabase(pool, url, embedded)
    try:
        if migrate_on_start:
            await migrate(pool, component=component, package=package)
        else:
            await _require_migrated(pool, component=component, package=package)
    except BaseException:
        await database.close()
        raise
    return database


async def _require_migrated(pool: Pool, *, component: str, package: str) -> None:
    pending = await pending_migrations(pool, component=component, package=package)
    if pending:
        # The operator's fix is a step of the rollout, not code: a one-line message, exit 2.
        error = MigrationsPending(component=component, file_names=[m.file_name for m in pending])
        raise ConfigError(f"{error} (TPF_MIGRATE_ON_START is false)")


def _where(url: str) -> str:
    """host:port/dbname of a URL, without credentials (messages must not leak secrets)."""
    try:
        parts = conninfo_to_dict(url)
    except Exception:  # a malformed URL: say nothing more than that
        return "the configured URL"
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"
