"""`tpf-registry migrate` / `tpf-coordinator migrate`: a service's schema, once per rollout.

A service with a database takes an optional command: `serve` (the default) or `migrate`, which
applies the component's pending migrations under their advisory lock and exits. Kubernetes runs
it as an init container before the server (which then starts with TPF_MIGRATE_ON_START=false),
so a slow migration delays one rollout instead of racing the probes of every replica.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tpf_store.migrate import MigrationError
from tpf_store.service_database import open_service_database

_LOG = logging.getLogger(__name__)


async def migrate_service_database(
    *, database_url: str | None, data_dir: Path, component: str, package: str
) -> None:
    """Apply the pending migrations of `component` and return; SystemExit(1) if one fails.

    Replicas of the command may run at once (one init container per pod): the first applies
    the files, the others wait on the advisory lock and find nothing left to do.
    """
    try:
        database = await open_service_database(
            database_url=database_url,
            data_dir=data_dir,
            component=component,
            package=package,
            pool_name=f"tpf-{component}-migrate",
            min_size=1,
            max_size=1,
        )
    except MigrationError as error:
        # The cause is Postgres's own message (which statement failed and why); the exit code
        # stops the rollout before any new server starts.
        _LOG.error("migrations failed: %s: %s", error, error.__cause__ or "")
        raise SystemExit(1) from None
    await database.close()
    _LOG.info("migrations up to date", extra={"component": component})
