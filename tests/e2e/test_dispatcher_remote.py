"""The dispatcher reaching workers it does not host: a gRPC worker (signed TPF protocol) served
by the test process, a worker whose identity does not match the pinned release, and a release
whose only worker runs in another process (NoWorkerAvailable)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.e2e.conftest import FAST_RETRY, Suite
from tests.e2e.test_dispatcher_local import (
    dispatcher_env,
    events,
    execution,
    register_local_release,
    result_value,
    submit,
    wait_for_status,
)
from tests.support import pipelines
from tests.support.coordinator_client import coordinator_client
from tests.support.registry_client import declare_local_host, registry_client
from tpf.common.v1 import execution_status_pb2 as st
from tpf.coordinator.v1 import execution_pb2
from tpf.registry.v1 import worker_service_pb2 as wspb
from tpf_rpc.errors import error_info_of
from tpf_worker import Pipeline, WorkerRuntime
from tpf_worker.release import identity_of
from tpf_worker.transports.grpc import GrpcWorkerServer

pytestmark = pytest.mark.e2e

SECRET = "dispatcher-e2e-worker-secret"
H = execution_pb2.HistoryEvent


async def register_worker(
    suite: Suite, pipeline: Pipeline, worker_id: str, protocol: str, endpoint: str
) -> None:
    identity = identity_of(pipeline)
    async with registry_client(suite.registry.target) as client:
        await client.workers.RegisterWorker(
            wspb.RegisterWorkerRequest(
                tenant_id=suite.tenant,
                pipeline_id=identity.pipeline_id,
                worker_id=worker_id,
                contract_version=identity.contract_version,
                release_version=identity.release_version,
                protocol=protocol,
                endpoint=endpoint,
            )
        )


async def serve_grpc(pipeline: Pipeline) -> tuple[GrpcWorkerServer, int]:
    runtime = WorkerRuntime(pipeline, identity_of(pipeline))
    server = GrpcWorkerServer(runtime.execute, runtime.capability("grpc"), shared_secret=SECRET)
    return server, await server.start()


@pytest.fixture
async def released(suite: Suite, tmp_path: Path) -> Suite:
    """Both test pipelines released and active, each with only a `local` worker so far."""
    await register_local_release(suite, pipelines.CHAIN, tmp_path / "chain")
    await register_local_release(suite, pipelines.APPROVAL, tmp_path / "approval")
    return suite


@pytest.fixture
async def chain_grpc_worker() -> AsyncIterator[int]:
    server, port = await serve_grpc(pipelines.CHAIN)
    yield port
    await server.stop(0)


async def test_grpc_worker_runs_the_pipeline(
    released: Suite, start_service: Any, chain_grpc_worker: int
) -> None:
    # The `local` worker is not hosted by this dispatcher; the gRPC one is reachable.
    await register_worker(
        released, pipelines.CHAIN, "chain-grpc", "grpc", f"127.0.0.1:{chain_grpc_worker}"
    )
    start_service(
        "tpf_dispatcher",
        dispatcher_env(released, TPF_LOCAL_PIPELINES="", TPF_WORKER_SHARED_SECRET=SECRET),
    )
    async with coordinator_client(released.coordinator.target) as client:
        execution_id = await submit(client, released, pipelines.CHAIN)
        await wait_for_status(client, released, execution_id, st.EXECUTION_STATUS_SUCCEEDED)
        assert (await result_value(client, released, execution_id))["steps"] == 3
        entries = await events(client, released, execution_id)
        assert {e.actor for e in entries[2::2]} == {"chain-grpc"}


async def test_worker_with_another_identity_gets_no_command(
    released: Suite, start_service: Any
) -> None:
    # Registered for CHAIN's release, but the process at that address serves APPROVAL.
    server, port = await serve_grpc(pipelines.APPROVAL)
    try:
        await register_worker(released, pipelines.CHAIN, "impostor", "grpc", f"127.0.0.1:{port}")
        start_service(
            "tpf_dispatcher",
            dispatcher_env(released, TPF_LOCAL_PIPELINES="", TPF_WORKER_SHARED_SECRET=SECRET),
        )
        async with coordinator_client(released.coordinator.target) as client:
            execution_id = await submit(client, released, pipelines.CHAIN)
            failed = await wait_for_status(
                client, released, execution_id, st.EXECUTION_STATUS_FAILED
            )
            assert failed.error_code == "WorkerIdentityMismatch"
            assert "impostor" in failed.error_message
            assert "no command was sent" in failed.error_message
            assert failed.attempt == FAST_RETRY.max_retries
    finally:
        await server.stop(0)


async def test_submission_nothing_can_run_is_refused_at_once(
    released: Suite, start_service: Any
) -> None:
    # Only CHAIN is hosted; APPROVAL's only worker is a `local` record no dispatcher serves.
    start_service(
        "tpf_dispatcher",
        dispatcher_env(released, TPF_LOCAL_PIPELINES="tests.support.pipelines:CHAIN"),
    )
    async with coordinator_client(released.coordinator.target) as client:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await submit(client, released, pipelines.APPROVAL)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    info = error_info_of(refused.value)
    assert info is not None and info.reason == "NO_WORKER_AVAILABLE"
    assert (refused.value.details() or "").startswith(
        "No worker available for active release: No running dispatcher serves local worker "
    )
    assert pipelines.APPROVAL.pipeline_id in (refused.value.details() or "")


async def test_admitted_execution_whose_worker_is_gone_fails_with_no_worker_available(
    released: Suite, start_service: Any
) -> None:
    # Another dispatcher declared it hosts APPROVAL, then vanished without withdrawing (kill -9):
    # the submission is admitted, and the running dispatcher (hosting only CHAIN) cannot run it.
    async with registry_client(released.registry.target) as registry:
        await declare_local_host(
            registry,
            pipeline_id=pipelines.APPROVAL.pipeline_id,
            contract_version=identity_of(pipelines.APPROVAL).contract_version,
        )
    start_service(
        "tpf_dispatcher",
        dispatcher_env(released, TPF_LOCAL_PIPELINES="tests.support.pipelines:CHAIN"),
    )
    async with coordinator_client(released.coordinator.target) as client:
        execution_id = await submit(client, released, pipelines.APPROVAL)
        failed = await wait_for_status(client, released, execution_id, st.EXECUTION_STATUS_FAILED)
        assert failed.error_code == "NoWorkerAvailable"
        assert released.tenant in failed.error_message
        assert pipelines.APPROVAL.pipeline_id in failed.error_message
        assert identity_of(pipelines.APPROVAL).release_version in failed.error_message
        history = [e.event for e in await events(client, released, execution_id)]
        assert history.count(H.HISTORY_EVENT_RETRY_SCHEDULED) == FAST_RETRY.max_retries


async def test_dispatcher_survives_a_coordinator_restart(
    released: Suite, start_service: Any
) -> None:
    dispatcher = start_service("tpf_dispatcher", dispatcher_env(released))
    async with coordinator_client(released.coordinator.target) as client:
        first = await submit(client, released, pipelines.CHAIN)
        await wait_for_status(client, released, first, st.EXECUTION_STATUS_SUCCEEDED)
    released.coordinator.kill()
    released.coordinator.restart()
    async with coordinator_client(released.coordinator.target) as client:
        second = await submit(client, released, pipelines.CHAIN)
        await wait_for_status(client, released, second, st.EXECUTION_STATUS_SUCCEEDED, timeout_s=30)
        assert (await execution(client, released, second)).version == 4  # claim, 3 commits
    assert dispatcher.is_running
