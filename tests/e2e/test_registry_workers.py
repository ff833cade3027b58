"""WorkerService through a real registry process on real Postgres."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.e2e.test_registry_releases import TENANT
from tests.harness.wait import wait_until
from tests.support.grpc_errors import expect_error
from tests.support.registry_client import (
    CONTROL_PLANE_A,
    WORKER_A,
    RegistryClient,
    registry_client,
)
from tests.support.release_artifacts import PIPELINE_ID, BuiltRelease, build_release
from tpf.registry.v1 import release_service_pb2 as rpb
from tpf.registry.v1 import worker_pb2
from tpf.registry.v1 import worker_service_pb2 as pb

pytestmark = pytest.mark.e2e


async def registered(client: RegistryClient, tmp_path: Path) -> BuiltRelease:
    built = build_release(tmp_path)
    await client.releases.RegisterRelease(
        rpb.RegisterReleaseRequest(
            tenant_id=TENANT,
            pipeline_id=PIPELINE_ID,
            release_descriptor_path=str(built.descriptor_path),
        )
    )
    return built


def registration(built: BuiltRelease, worker_id: str, **overrides: str) -> pb.RegisterWorkerRequest:
    fields: dict[str, str] = {
        "tenant_id": TENANT,
        "pipeline_id": PIPELINE_ID,
        "worker_id": worker_id,
        "contract_version": built.contract_version,
        "release_version": built.release_version,
        "protocol": "local",
        "endpoint": "in-process",
        "artifact_id": "restaurant-approval-monolith",
        "artifact_digest": built.digest,
    }
    fields.update(overrides)
    return pb.RegisterWorkerRequest(**fields)


def host(built: BuiltRelease, **overrides: Any) -> pb.ServeLocalWorkersRequest:
    """A dispatcher's declaration: it hosts the build of `built`'s contract."""
    fields: dict[str, Any] = {
        "host_id": "dispatcher-1",
        "pipelines": [
            pb.HostedPipeline(
                pipeline_id=PIPELINE_ID,
                contract_version=built.contract_version,
                artifact_digest=built.digest,
            )
        ],
        "ttl_ms": 60_000,
    }
    fields.update(overrides)
    return pb.ServeLocalWorkersRequest(**fields)


async def resolved_ids(
    client: RegistryClient, built: BuiltRelease, tenant: str = TENANT
) -> set[str]:
    answer = await client.workers.ResolveWorkers(
        pb.ResolveWorkersRequest(
            tenant_id=tenant, pipeline_id=PIPELINE_ID, release_version=built.release_version
        )
    )
    return {w.worker_id for w in answer.workers}


async def test_a_dispatcher_declaration_serves_local_records_of_every_release_of_its_contract(
    registry: Any, tmp_path: Path
) -> None:
    async with registry_client(registry.target) as client:
        built = await registered(client, tmp_path)
        # The same jar under another label (our build labels it with its digest; TPF's
        # create-release, as `built` here, with the contract version).
        descriptor = json.loads(built.descriptor_path.read_text())
        descriptor["releaseVersion"] = built.digest
        relabelled_path = tmp_path / "relabelled.json"
        relabelled_path.write_text(json.dumps(descriptor))
        relabelled = await client.releases.RegisterRelease(
            rpb.RegisterReleaseRequest(
                tenant_id=TENANT,
                pipeline_id=PIPELINE_ID,
                release_descriptor_path=str(relabelled_path),
            )
        )
        assert relabelled.release.release_version != built.contract_version
        tpf_built = BuiltRelease(built.jar_path, descriptor, relabelled_path, built.contract)
        await client.workers.RegisterWorker(
            registration(built, "restaurant-local-worker", release_version=built.digest)
        )
        assert await resolved_ids(client, tpf_built) == set()

        # Another build of the same contract (another digest) does not serve it.
        other = await client.workers.ServeLocalWorkers(
            host(
                built,
                pipelines=[
                    pb.HostedPipeline(
                        pipeline_id=PIPELINE_ID,
                        contract_version=built.contract_version,
                        artifact_digest="sha256:" + "0" * 64,
                    )
                ],
            )
        )
        assert list(other.workers) == []
        assert await resolved_ids(client, tpf_built) == set()

        served = await client.workers.ServeLocalWorkers(host(built))
        assert [w.worker_id for w in served.workers] == ["restaurant-local-worker"]
        assert await resolved_ids(client, tpf_built) == {"restaurant-local-worker"}

        # Scoped to other tenants or releases: not served.
        await client.workers.ServeLocalWorkers(host(built, tenant_ids=["someone-else"]))
        assert await resolved_ids(client, tpf_built) == set()
        await client.workers.ServeLocalWorkers(host(built, release_versions=["sha256:other"]))
        assert await resolved_ids(client, tpf_built) == set()

        # Withdrawn (the dispatcher stopped): refused at once, not after the TTL.
        await client.workers.ServeLocalWorkers(host(built))
        assert await resolved_ids(client, tpf_built) == {"restaurant-local-worker"}
        await client.workers.ServeLocalWorkers(host(built, withdraw=True))
        assert await resolved_ids(client, tpf_built) == set()

        # A declaration lapses by itself (a dispatcher killed without a goodbye).
        await client.workers.ServeLocalWorkers(host(built, ttl_ms=1_000))
        assert await resolved_ids(client, tpf_built) == {"restaurant-local-worker"}
        await wait_until(
            lambda: _none_resolved(client, tpf_built), timeout_s=10, what="declaration lapsed"
        )


async def _none_resolved(client: RegistryClient, built: BuiltRelease) -> bool:
    return await resolved_ids(client, built) == set()


async def test_declarations_are_checked_and_scoped_to_the_callers_tenants(
    registry: Any, tmp_path: Path
) -> None:
    async with registry_client(registry.target) as client:
        built = await registered(client, tmp_path)
        for request, field in (
            (host(built, ttl_ms=0), "ttlMs"),
            (host(built, host_id=" "), "hostId"),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await client.workers.ServeLocalWorkers(request)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert field in (refused.value.details() or "")
    async with registry_client(registry.target, token=CONTROL_PLANE_A) as control_plane:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await control_plane.workers.ServeLocalWorkers(host(built))
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    async with registry_client(registry.target, token=WORKER_A) as worker_a:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await worker_a.workers.ServeLocalWorkers(host(built, tenant_ids=[TENANT]))
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # Without tenants, a tenant-scoped token serves its own tenants only.
        await worker_a.workers.ServeLocalWorkers(host(built, host_id="scoped"))
    async with registry_client(registry.target) as client:
        await client.workers.RegisterWorker(registration(built, "restaurant-local-worker"))
        assert await resolved_ids(client, built) == set()


async def test_register_heartbeat_drain_list_resolve_deregister(
    registry: Any, tmp_path: Path
) -> None:
    async with registry_client(registry.target) as client:
        built = await registered(client, tmp_path)
        local = await client.workers.RegisterWorker(
            registration(built, "restaurant-local-worker", protocol="LOCAL", endpoint="")
        )
        assert local.worker.protocol == "local"
        assert local.worker.endpoint == "in-process"
        assert local.worker.state == worker_pb2.WORKER_STATE_HEALTHY
        remote = await client.workers.RegisterWorker(
            registration(built, "grpc-worker", protocol="grpc", endpoint="127.0.0.1:50061")
        )
        assert remote.worker.state == worker_pb2.WORKER_STATE_HEALTHY

        beat = await client.workers.HeartbeatWorker(
            pb.HeartbeatWorkerRequest(
                tenant_id=TENANT, pipeline_id=PIPELINE_ID, worker_id="grpc-worker"
            )
        )
        assert beat.worker.last_heartbeat_at_epoch_ms >= remote.worker.last_heartbeat_at_epoch_ms

        resolved = await client.workers.ResolveWorkers(
            pb.ResolveWorkersRequest(
                tenant_id=TENANT, pipeline_id=PIPELINE_ID, release_version=built.release_version
            )
        )
        # A `local` record counts only while a dispatcher declares that it serves it.
        assert {w.worker_id for w in resolved.workers} == {"grpc-worker"}
        await client.workers.ServeLocalWorkers(host(built))
        resolved = await client.workers.ResolveWorkers(
            pb.ResolveWorkersRequest(
                tenant_id=TENANT, pipeline_id=PIPELINE_ID, release_version=built.release_version
            )
        )
        assert {w.worker_id for w in resolved.workers} == {"restaurant-local-worker", "grpc-worker"}

        drained = await client.workers.DrainWorker(
            pb.DrainWorkerRequest(
                tenant_id=TENANT, pipeline_id=PIPELINE_ID, worker_id="grpc-worker"
            )
        )
        assert drained.worker.state == worker_pb2.WORKER_STATE_DRAINING
        again = await client.workers.DrainWorker(
            pb.DrainWorkerRequest(
                tenant_id=TENANT, pipeline_id=PIPELINE_ID, worker_id="grpc-worker"
            )
        )
        assert again.worker.draining_since_epoch_ms == drained.worker.draining_since_epoch_ms
        still_draining = await client.workers.HeartbeatWorker(
            pb.HeartbeatWorkerRequest(
                tenant_id=TENANT, pipeline_id=PIPELINE_ID, worker_id="grpc-worker"
            )
        )
        assert still_draining.worker.state == worker_pb2.WORKER_STATE_DRAINING

        resolved = await client.workers.ResolveWorkers(
            pb.ResolveWorkersRequest(
                tenant_id=TENANT, pipeline_id=PIPELINE_ID, release_version=built.release_version
            )
        )
        assert [w.worker_id for w in resolved.workers] == ["restaurant-local-worker"]
        only_grpc = await client.workers.ResolveWorkers(
            pb.ResolveWorkersRequest(
                tenant_id=TENANT,
                pipeline_id=PIPELINE_ID,
                release_version=built.release_version,
                protocol="grpc",
            )
        )
        assert list(only_grpc.workers) == []

        # Re-registering replaces the record but keeps the drain (TPF would clear it): a
        # restarted worker does not undo the operator's decision; an undrain does.
        replaced = await client.workers.RegisterWorker(
            registration(built, "grpc-worker", protocol="grpc", endpoint="10.0.0.9:50061")
        )
        assert replaced.worker.state == worker_pb2.WORKER_STATE_DRAINING
        assert replaced.worker.endpoint == "10.0.0.9:50061"
        undrained = await client.workers.UndrainWorker(
            pb.UndrainWorkerRequest(
                tenant_id=TENANT, pipeline_id=PIPELINE_ID, worker_id="grpc-worker"
            )
        )
        assert undrained.worker.state == worker_pb2.WORKER_STATE_HEALTHY
        assert undrained.worker.draining_since_epoch_ms == 0

        listed = await client.workers.ListWorkers(
            pb.ListWorkersRequest(tenant_id=TENANT, pipeline_id=PIPELINE_ID, page_size=1)
        )
        assert [w.worker_id for w in listed.workers] == ["grpc-worker"]
        rest = await client.workers.ListWorkers(
            pb.ListWorkersRequest(
                tenant_id=TENANT,
                pipeline_id=PIPELINE_ID,
                page_size=1,
                page_token=listed.next_page_token,
            )
        )
        assert [w.worker_id for w in rest.workers] == ["restaurant-local-worker"]
        assert rest.next_page_token == ""
        filtered = await client.workers.ListWorkers(
            pb.ListWorkersRequest(tenant_id=TENANT, pipeline_id=PIPELINE_ID, release_version="nope")
        )
        assert list(filtered.workers) == []

        gone = await client.workers.DeregisterWorker(
            pb.DeregisterWorkerRequest(
                tenant_id=TENANT, pipeline_id=PIPELINE_ID, worker_id="grpc-worker"
            )
        )
        assert gone.worker.worker_id == "grpc-worker"
        for call in (
            client.workers.HeartbeatWorker(
                pb.HeartbeatWorkerRequest(
                    tenant_id=TENANT, pipeline_id=PIPELINE_ID, worker_id="grpc-worker"
                )
            ),
            client.workers.DrainWorker(
                pb.DrainWorkerRequest(
                    tenant_id=TENANT, pipeline_id=PIPELINE_ID, worker_id="grpc-worker"
                )
            ),
            client.workers.DeregisterWorker(
                pb.DeregisterWorkerRequest(
                    tenant_id=TENANT, pipeline_id=PIPELINE_ID, worker_id="grpc-worker"
                )
            ),
        ):
            await expect_error(call, grpc.StatusCode.NOT_FOUND, "WORKER_NOT_FOUND")


async def test_registration_is_checked_against_the_release(registry: Any, tmp_path: Path) -> None:
    async with registry_client(registry.target) as client:
        built = await registered(client, tmp_path)
        cases = [
            (
                registration(built, "w", contract_version="sha256:" + "f" * 64),
                grpc.StatusCode.FAILED_PRECONDITION,
                "WORKER_IDENTITY_MISMATCH",
                "contractVersion",
            ),
            (
                registration(built, "w", artifact_digest="sha256:" + "e" * 64),
                grpc.StatusCode.FAILED_PRECONDITION,
                "WORKER_IDENTITY_MISMATCH",
                "artifactDigest",
            ),
            (
                registration(built, "w", artifact_id="other-artifact"),
                grpc.StatusCode.FAILED_PRECONDITION,
                "WORKER_IDENTITY_MISMATCH",
                "artifactId",
            ),
            (
                registration(built, "w", release_version="never-registered"),
                grpc.StatusCode.FAILED_PRECONDITION,
                "WORKER_IDENTITY_MISMATCH",
                "releaseVersion",
            ),
            (
                registration(built, "w", protocol="kafka"),
                grpc.StatusCode.INVALID_ARGUMENT,
                "WORKER_PROTOCOL_UNSUPPORTED",
                None,
            ),
            (
                registration(built, "w", protocol="rest", endpoint="not a url"),
                grpc.StatusCode.INVALID_ARGUMENT,
                "FIELD_INVALID",
                "endpoint",
            ),
            (
                registration(built, " "),
                grpc.StatusCode.INVALID_ARGUMENT,
                "FIELD_REQUIRED",
                "workerId",
            ),
            (
                registration(built, "w", protocol=""),
                grpc.StatusCode.INVALID_ARGUMENT,
                "FIELD_REQUIRED",
                "protocol",
            ),
        ]
        for request, code, reason, field in cases:
            found = await expect_error(client.workers.RegisterWorker(request), code, reason)
            if field is not None:
                assert found.metadata["field"] == field, found
        # Blank artifact identity is accepted (TPF compares only when both sides are set).
        ok = await client.workers.RegisterWorker(
            registration(built, "w", artifact_id="", artifact_digest="")
        )
        assert ok.worker.artifact_id == ""
        listed = await client.workers.ListWorkers(
            pb.ListWorkersRequest(tenant_id=TENANT, pipeline_id=PIPELINE_ID)
        )
        assert [w.worker_id for w in listed.workers] == ["w"]


async def test_text_postgres_cannot_hold_is_a_client_error_not_internal(registry: Any) -> None:
    async with registry_client(registry.target) as client:
        await expect_error(
            client.workers.ListWorkers(
                pb.ListWorkersRequest(tenant_id=TENANT, pipeline_id="pipe\x00line")
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "FIELD_INVALID",
        )
