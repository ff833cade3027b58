"""Fixtures of the end-to-end tests: services as real processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.registry_client import auth_env


@pytest.fixture
def registry_env(database: str, tmp_path: Path) -> dict[str, str]:
    """Environment of a registry process: a fresh migrated database, its own data dir (artifact
    store, staging) and the test tokens of tests.support.registry_client."""
    return {
        "TPF_DATABASE_URL": database,
        "TPF_DATA_DIR": str(tmp_path / "registry-data"),
        "TPF_LOG_LEVEL": "INFO",
        **auth_env(),
    }


@pytest.fixture
def registry(start_service: Any, registry_env: dict[str, str]) -> Any:
    """A real `python -m tpf_registry` process, serving once its gRPC health says SERVING."""
    return start_service("tpf_registry", registry_env)
