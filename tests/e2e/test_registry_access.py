"""Roles, tenant scopes, health and reflection of a real registry process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.support.grpc_errors import expect_error
from tests.support.registry_client import (
    ADMIN,
    ADMIN_B,
    CONTROL_PLANE_A,
    WORKER_A,
    registry_client,
)
from tests.support.release_artifacts import PIPELINE_ID, build_release
from tpf.registry.v1 import release_service_pb2 as rpb
from tpf.registry.v1 import worker_service_pb2 as pb

pytestmark = pytest.mark.e2e


def register(tenant: str, path: Path) -> rpb.RegisterReleaseRequest:
    return rpb.RegisterReleaseRequest(
        tenant_id=tenant, pipeline_id=PIPELINE_ID, release_descriptor_path=str(path)
    )


async def test_tokens_roles_and_tenant_scopes_are_enforced(registry: Any, tmp_path: Path) -> None:
    built = build_release(tmp_path)
    async with registry_client(registry.target, token=None) as anonymous:
        await expect_error(
            anonymous.releases.ListReleases(
                rpb.ListReleasesRequest(tenant_id="tenant-a", pipeline_id=PIPELINE_ID)
            ),
            grpc.StatusCode.UNAUTHENTICATED,
            "TOKEN_MISSING",
        )
    async with registry_client(registry.target, token="wrong") as wrong:
        await expect_error(
            wrong.releases.ListReleases(
                rpb.ListReleasesRequest(tenant_id="tenant-a", pipeline_id=PIPELINE_ID)
            ),
            grpc.StatusCode.UNAUTHENTICATED,
            "TOKEN_INVALID",
        )
    async with registry_client(registry.target, token=WORKER_A) as worker:
        await expect_error(
            worker.releases.RegisterRelease(register("tenant-a", built.descriptor_path)),
            grpc.StatusCode.PERMISSION_DENIED,
            "ROLE_REQUIRED",
        )
    async with registry_client(registry.target, token=CONTROL_PLANE_A) as control_plane:
        await expect_error(
            control_plane.workers.RegisterWorker(
                pb.RegisterWorkerRequest(
                    tenant_id="tenant-a",
                    pipeline_id=PIPELINE_ID,
                    worker_id="w",
                    contract_version=built.contract_version,
                    release_version=built.release_version,
                    protocol="local",
                )
            ),
            grpc.StatusCode.PERMISSION_DENIED,
            "ROLE_REQUIRED",
        )
    async with registry_client(registry.target, token=ADMIN) as admin:
        await admin.releases.RegisterRelease(register("tenant-a", built.descriptor_path))
        await admin.releases.ActivateRelease(
            rpb.ActivateReleaseRequest(
                tenant_id="tenant-a", pipeline_id=PIPELINE_ID, release_version=built.release_version
            )
        )
    async with registry_client(registry.target, token=ADMIN_B) as admin_b:
        # A token for tenant B cannot reach tenant A at all...
        found = await expect_error(
            admin_b.releases.GetActiveRelease(
                rpb.GetActiveReleaseRequest(tenant_id="tenant-a", pipeline_id=PIPELINE_ID)
            ),
            grpc.StatusCode.PERMISSION_DENIED,
            "TENANT_NOT_IN_SCOPE",
        )
        assert found.metadata["tenantId"] == "tenant-a"
        # ...and tenant B's own view does not contain tenant A's release.
        await expect_error(
            admin_b.releases.GetRelease(
                rpb.GetReleaseRequest(
                    tenant_id="tenant-b",
                    pipeline_id=PIPELINE_ID,
                    release_version=built.release_version,
                )
            ),
            grpc.StatusCode.NOT_FOUND,
            "RELEASE_NOT_FOUND",
        )
        listed = await admin_b.releases.ListReleases(
            rpb.ListReleasesRequest(tenant_id="tenant-b", pipeline_id=PIPELINE_ID)
        )
        assert list(listed.releases) == []
    async with registry_client(registry.target, token=WORKER_A) as worker:
        # The worker role may read its tenant's releases and register workers there.
        active = await worker.releases.GetActiveRelease(
            rpb.GetActiveReleaseRequest(tenant_id="tenant-a", pipeline_id=PIPELINE_ID)
        )
        assert active.release.release_version == built.release_version
        registered = await worker.workers.RegisterWorker(
            pb.RegisterWorkerRequest(
                tenant_id="tenant-a",
                pipeline_id=PIPELINE_ID,
                worker_id="w",
                contract_version=built.contract_version,
                release_version=built.release_version,
                protocol="local",
            )
        )
        assert registered.worker.tenant_id == "tenant-a"
        await expect_error(
            worker.workers.DrainWorker(
                pb.DrainWorkerRequest(tenant_id="tenant-a", pipeline_id=PIPELINE_ID, worker_id="w")
            ),
            grpc.StatusCode.PERMISSION_DENIED,
            "ROLE_REQUIRED",
        )
        # Nor end a drain: a worker cannot undo what the operator decided.
        await expect_error(
            worker.workers.UndrainWorker(
                pb.UndrainWorkerRequest(
                    tenant_id="tenant-a", pipeline_id=PIPELINE_ID, worker_id="w"
                )
            ),
            grpc.StatusCode.PERMISSION_DENIED,
            "ROLE_REQUIRED",
        )
        await expect_error(
            worker.workers.ListWorkers(
                pb.ListWorkersRequest(tenant_id="tenant-b", pipeline_id=PIPELINE_ID)
            ),
            grpc.StatusCode.PERMISSION_DENIED,
            "TENANT_NOT_IN_SCOPE",
        )


async def test_health_and_reflection_list_every_v1_service(registry: Any) -> None:
    async with grpc.aio.insecure_channel(registry.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "tpf.registry.v1.ReleaseService", "tpf.registry.v1.WorkerService"):
            answer = await health.Check(health_pb2.HealthCheckRequest(service=service))
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names = set()
        async for response in responses:
            names |= {s.name for s in response.list_services_response.service}
        assert {"tpf.registry.v1.ReleaseService", "tpf.registry.v1.WorkerService"} <= names
        assert "grpc.health.v1.Health" in names


async def test_sigterm_stops_the_registry_gracefully(registry: Any) -> None:
    assert registry.terminate() == 0
