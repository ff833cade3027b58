"""Fault tests reuse the end-to-end fixtures (services as real processes)."""

from tests.e2e.conftest import registry, registry_env

__all__ = ["registry", "registry_env"]
