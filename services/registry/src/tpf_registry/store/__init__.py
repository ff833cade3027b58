"""Persistence of releases and workers (Protocols and their Postgres implementation)."""
