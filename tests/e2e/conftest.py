"""Fixtures of the end-to-end tests: services as real processes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.registry_client import ADMIN, auth_env, declare_local_host, registry_client
from tests.support.release_artifacts import PIPELINE_ID, BuiltRelease, build_release
from tpf.registry.v1 import release_pb2
from tpf.registry.v1 import release_service_pb2 as rpb
from tpf.registry.v1 import worker_service_pb2 as wpb


@pytest.fixture
def registry_env(database: str, tmp_path: Path) -> dict[str, str]:
    """Environment of a registry process: a fresh migrated database, its own data dir (artifact
    store, staging) and the test tokens of tests.support.registry_client."""
    return {
        "TPF_DATABASE_URL": database,
        "TPF_DATA_DIR": str(tmp_path / "registry-data"),
        # Tests build releases under their own tmp_path; the registry may read only there.
        "TPF_REGISTRY_ARTIFACT_ROOTS": str(tmp_path),
        "TPF_LOG_LEVEL": "INFO",
        **auth_env(),
    }


@pytest.fixture
def registry(registry_env: dict[str, str], start_service: Any) -> Any:
    """A real `python -m tpf_registry` process, serving once its gRPC health says SERVING."""
    return start_service("tpf_registry", registry_env)


@dataclass
class Suite:
    """A registry and a coordinator as real processes, with the demo release active."""

    registry: Any
    coordinator: Any
    release: BuiltRelease
    tenant: str
    coordinator_env: dict[str, str]


# Fast retries so retry paths finish within a test; part of the release's policy.
FAST_RETRY = release_pb2.RetryPolicy(max_retries=2, multiplier=1.0)
FAST_RETRY.initial_delay.FromMilliseconds(20)
FAST_RETRY.max_delay.FromMilliseconds(50)


@pytest.fixture
async def suite(
    database: str, registry_env: dict[str, str], start_service: Any, tmp_path: Path
) -> Suite:
    """Registry + coordinator on one fresh database; the restaurant release registered with
    fast retries, activated, and a `local` worker registered so submissions are admitted.

    `database` is set up before `start_service`, so the services stop before it is dropped."""
    registry = start_service("tpf_registry", registry_env)
    built = build_release(tmp_path / "release")
    tenant = "restaurant-demo"
    async with registry_client(registry.target) as client:
        await client.releases.RegisterRelease(
            rpb.RegisterReleaseRequest(
                tenant_id=tenant,
                pipeline_id=PIPELINE_ID,
                release_descriptor_path=str(built.descriptor_path),
                policy=release_pb2.ReleasePolicy(default_retry=FAST_RETRY),
            )
        )
        await client.releases.ActivateRelease(
            rpb.ActivateReleaseRequest(
                tenant_id=tenant, pipeline_id=PIPELINE_ID, release_version=built.release_version
            )
        )
        await client.workers.RegisterWorker(
            wpb.RegisterWorkerRequest(
                tenant_id=tenant,
                pipeline_id=PIPELINE_ID,
                worker_id="local-worker",
                contract_version=built.contract_version,
                release_version=built.release_version,
                protocol="local",
            )
        )
        await declare_local_host(
            client, pipeline_id=PIPELINE_ID, contract_version=built.contract_version
        )
    coordinator_env = {
        "TPF_DATABASE_URL": database,
        "TPF_DATA_DIR": str(tmp_path / "coordinator-data"),
        "TPF_REGISTRY_TARGET": registry.target,
        "TPF_REGISTRY_TOKEN": ADMIN,
        "TPF_REGISTRY_CACHE_S": "0",
        "TPF_SWEEP_INTERVAL_MS": "100",
        **auth_env(),
    }
    coordinator = start_service("tpf_coordinator", coordinator_env)
    return Suite(registry, coordinator, built, tenant, coordinator_env)
