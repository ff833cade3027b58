"""The dispatcher as a real process between a real registry and coordinator, running Python
pipelines in-process (protocol `local`): success with exactly-once history, the await path,
worker failures through retries to a dead letter, SIGTERM drain, and the status RPC."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import FAST_RETRY, Suite
from tests.harness.wait import wait_until
from tests.support import pipelines
from tests.support.coordinator_client import CoordinatorClient, coordinator_client
from tests.support.registry_client import ADMIN, auth_env, registry_client
from tests.support.restaurant import envelope
from tpf.common.v1 import execution_status_pb2 as st
from tpf.coordinator.v1 import (
    dead_letter_pb2,
    dead_letter_service_pb2_grpc,
    execution_pb2,
    interaction_service_pb2_grpc,
)
from tpf.coordinator.v1 import dead_letter_service_pb2 as dpb
from tpf.coordinator.v1 import execution_service_pb2 as epb
from tpf.coordinator.v1 import interaction_service_pb2 as ipb
from tpf.dispatcher.v1 import dispatcher_service_pb2 as dspb
from tpf.dispatcher.v1 import dispatcher_service_pb2_grpc
from tpf.registry.v1 import release_pb2, worker_pb2
from tpf.registry.v1 import release_service_pb2 as rpb
from tpf.registry.v1 import worker_service_pb2 as wspb
from tpf_rpc.channel import client_channel
from tpf_worker import Pipeline
from tpf_worker.release import build_release, identity_of

pytestmark = pytest.mark.e2e

HOSTED = "tests.support.pipelines:CHAIN,tests.support.pipelines:APPROVAL"
DISPATCHER_ID = "dispatcher-e2e"
H = execution_pb2.HistoryEvent


@dataclass
class Dispatched:
    """The suite plus our two pipelines registered, active, with a local worker each, and a
    dispatcher process hosting them."""

    suite: Suite
    dispatcher: Any
    env: dict[str, str]


async def register_local_release(
    suite: Suite,
    pipeline: Pipeline,
    out_dir: Path,
    dispatch_mode: release_pb2.DispatchMode.ValueType = release_pb2.DISPATCH_MODE_STEP,
) -> None:
    """Register and activate the release built from `pipeline` (fast retries), and a `local`
    worker with its identity, as an operator deploying a Python pipeline would."""
    built = build_release(pipeline, out_dir)
    identity = built.identity
    async with registry_client(suite.registry.target) as client:
        await client.releases.RegisterRelease(
            rpb.RegisterReleaseRequest(
                tenant_id=suite.tenant,
                pipeline_id=identity.pipeline_id,
                release_descriptor_path=str(built.descriptor_path),
                policy=release_pb2.ReleasePolicy(
                    default_retry=FAST_RETRY, dispatch_mode=dispatch_mode
                ),
            )
        )
        await client.releases.ActivateRelease(
            rpb.ActivateReleaseRequest(
                tenant_id=suite.tenant,
                pipeline_id=identity.pipeline_id,
                release_version=identity.release_version,
            )
        )
        await client.workers.RegisterWorker(
            wspb.RegisterWorkerRequest(
                tenant_id=suite.tenant,
                pipeline_id=identity.pipeline_id,
                worker_id=f"{identity.artifact_id}-local",
                contract_version=identity.contract_version,
                release_version=identity.release_version,
                protocol="local",
                artifact_id=identity.artifact_id,
                artifact_digest=identity.artifact_digest,
            )
        )


def dispatcher_env(suite: Suite, **overrides: str) -> dict[str, str]:
    return {
        "TPF_COORDINATOR_TARGET": suite.coordinator.target,
        "TPF_COORDINATOR_TOKEN": ADMIN,
        "TPF_REGISTRY_TARGET": suite.registry.target,
        "TPF_REGISTRY_TOKEN": ADMIN,
        "TPF_DISPATCHER_ID": DISPATCHER_ID,
        "TPF_LOCAL_PIPELINES": HOSTED,
        "TPF_PIPELINE_IDS": f"{pipelines.CHAIN.pipeline_id},{pipelines.APPROVAL.pipeline_id}",
        "TPF_CLAIM_WAIT_MS": "500",
        "TPF_WORKER_CACHE_S": "1",
        "TPF_LOG_LEVEL": "INFO",
        **auth_env(),
        **overrides,
    }


@pytest.fixture
async def hosted(suite: Suite, tmp_path: Path) -> Suite:
    await register_local_release(suite, pipelines.CHAIN, tmp_path / "chain")
    await register_local_release(suite, pipelines.APPROVAL, tmp_path / "approval")
    return suite


@pytest.fixture
def dispatched(hosted: Suite, start_service: Any) -> Dispatched:
    env = dispatcher_env(hosted)
    return Dispatched(hosted, start_service("tpf_dispatcher", env), env)


@asynccontextmanager
async def dispatcher_status_client(
    target: str,
) -> AsyncIterator[dispatcher_service_pb2_grpc.DispatcherServiceAsyncStub]:
    async with client_channel(target, token=ADMIN) as channel:
        yield dispatcher_service_pb2_grpc.DispatcherServiceStub(channel)


async def submit(client: CoordinatorClient, suite: Suite, pipeline: Pipeline, **order: Any) -> str:
    body = {"orderId": str(uuid.uuid4()), "items": "2x soup", **order}
    response = await client.executions.SubmitExecution(
        epb.SubmitExecutionRequest(
            tenant_id=suite.tenant,
            pipeline_id=pipeline.pipeline_id,
            input_shape=execution_pb2.INPUT_SHAPE_UNI,
            input_payload=envelope(pipelines.ORDER_TYPE, body),
        )
    )
    return response.execution_id


async def execution(client: CoordinatorClient, suite: Suite, execution_id: str) -> Any:
    response = await client.executions.GetExecution(
        epb.GetExecutionRequest(tenant_id=suite.tenant, execution_id=execution_id)
    )
    return response.execution


async def wait_for_status(
    client: CoordinatorClient,
    suite: Suite,
    execution_id: str,
    status: st.ExecutionStatus.ValueType,
    timeout_s: float = 20,
) -> Any:
    async def reached() -> Any:
        current = await execution(client, suite, execution_id)
        return current if current.status == status else None

    return await wait_until(
        reached, timeout_s=timeout_s, what=f"{execution_id} {st.ExecutionStatus.Name(status)}"
    )


async def events(client: CoordinatorClient, suite: Suite, execution_id: str) -> list[Any]:
    response = await client.executions.ListExecutionHistory(
        epb.ListExecutionHistoryRequest(tenant_id=suite.tenant, execution_id=execution_id)
    )
    return list(response.history_entries)


async def result_value(client: CoordinatorClient, suite: Suite, execution_id: str) -> Any:
    response = await client.executions.GetExecutionResult(
        epb.GetExecutionResultRequest(tenant_id=suite.tenant, execution_id=execution_id)
    )
    return json.loads(response.result_payload.payload)


async def test_dispatcher_runs_pipelines_to_succeeded_with_exactly_once_history(
    dispatched: Dispatched,
) -> None:
    suite = dispatched.suite
    async with coordinator_client(suite.coordinator.target) as client:
        ids = [await submit(client, suite, pipelines.CHAIN) for _ in range(6)]
        for execution_id in ids:
            await wait_for_status(client, suite, execution_id, st.EXECUTION_STATUS_SUCCEEDED)
        for execution_id in ids:
            entries = await events(client, suite, execution_id)
            # One claim, then each step's commit keeps the claim for the next (continue_claim).
            assert [e.event for e in entries] == [
                H.HISTORY_EVENT_SUBMITTED,
                H.HISTORY_EVENT_CLAIMED,
                H.HISTORY_EVENT_STEP_COMPLETED,
                H.HISTORY_EVENT_STEP_COMPLETED,
                H.HISTORY_EVENT_SUCCEEDED,
            ]
            # One commit per version: the claim by this dispatcher, outcomes by the worker.
            assert [e.version for e in entries] == list(range(5))
            assert entries[1].actor == DISPATCHER_ID
            assert {e.actor for e in entries[2:]} == {"chain-python-worker-local"}
            receipt = await result_value(client, suite, execution_id)
            assert receipt == {"orderId": receipt["orderId"], "price": 21, "steps": 3}

    async with dispatcher_status_client(dispatched.dispatcher.target) as status_stub:
        status = (await status_stub.GetDispatcherStatus(dspb.GetDispatcherStatusRequest())).status
    assert status.dispatcher_id == DISPATCHER_ID
    assert status.state == dspb.DISPATCHER_STATE_RUNNING
    assert status.in_flight == 0
    assert status.max_in_flight == 256
    assert status.counters.claimed == 18
    assert status.counters.completed == 18
    assert status.counters.failed == status.counters.rejected == 0
    assert {h.pipeline_id for h in status.hosted_pipelines} == {
        pipelines.CHAIN.pipeline_id,
        pipelines.APPROVAL.pipeline_id,
    }
    [resolved] = [
        r for r in status.resolved_releases if r.pipeline_id == pipelines.CHAIN.pipeline_id
    ]
    assert resolved.tenant_id == suite.tenant
    assert [(w.protocol, w.is_reachable) for w in resolved.workers] == [("local", True)]


async def test_await_parks_execution_and_completion_resumes_it(dispatched: Dispatched) -> None:
    suite = dispatched.suite
    async with coordinator_client(suite.coordinator.target) as client:
        order_id = f"order-{uuid.uuid4()}"
        execution_id = await submit(client, suite, pipelines.APPROVAL, orderId=order_id)
        parked = await wait_for_status(
            client, suite, execution_id, st.EXECUTION_STATUS_WAITING_EXTERNAL
        )
        assert parked.step_index == 1
        interactions = interaction_service_pb2_grpc.InteractionServiceStub(client.channel)
        pending = await interactions.ListPendingInteractions(
            ipb.ListPendingInteractionsRequest(tenant_id=suite.tenant)
        )
        [interaction] = [i for i in pending.interactions if i.execution_id == execution_id]
        assert interaction.step_id == "AwaitDecisionService"
        assert interaction.request_payload.struct_value["orderId"] == order_id
        completed = await interactions.CompleteInteraction(
            ipb.CompleteInteractionRequest(
                tenant_id=suite.tenant,
                interaction_id=interaction.interaction_id,
                response_payload=envelope(pipelines.DECISION_TYPE, {"approved": True}),
                actor="chef",
            )
        )
        assert completed.execution_id == execution_id and not completed.duplicate
        await wait_for_status(client, suite, execution_id, st.EXECUTION_STATUS_SUCCEEDED)
        assert await result_value(client, suite, execution_id) == {
            "decision": {"approved": True},
            "recorded": True,
        }
        assert [e.event for e in await events(client, suite, execution_id)] == [
            H.HISTORY_EVENT_SUBMITTED,
            H.HISTORY_EVENT_CLAIMED,
            H.HISTORY_EVENT_STEP_COMPLETED,
            H.HISTORY_EVENT_AWAIT_REQUESTED,
            H.HISTORY_EVENT_INTERACTION_COMPLETED,
            H.HISTORY_EVENT_CLAIMED,
            H.HISTORY_EVENT_SUCCEEDED,
        ]


async def test_worker_failure_is_retried_then_failed_and_dead_lettered(
    dispatched: Dispatched,
) -> None:
    suite = dispatched.suite
    async with coordinator_client(suite.coordinator.target) as client:
        execution_id = await submit(client, suite, pipelines.CHAIN, fail="always")
        failed = await wait_for_status(client, suite, execution_id, st.EXECUTION_STATUS_FAILED)
        assert failed.attempt == FAST_RETRY.max_retries
        assert failed.error_code == "TransitionWorkerFailureException"
        assert failed.error_message.startswith("tpf_worker.errors.RetryableStepError: order "), (
            failed.error_message
        )
        assert failed.terminal_reason == "retry_exhausted"
        history = [e.event for e in await events(client, suite, execution_id)]
        assert history.count(H.HISTORY_EVENT_RETRY_SCHEDULED) == FAST_RETRY.max_retries
        assert history[-1] == H.HISTORY_EVENT_FAILED
        dead_letters = dead_letter_service_pb2_grpc.DeadLetterServiceStub(client.channel)
        listed = await dead_letters.ListDeadLetters(
            dpb.ListDeadLettersRequest(tenant_id=suite.tenant)
        )
        [letter] = [d for d in listed.dead_letters if d.execution_id == execution_id]
        assert letter.terminal_reason == dead_letter_pb2.TERMINAL_REASON_RETRY_EXHAUSTED
        assert letter.error_code == "TransitionWorkerFailureException"
    async with dispatcher_status_client(dispatched.dispatcher.target) as status_stub:
        status = (await status_stub.GetDispatcherStatus(dspb.GetDispatcherStatusRequest())).status
    assert status.counters.failed == FAST_RETRY.max_retries + 1


async def test_sigterm_drains_running_work_and_exits_zero(
    hosted: Suite, start_service: Any
) -> None:
    dispatcher = start_service("tpf_dispatcher", dispatcher_env(hosted))
    async with coordinator_client(hosted.coordinator.target) as client:
        execution_id = await submit(client, hosted, pipelines.CHAIN, slow_s="1.5")
        await wait_for_status(client, hosted, execution_id, st.EXECUTION_STATUS_RUNNING)
        async with dispatcher_status_client(dispatcher.target) as status_stub:

            async def draining() -> bool:
                status = await status_stub.GetDispatcherStatus(dspb.GetDispatcherStatusRequest())
                return status.status.state == dspb.DISPATCHER_STATE_DRAINING

            terminated = asyncio.create_task(asyncio.to_thread(dispatcher.terminate, 20.0))
            # The status RPC keeps answering while the running step finishes.
            assert await wait_until(draining, timeout_s=5, what="state DRAINING")
            assert await terminated == 0
        # The slow step finished and was reported before exit: the execution moved on.
        after = await execution(client, hosted, execution_id)
        assert after.status == st.EXECUTION_STATUS_QUEUED
        assert after.step_index == 1
        assert "draining" in dispatcher.log_text()


async def test_work_not_finished_within_drain_timeout_is_requeued_after_its_lease(
    hosted: Suite, start_service: Any
) -> None:
    env = dispatcher_env(hosted, TPF_DRAIN_TIMEOUT_S="0.2", TPF_LEASE_MS="1500")
    dispatcher = start_service("tpf_dispatcher", env)
    async with coordinator_client(hosted.coordinator.target) as client:
        execution_id = await submit(client, hosted, pipelines.CHAIN, slow_s="5")
        await wait_for_status(client, hosted, execution_id, st.EXECUTION_STATUS_RUNNING)
        assert await asyncio.to_thread(dispatcher.terminate, 20.0) == 0
        # Nothing was reported; the sweeper requeues it once the lease runs out.
        requeued = await wait_for_status(client, hosted, execution_id, st.EXECUTION_STATUS_QUEUED)
        assert requeued.step_index == 0
        history = [e.event for e in await events(client, hosted, execution_id)]
        assert history[-1] == H.HISTORY_EVENT_LEASE_EXPIRED
        # A new dispatcher picks it up and finishes it.
        start_service("tpf_dispatcher", dispatcher_env(hosted, TPF_DISPATCHER_ID="second"))
        await wait_for_status(
            client, hosted, execution_id, st.EXECUTION_STATUS_SUCCEEDED, timeout_s=30
        )


async def test_a_segment_release_runs_up_to_the_await_or_the_end_in_one_command(
    suite: Suite, start_service: Any, tmp_path: Path
) -> None:
    """DISPATCH_MODE_SEGMENT (TPF's behaviour): one claim runs every step up to the next await
    or the end, committed once; the release, not the dispatcher, chooses."""
    segment = release_pb2.DISPATCH_MODE_SEGMENT
    await register_local_release(suite, pipelines.CHAIN, tmp_path / "chain", segment)
    await register_local_release(suite, pipelines.APPROVAL, tmp_path / "approval", segment)
    start_service("tpf_dispatcher", dispatcher_env(suite))
    async with coordinator_client(suite.coordinator.target) as client:
        chain = await submit(client, suite, pipelines.CHAIN)
        approval = await submit(client, suite, pipelines.APPROVAL, orderId="order-segment")
        await wait_for_status(client, suite, chain, st.EXECUTION_STATUS_SUCCEEDED)
        assert [e.event for e in await events(client, suite, chain)] == [
            H.HISTORY_EVENT_SUBMITTED,
            H.HISTORY_EVENT_CLAIMED,
            H.HISTORY_EVENT_SUCCEEDED,
        ]
        assert await result_value(client, suite, chain) == {
            "orderId": (await result_value(client, suite, chain))["orderId"],
            "price": 21,
            "steps": 3,
        }
        parked = await wait_for_status(
            client, suite, approval, st.EXECUTION_STATUS_WAITING_EXTERNAL
        )
        assert parked.step_index == 1
        assert [e.event for e in await events(client, suite, approval)] == [
            H.HISTORY_EVENT_SUBMITTED,
            H.HISTORY_EVENT_CLAIMED,
            H.HISTORY_EVENT_AWAIT_REQUESTED,
        ]


async def test_a_drained_worker_stays_drained_when_its_dispatcher_restarts(
    hosted: Suite, start_service: Any
) -> None:
    """The dispatcher registers its own `local` record at every start; an operator's drain must
    survive that, and end only with an undrain."""
    env = dispatcher_env(
        hosted, TPF_LOCAL_WORKER_TENANTS=hosted.tenant, TPF_LOCAL_WORKER_HEARTBEAT_S="0.5"
    )
    dispatcher = start_service("tpf_dispatcher", env)
    chain = identity_of(pipelines.CHAIN)
    tenant, pipeline_id = hosted.tenant, chain.pipeline_id
    async with registry_client(hosted.registry.target) as client:

        async def own_record() -> Any:
            listed = await client.workers.ListWorkers(
                wspb.ListWorkersRequest(tenant_id=tenant, pipeline_id=pipeline_id)
            )
            mine = [w for w in listed.workers if w.worker_id.startswith("local-")]
            return mine[0] if mine else None

        async def resolved() -> list[str]:
            found = await client.workers.ResolveWorkers(
                wspb.ResolveWorkersRequest(
                    tenant_id=tenant, pipeline_id=pipeline_id, release_version=chain.release_version
                )
            )
            return sorted(w.worker_id for w in found.workers)

        registered = await wait_until(own_record, timeout_s=20, what="the dispatcher's record")
        worker_id = registered.worker_id
        drained = await client.workers.DrainWorker(
            wspb.DrainWorkerRequest(tenant_id=tenant, pipeline_id=pipeline_id, worker_id=worker_id)
        )
        assert drained.worker.state == worker_pb2.WORKER_STATE_DRAINING

        await asyncio.to_thread(dispatcher.kill)
        await asyncio.to_thread(dispatcher.restart)

        async def registered_again() -> Any:
            record = await own_record()
            later = record.registered_at_epoch_ms > registered.registered_at_epoch_ms
            return record if later else None

        again = await wait_until(registered_again, timeout_s=20, what="registered again")
        assert again.state == worker_pb2.WORKER_STATE_DRAINING
        assert again.draining_since_epoch_ms == drained.worker.draining_since_epoch_ms
        assert worker_id not in await resolved()

        undrained = await client.workers.UndrainWorker(
            wspb.UndrainWorkerRequest(
                tenant_id=tenant, pipeline_id=pipeline_id, worker_id=worker_id
            )
        )
        assert undrained.worker.state == worker_pb2.WORKER_STATE_HEALTHY
        assert worker_id in await resolved()
