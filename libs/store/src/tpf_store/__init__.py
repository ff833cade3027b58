"""tpf_store: the Postgres pool factory, the migration runner and the embedded Postgres launcher."""

from tpf_store.embedded import EmbeddedPostgres, EmbeddedPostgresError, embedded_default_database
from tpf_store.migrate import (
    Migration,
    MigrationChecksumMismatch,
    MigrationError,
    MigrationFailed,
    MigrationFileInvalid,
    MigrationLockTimeout,
    MigrationsPending,
    load_migrations,
    migrate,
    pending_migrations,
)
from tpf_store.pool import (
    Pool,
    connection_retrying,
    open_pool,
    single_statement,
    wait_for_database,
)
from tpf_store.service_command import (
    migrate_service_database,
)
from tpf_store.service_database import ServiceDatabase, open_service_database

__all__ = [
    "EmbeddedPostgres",
    "EmbeddedPostgresError",
    "Migration",
    "MigrationChecksumMismatch",
    "MigrationError",
    "MigrationFailed",
    "MigrationFileInvalid",
    "MigrationLockTimeout",
    "MigrationsPending",
    "Pool",
    "ServiceDatabase",
    "connection_retrying",
    "embedded_default_database",
    "load_migrations",
    "migrate",
    "migrate_service_database",
    "open_pool",
    "open_service_database",
    "pending_migrations",
    "single_statement",
    "wait_for_database",
]
