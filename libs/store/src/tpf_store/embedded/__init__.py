"""Embedded PostgreSQL: the suite's default database and the tests' throwaway server."""

from tpf_store.embedded.default import embedded_available, embedded_default_database
from tpf_store.embedded.server import EmbeddedPostgres, EmbeddedPostgresError

__all__ = [
    "EmbeddedPostgres",
    "EmbeddedPostgresError",
    "embedded_available",
    "embedded_default_database",
]
