"""kill -9 of the registry in the middle of a registration leaves no partial release."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest

from tests.e2e.test_registry_releases import TENANT
from tests.support.grpc_errors import expect_error
from tests.support.registry_client import registry_client
from tests.support.release_artifacts import PIPELINE_ID, build_release
from tpf.registry.v1 import release_service_pb2 as pb

pytestmark = pytest.mark.e2e

ARTIFACT_BYTES = 96 * 1024 * 1024

# Rows that would betray a half-written registration.
ORPHANS = """
SELECT
  (SELECT count(*) FROM releases r WHERE NOT EXISTS (
     SELECT 1 FROM release_artifacts a WHERE a.tenant_id = r.tenant_id
       AND a.pipeline_id = r.pipeline_id AND a.release_version = r.release_version)),
  (SELECT count(*) FROM releases r WHERE NOT EXISTS (
     SELECT 1 FROM registry_events e WHERE e.tenant_id = r.tenant_id
       AND e.pipeline_id = r.pipeline_id AND e.resource_id = r.release_version
       AND e.event = 'REGISTERED'))
"""


async def _poll_fast(predicate: Callable[[], bool], *, timeout_s: float) -> bool:
    """A tight poll (crash points last ~100 ms); returns False at the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.002)
    return False


@pytest.mark.parametrize("crash_point", ["while-fetching", "after-storing-the-copy"])
async def test_kill_9_mid_registration_leaves_nothing_partial(
    start_service: Any,
    registry_env: dict[str, str],
    database: str,
    tmp_path: Path,
    crash_point: str,
) -> None:
    data_dir = Path(registry_env["TPF_DATA_DIR"])
    staging = data_dir / "staging"
    artifacts = data_dir / "releases" / "artifacts"
    built = build_release(tmp_path, release_version="big", filler=ARTIFACT_BYTES)
    registry = start_service("tpf_registry", registry_env)
    request = pb.RegisterReleaseRequest(
        tenant_id=TENANT,
        pipeline_id=PIPELINE_ID,
        release_descriptor_path=str(built.descriptor_path),
    )

    def reached() -> bool:
        if crash_point == "while-fetching":
            return staging.is_dir() and any(staging.iterdir())
        return artifacts.is_dir() and any(p.suffix == ".jar" for p in artifacts.iterdir())

    async with registry_client(registry.target) as client:
        call = asyncio.ensure_future(client.releases.RegisterRelease(request))
        hit = await _poll_fast(reached, timeout_s=30)
        await asyncio.to_thread(registry.kill)
        with pytest.raises(grpc.aio.AioRpcError):
            # Killed before it answered; if it answered first, the crash point was missed.
            response = await call
            pytest.fail(f"registration finished before the crash point ({hit=}): {response}")
    assert hit, f"crash point {crash_point} never observed"

    with psycopg.connect(database) as conn:
        orphan_releases, releases_without_event = conn.execute(ORPHANS).fetchone() or (0, 0)
        assert (orphan_releases, releases_without_event) == (0, 0)

    await asyncio.to_thread(registry.restart)
    assert list(staging.glob("stage-*")) == [], "interrupted staging files are cleaned at start"
    async with registry_client(registry.target) as client:
        existing = await client.releases.ListReleases(
            pb.ListReleasesRequest(tenant_id=TENANT, pipeline_id=PIPELINE_ID)
        )
        # Either the commit never happened, or it happened whole: never a partial record.
        for release in existing.releases:
            assert release.primary_artifact_size_bytes == built.jar_path.stat().st_size
            assert len(release.artifacts) == 1
        if not existing.releases:
            await expect_error(
                client.releases.GetRelease(
                    pb.GetReleaseRequest(
                        tenant_id=TENANT, pipeline_id=PIPELINE_ID, release_version="big"
                    )
                ),
                grpc.StatusCode.NOT_FOUND,
                "RELEASE_NOT_FOUND",
            )
        # Registering again after the crash works, and yields one complete release.
        again = await client.releases.RegisterRelease(request)
        assert again.release.primary_artifact_checksum == built.digest
        listed = await client.releases.ListReleases(
            pb.ListReleasesRequest(tenant_id=TENANT, pipeline_id=PIPELINE_ID)
        )
        assert [r.release_version for r in listed.releases] == ["big"]
