"""Postgres going away under a running registry: clients get UNAVAILABLE, then it recovers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.e2e.test_registry_releases import TENANT
from tests.harness.wait import wait_until
from tests.support.grpc_errors import error_of, expect_error
from tests.support.registry_client import auth_env, registry_client
from tests.support.release_artifacts import PIPELINE_ID, build_release
from tpf.registry.v1 import release_service_pb2 as pb
from tpf_store.embedded import EmbeddedPostgres

pytestmark = pytest.mark.e2e


async def test_database_outage_is_unavailable_and_recovers(
    start_service: Any, embedded_data_dir: Path, tmp_path: Path
) -> None:
    postgres = EmbeddedPostgres(embedded_data_dir, fast=True)
    await asyncio.to_thread(postgres.start)
    try:
        await asyncio.to_thread(postgres.ensure_database, "tpf")
        registry = start_service(
            "tpf_registry",
            {
                "TPF_DATABASE_URL": postgres.url_for("tpf"),
                "TPF_DATA_DIR": str(tmp_path / "registry"),
                "TPF_REGISTRY_ARTIFACT_ROOTS": str(tmp_path),
                **auth_env(),
            },
        )
        built = build_release(tmp_path)
        list_request = pb.ListReleasesRequest(tenant_id=TENANT, pipeline_id=PIPELINE_ID)
        async with registry_client(registry.target) as client:
            await client.releases.RegisterRelease(
                pb.RegisterReleaseRequest(
                    tenant_id=TENANT,
                    pipeline_id=PIPELINE_ID,
                    release_descriptor_path=str(built.descriptor_path),
                )
            )
            await asyncio.to_thread(postgres.kill)
            found = await expect_error(
                client.releases.ListReleases(list_request),
                grpc.StatusCode.UNAVAILABLE,
                "DATABASE_UNAVAILABLE",
            )
            assert found.domain == "tpf.registry"

            await asyncio.to_thread(postgres.start)

            async def listed() -> list[str]:
                try:
                    response = await client.releases.ListReleases(list_request)
                except grpc.aio.AioRpcError as error:
                    assert error_of(error).reason == "DATABASE_UNAVAILABLE"
                    return []
                return [r.release_version for r in response.releases]

            # The pool replaces its broken connections (retrying at most every 2 s, so within
            # seconds of Postgres being back); nothing registered was lost.
            assert await wait_until(listed, timeout_s=60, what="registry back after restart") == [
                built.release_version
            ]
        assert registry.is_running
    finally:
        await asyncio.to_thread(postgres.stop)
