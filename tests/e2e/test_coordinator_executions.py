"""ExecutionService and WorkService through real registry and coordinator processes."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2

from tests.e2e.conftest import Suite
from tests.harness.wait import wait_until
from tests.support.coordinator_client import CoordinatorClient, coordinator_client
from tests.support.grpc_errors import expect_error
from tests.support.registry_client import CONTROL_PLANE_A, WORKER_A, registry_client
from tests.support.release_artifacts import PIPELINE_ID, build_release
from tests.support.restaurant import envelope, order_envelope
from tpf.common.v1 import execution_status_pb2 as st
from tpf.coordinator.v1 import execution_pb2, interaction_pb2
from tpf.coordinator.v1 import execution_service_pb2 as epb
from tpf.coordinator.v1 import work_service_pb2 as wpb
from tpf.registry.v1 import release_service_pb2 as rpb

pytestmark = pytest.mark.e2e

DTO = "org.pipelineframework.restaurantapproval.common.dto."


def submit_request(suite: Suite, key: str = "", **order: Any) -> epb.SubmitExecutionRequest:
    return epb.SubmitExecutionRequest(
        tenant_id=suite.tenant,
        pipeline_id=PIPELINE_ID,
        input_shape=execution_pb2.INPUT_SHAPE_UNI,
        input_payload=order_envelope(**order),
        idempotency_key=key,
    )


async def claim(
    client: CoordinatorClient,
    dispatcher: str = "d1",
    *,
    max_items_override: int = 10,
    **kwargs: Any,
) -> list[Any]:
    request = wpb.ClaimWorkRequest(dispatcher_id=dispatcher, max_items=max_items_override, **kwargs)
    request.wait.FromMilliseconds(2000)
    response = await client.work.ClaimWork(request)
    return list(response.work_items)


def step_done(item: Any, next_step: int, output: Any, *, keep: bool = False) -> wpb.WorkOutcome:
    return wpb.WorkOutcome(
        execution_id=item.execution_id,
        tenant_id=item.identity.tenant_id,
        fencing_token=item.fencing_token,
        step_completed=wpb.StepCompletedOutcome(
            next_step_index=next_step, output_payloads=[output], continue_claim=keep
        ),
    )


async def complete(
    client: CoordinatorClient, *outcomes: wpb.WorkOutcome, dispatcher: str = "d1"
) -> list[Any]:
    response = await client.work.CompleteWork(
        wpb.CompleteWorkRequest(dispatcher_id=dispatcher, outcomes=list(outcomes))
    )
    return list(response.results)


async def get(client: CoordinatorClient, suite: Suite, execution_id: str) -> Any:
    response = await client.executions.GetExecution(
        epb.GetExecutionRequest(tenant_id=suite.tenant, execution_id=execution_id)
    )
    return response


async def history(client: CoordinatorClient, suite: Suite, execution_id: str) -> list[Any]:
    response = await client.executions.ListExecutionHistory(
        epb.ListExecutionHistoryRequest(tenant_id=suite.tenant, execution_id=execution_id)
    )
    return list(response.history_entries)


async def test_submit_is_pinned_and_idempotent(suite: Suite) -> None:
    async with coordinator_client(suite.coordinator.target) as client:
        first = await client.executions.SubmitExecution(
            submit_request(suite, "order-1", requestId="00000000-0000-0000-0000-000000000001")
        )
        assert not first.duplicate
        assert first.status_url == f"/pipeline/executions/{first.execution_id}"
        again = await client.executions.SubmitExecution(
            submit_request(suite, "order-1", requestId="00000000-0000-0000-0000-000000000001")
        )
        assert again.duplicate and again.execution_id == first.execution_id
        found = await expect_error(
            client.executions.SubmitExecution(
                submit_request(
                    suite,
                    "order-1",
                    customerName="Bob",
                    requestId="00000000-0000-0000-0000-000000000001",
                )
            ),
            grpc.StatusCode.ALREADY_EXISTS,
            "IDEMPOTENCY_KEY_REUSED",
        )
        assert found.metadata["executionId"] == first.execution_id
        got = await get(client, suite, first.execution_id)
        execution = got.execution
        assert execution.status == st.EXECUTION_STATUS_QUEUED
        assert (execution.version, execution.attempt, execution.step_index) == (0, 0, 0)
        assert execution.identity.release_version == suite.release.release_version
        assert execution.identity.contract_version == suite.release.contract_version
        assert got.status.status == st.EXECUTION_STATUS_QUEUED
        assert not got.status.HasField("error_code")
        await expect_error(
            client.executions.GetExecutionResult(
                epb.GetExecutionResultRequest(
                    tenant_id=suite.tenant, execution_id=first.execution_id
                )
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
            "RESULT_NOT_READY",
        )


async def test_a_repeat_gets_its_execution_whatever_admission_now_says(
    suite: Suite, tmp_path: Path
) -> None:
    """The insert recognises a repeat by its key; when admission refuses (here: the newly
    active release has no worker), the key is looked up before the refusal is answered."""
    async with coordinator_client(suite.coordinator.target) as client:
        order = submit_request(suite, "order-r")
        first = await client.executions.SubmitExecution(order)
        second = build_release(tmp_path / "second", salt="-second")
        async with registry_client(suite.registry.target) as registry:
            await registry.releases.RegisterRelease(
                rpb.RegisterReleaseRequest(
                    tenant_id=suite.tenant,
                    pipeline_id=PIPELINE_ID,
                    release_descriptor_path=str(second.descriptor_path),
                )
            )
            await registry.releases.ActivateRelease(
                rpb.ActivateReleaseRequest(
                    tenant_id=suite.tenant,
                    pipeline_id=PIPELINE_ID,
                    release_version=second.release_version,
                )
            )
        await expect_error(
            client.executions.SubmitExecution(submit_request(suite, "order-new")),
            grpc.StatusCode.UNAVAILABLE,
            "NO_WORKER_AVAILABLE",
        )
        again = await client.executions.SubmitExecution(order)
        assert again.duplicate and again.execution_id == first.execution_id
        pinned = (await get(client, suite, first.execution_id)).execution.identity
        assert pinned.release_version == suite.release.release_version
        await expect_error(
            client.executions.SubmitExecution(
                submit_request(suite, "order-r", customerName="Someone else")
            ),
            grpc.StatusCode.ALREADY_EXISTS,
            "IDEMPOTENCY_KEY_REUSED",
        )


async def test_bad_submissions_create_nothing(suite: Suite) -> None:
    async with coordinator_client(suite.coordinator.target) as client:
        cases: list[tuple[epb.SubmitExecutionRequest, grpc.StatusCode, str]] = [
            (
                epb.SubmitExecutionRequest(
                    tenant_id=suite.tenant,
                    pipeline_id=PIPELINE_ID,
                    input_shape=execution_pb2.INPUT_SHAPE_UNI,
                    input_payload=envelope("java.util.Map", {"not": "an envelope map"}),
                ),
                grpc.StatusCode.INVALID_ARGUMENT,
                "PAYLOAD_UNDECODABLE",
            ),
            (
                epb.SubmitExecutionRequest(
                    tenant_id=suite.tenant,
                    pipeline_id=PIPELINE_ID,
                    input_shape=execution_pb2.INPUT_SHAPE_UNI,
                    input_payload=envelope("com.evil.Type", {}),
                ),
                grpc.StatusCode.INVALID_ARGUMENT,
                "PAYLOAD_TYPE_UNSUPPORTED",
            ),
            (
                epb.SubmitExecutionRequest(
                    tenant_id=suite.tenant,
                    pipeline_id=PIPELINE_ID,
                    input_shape=execution_pb2.INPUT_SHAPE_UNI,
                ),
                grpc.StatusCode.INVALID_ARGUMENT,
                "FIELD_REQUIRED",
            ),
            (
                epb.SubmitExecutionRequest(
                    tenant_id=suite.tenant,
                    pipeline_id="no.such.pipeline",
                    input_shape=execution_pb2.INPUT_SHAPE_UNI,
                    input_payload=order_envelope(),
                ),
                grpc.StatusCode.FAILED_PRECONDITION,
                "NO_ACTIVE_RELEASE",
            ),
            (
                epb.SubmitExecutionRequest(
                    pipeline_id=PIPELINE_ID,
                    input_shape=execution_pb2.INPUT_SHAPE_UNI,
                    input_payload=order_envelope(),
                ),
                grpc.StatusCode.INVALID_ARGUMENT,
                "FIELD_REQUIRED",
            ),
            (
                submit_request(suite, notes="x" * (5 * 1024 * 1024)),
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "PAYLOAD_TOO_LARGE",
            ),
        ]
        for request, code, reason in cases:
            await expect_error(client.executions.SubmitExecution(request), code, reason)
        listed = await client.executions.ListExecutions(
            epb.ListExecutionsRequest(tenant_id=suite.tenant)
        )
        assert list(listed.executions) == []
        await expect_error(
            client.executions.GetExecution(
                epb.GetExecutionRequest(tenant_id=suite.tenant, execution_id="nope")
            ),
            grpc.StatusCode.NOT_FOUND,
            "EXECUTION_NOT_FOUND",
        )
    async with coordinator_client(suite.coordinator.target, token=WORKER_A) as worker:
        await expect_error(
            worker.executions.SubmitExecution(submit_request(suite)),
            grpc.StatusCode.PERMISSION_DENIED,
            "ROLE_REQUIRED",
        )
    async with coordinator_client(suite.coordinator.target, token=CONTROL_PLANE_A) as other:
        await expect_error(
            other.executions.SubmitExecution(submit_request(suite)),
            grpc.StatusCode.PERMISSION_DENIED,
            "TENANT_NOT_IN_SCOPE",
        )


async def test_steps_run_to_success_with_one_versioned_commit_each(suite: Suite) -> None:
    async with coordinator_client(suite.coordinator.target) as client:
        submitted = await client.executions.SubmitExecution(submit_request(suite))
        eid = submitted.execution_id
        [item] = await claim(client)
        assert item.execution_id == eid and item.fencing_token == 1
        assert item.step.step_id == "ProcessValidateOrderRequestService"
        assert item.stop_before_step_index == 1
        assert item.attempt_key == f"{eid}:0:0"
        assert (
            item.input_payload.payload_type_id
            == "org.pipelineframework.orchestrator.ExecutionInputSnapshot"
        )
        validated = envelope(DTO + "ValidatedRestaurantOrderRequestDto", {"ok": True})
        [result] = await complete(client, step_done(item, 1, validated, keep=True))
        assert result.accepted and result.version == 2
        assert result.status == st.EXECUTION_STATUS_RUNNING
        nxt = result.next_work_item
        assert (nxt.step_index, nxt.fencing_token) == (1, 2)
        assert nxt.input_payload.payload == validated.payload
        pending = envelope(DTO + "PendingRestaurantApprovalDto", {"orderId": "o-1"})
        [result] = await complete(client, step_done(nxt, 2, pending))
        assert result.status == st.EXECUTION_STATUS_QUEUED and result.version == 3
        [item] = await claim(client)
        assert item.step.kind == "await" and item.fencing_token == 4
        # Jump past the await for this test: pretend the worker ran steps 2 and 3 in a segment.
        terminal = envelope(DTO + "TerminalOrderStateDto", {"outcome": "APPROVED"})
        [result] = await complete(
            client,
            wpb.WorkOutcome(
                execution_id=eid,
                tenant_id=suite.tenant,
                fencing_token=item.fencing_token,
                pipeline_completed=wpb.PipelineCompletedOutcome(output_payloads=[terminal]),
            ),
        )
        assert result.accepted and result.status == st.EXECUTION_STATUS_SUCCEEDED
        answer = await client.executions.GetExecutionResult(
            epb.GetExecutionResultRequest(tenant_id=suite.tenant, execution_id=eid)
        )
        assert json.loads(answer.result_payload.payload) == {"outcome": "APPROVED"}
        assert answer.status.version == 5
        events = [
            (h.version, execution_pb2.HistoryEvent.Name(h.event))
            for h in await history(client, suite, eid)
        ]
        assert events == [
            (0, "HISTORY_EVENT_SUBMITTED"),
            (1, "HISTORY_EVENT_CLAIMED"),
            (2, "HISTORY_EVENT_STEP_COMPLETED"),
            (3, "HISTORY_EVENT_STEP_COMPLETED"),
            (4, "HISTORY_EVENT_CLAIMED"),
            (5, "HISTORY_EVENT_SUCCEEDED"),
        ]


async def test_a_stale_claimant_is_fenced_and_changes_nothing(suite: Suite) -> None:
    async with coordinator_client(suite.coordinator.target) as client:
        submitted = await client.executions.SubmitExecution(submit_request(suite))
        eid = submitted.execution_id
        request = wpb.ClaimWorkRequest(dispatcher_id="slow", max_items=1)
        request.lease_duration.FromMilliseconds(1000)
        [stale] = (await client.work.ClaimWork(request)).work_items
        # The slow dispatcher's lease runs out; the sweeper requeues and another claims.
        fresh_items = await wait_until(
            lambda: claim(client, "fast"), timeout_s=20, what="requeue after lease expiry"
        )
        [fresh] = fresh_items
        assert fresh.execution_id == eid and fresh.fencing_token > stale.fencing_token
        output = envelope(DTO + "ValidatedRestaurantOrderRequestDto", {"by": "slow"})
        [late] = await complete(client, step_done(stale, 1, output), dispatcher="slow")
        assert not late.accepted
        assert late.rejection_reason == 50  # ERROR_REASON_STALE_FENCING_TOKEN
        [ok] = await complete(
            client,
            step_done(
                fresh, 1, envelope(DTO + "ValidatedRestaurantOrderRequestDto", {"by": "fast"})
            ),
            dispatcher="fast",
        )
        assert ok.accepted
        entries = await history(client, suite, eid)
        completed = [h for h in entries if h.event == execution_pb2.HISTORY_EVENT_STEP_COMPLETED]
        assert len(completed) == 1 and completed[0].actor == "fast"
        assert [h.event for h in entries].count(execution_pb2.HISTORY_EVENT_LEASE_EXPIRED) == 1


async def test_retryable_failures_retry_then_fail_with_a_dead_letter(suite: Suite) -> None:
    async with coordinator_client(suite.coordinator.target) as client:
        eid = (await client.executions.SubmitExecution(submit_request(suite))).execution_id
        for attempt in range(3):
            [item] = await wait_until(lambda: claim(client), timeout_s=10, what="claimable")
            assert item.attempt == attempt
            [result] = await complete(
                client,
                wpb.WorkOutcome(
                    execution_id=eid,
                    tenant_id=suite.tenant,
                    fencing_token=item.fencing_token,
                    failed=wpb.FailedOutcome(
                        failure_class="java.lang.IllegalStateException",
                        message="kitchen on fire",
                        retryable=True,
                    ),
                ),
            )
            assert result.accepted
        execution = (await get(client, suite, eid)).execution
        assert execution.status == st.EXECUTION_STATUS_FAILED
        assert execution.error_code == "TransitionWorkerFailureException"
        assert execution.error_message == "java.lang.IllegalStateException: kitchen on fire"
        assert execution.attempt == 2 and execution.terminal_reason == "retry_exhausted"
    log = suite.coordinator.log_text()
    assert "Execution moved to DLQ" in log and eid in log and "reason=retry_exhausted" in log


async def test_permanent_input_error_fails_at_once(suite: Suite) -> None:
    async with coordinator_client(suite.coordinator.target) as client:
        eid = (await client.executions.SubmitExecution(submit_request(suite))).execution_id
        [item] = await claim(client)
        [result] = await complete(
            client,
            wpb.WorkOutcome(
                execution_id=eid,
                tenant_id=suite.tenant,
                fencing_token=item.fencing_token,
                failed=wpb.FailedOutcome(
                    failure_class="java.lang.IllegalArgumentException",
                    message="cannot decode input",
                    retryable=True,
                    permanent_input_error=True,
                ),
            ),
        )
        assert result.accepted and result.status == st.EXECUTION_STATUS_FAILED
        execution = (await get(client, suite, eid)).execution
        assert execution.attempt == 0 and execution.terminal_reason == "non_retryable"


async def test_await_parks_the_execution_and_cancel_ends_it(suite: Suite) -> None:
    async with coordinator_client(suite.coordinator.target) as client:
        eid = (await client.executions.SubmitExecution(submit_request(suite))).execution_id
        [item] = await claim(client)
        request_payload = struct_pb2.Value()
        request_payload.struct_value.update({"orderId": "o-9"})
        [result] = await complete(
            client,
            wpb.WorkOutcome(
                execution_id=eid,
                tenant_id=suite.tenant,
                fencing_token=item.fencing_token,
                await_requested=wpb.AwaitRequestedOutcome(
                    await_step_index=2,
                    unit_id="unit-1",
                    deadline_epoch_ms=2**41,
                    interactions=[
                        wpb.AwaitInteractionSpec(
                            interaction=interaction_pb2.Interaction(
                                interaction_id="i-1",
                                correlation_id="c-1",
                                step_id="ProcessAwaitRestaurantDecisionService",
                                request_payload=request_payload,
                            ),
                            idempotency_key="ProcessAwaitRestaurantDecisionService:orderId=o-9",
                        )
                    ],
                ),
            ),
        )
        assert result.accepted and result.status == st.EXECUTION_STATUS_WAITING_EXTERNAL
        got = (await get(client, suite, eid)).status
        assert got.step_index == 2 and got.next_due_at_epoch_ms == 9223372036854775807
        cancelled = await client.executions.CancelExecution(
            epb.CancelExecutionRequest(tenant_id=suite.tenant, execution_id=eid, reason="test")
        )
        assert cancelled.execution.status == st.EXECUTION_STATUS_CANCELLED
        assert cancelled.previous_status == st.EXECUTION_STATUS_WAITING_EXTERNAL
        again = await client.executions.CancelExecution(
            epb.CancelExecutionRequest(tenant_id=suite.tenant, execution_id=eid)
        )
        assert again.duplicate


async def test_cancel_checks_the_expected_version_and_the_reason(suite: Suite) -> None:
    """CancelExecution as execution_service.proto says: a stale `expected_version` is ABORTED
    VERSION_CONFLICT, a reason over 256 characters FIELD_OUT_OF_RANGE (not cut), an empty one
    is recorded as "cancelled"; nothing changes on a refusal."""
    async with coordinator_client(suite.coordinator.target) as client:
        eid = (await client.executions.SubmitExecution(submit_request(suite))).execution_id
        cancel = client.executions.CancelExecution
        await expect_error(
            cancel(
                epb.CancelExecutionRequest(
                    tenant_id=suite.tenant, execution_id=eid, expected_version=3
                )
            ),
            grpc.StatusCode.ABORTED,
            "VERSION_CONFLICT",
        )
        await expect_error(
            cancel(
                epb.CancelExecutionRequest(
                    tenant_id=suite.tenant, execution_id=eid, reason="r" * 257
                )
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "FIELD_OUT_OF_RANGE",
        )
        assert (await get(client, suite, eid)).status.status == st.EXECUTION_STATUS_QUEUED
        done = await cancel(
            epb.CancelExecutionRequest(
                tenant_id=suite.tenant, execution_id=eid, expected_version=0, reason="  "
            )
        )
        assert done.execution.status == st.EXECUTION_STATUS_CANCELLED and not done.duplicate
        assert (await history(client, suite, eid))[-1].reason == "cancelled"
        # A retry of the same cancel is a duplicate, not a conflict with itself.
        again = await cancel(
            epb.CancelExecutionRequest(tenant_id=suite.tenant, execution_id=eid, expected_version=0)
        )
        assert again.duplicate
        other = (await client.executions.SubmitExecution(submit_request(suite, "k2"))).execution_id
        kept = await cancel(
            epb.CancelExecutionRequest(
                tenant_id=suite.tenant, execution_id=other, reason=" " + "r" * 256 + " "
            )
        )
        assert (await history(client, suite, other))[-1].reason == "r" * 256
        assert kept.execution.status == st.EXECUTION_STATUS_CANCELLED


async def test_watch_streams_every_version_until_terminal(suite: Suite) -> None:
    async with coordinator_client(suite.coordinator.target) as client:
        eid = (await client.executions.SubmitExecution(submit_request(suite))).execution_id
        stream = client.executions.WatchExecution(
            epb.WatchExecutionRequest(tenant_id=suite.tenant, execution_id=eid)
        )
        first: Any = await stream.read()
        assert first.execution.version == 0
        await client.executions.CancelExecution(
            epb.CancelExecutionRequest(tenant_id=suite.tenant, execution_id=eid)
        )
        versions = []
        while (update := await stream.read()) is not grpc.aio.EOF:
            assert isinstance(update, epb.WatchExecutionResponse)
            versions.append(update.execution.version)
        assert versions == [1]


async def test_list_pages_newest_first(suite: Suite, tmp_path: Path) -> None:
    async with coordinator_client(suite.coordinator.target) as client:
        ids = [
            (await client.executions.SubmitExecution(submit_request(suite, f"k{n}"))).execution_id
            for n in range(5)
        ]
        seen: list[str] = []
        token = ""
        while True:
            page = await client.executions.ListExecutions(
                epb.ListExecutionsRequest(tenant_id=suite.tenant, page_size=2, page_token=token)
            )
            seen += [e.execution_id for e in page.executions]
            token = page.next_page_token
            if not token:
                break
        assert sorted(seen) == sorted(ids) and len(seen) == 5
        queued = await client.executions.ListExecutions(
            epb.ListExecutionsRequest(
                tenant_id=suite.tenant, statuses=[st.EXECUTION_STATUS_SUCCEEDED]
            )
        )
        assert list(queued.executions) == []


async def test_a_retried_completion_with_its_request_id_gets_the_first_answer(suite: Suite) -> None:
    request_id = str(uuid.uuid4())
    async with coordinator_client(suite.coordinator.target) as client:
        eid = (await client.executions.SubmitExecution(submit_request(suite))).execution_id
        [item] = await claim(client)
        output = envelope(DTO + "ValidatedRestaurantOrderRequestDto", {"ok": True})
        request = wpb.CompleteWorkRequest(
            dispatcher_id="d1", outcomes=[step_done(item, 1, output)], request_id=request_id
        )
        first = await client.work.CompleteWork(request)
        # The same call again (e.g. its response was lost): the first answer, not a stale refusal.
        again = await client.work.CompleteWork(request)
        assert first == again and first.results[0].accepted
        assert (await get(client, suite, eid)).execution.version == 2
        other = wpb.CompleteWorkRequest(
            dispatcher_id="d1", outcomes=[step_done(item, 2, output)], request_id=request_id
        )
        await expect_error(
            client.work.CompleteWork(other),
            grpc.StatusCode.ALREADY_EXISTS,
            "IDEMPOTENCY_KEY_REUSED",
        )
        # Without a request id the repeat is fenced: nothing is applied twice.
        plain = wpb.CompleteWorkRequest(dispatcher_id="d1", outcomes=[step_done(item, 1, output)])
        [stale] = (await client.work.CompleteWork(plain)).results
        assert not stale.accepted
        assert len(await history(client, suite, eid)) == 3


async def test_work_service_refuses_bad_input(suite: Suite) -> None:
    async with coordinator_client(suite.coordinator.target) as client:
        await expect_error(
            client.work.ClaimWork(wpb.ClaimWorkRequest(max_items=1)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "FIELD_REQUIRED",
        )
        await expect_error(
            client.work.ClaimWork(wpb.ClaimWorkRequest(dispatcher_id="d", max_items=-1)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "FIELD_OUT_OF_RANGE",
        )
        # Oversized batches are coerced down, as the contract says (nothing is runnable here).
        assert await claim(client, max_items_override=5000) == []
        await expect_error(
            client.work.CompleteWork(wpb.CompleteWorkRequest(dispatcher_id="d")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "FIELD_REQUIRED",
        )
        [result] = (
            await client.work.CompleteWork(
                wpb.CompleteWorkRequest(
                    dispatcher_id="d",
                    outcomes=[wpb.WorkOutcome(execution_id="nope", tenant_id=suite.tenant)],
                )
            )
        ).results
        assert not result.accepted and result.rejection_message
    async with coordinator_client(suite.coordinator.target, token=CONTROL_PLANE_A) as other:
        await expect_error(
            other.work.ClaimWork(wpb.ClaimWorkRequest(dispatcher_id="d")),
            grpc.StatusCode.PERMISSION_DENIED,
            "ROLE_REQUIRED",
        )


async def test_large_payloads_round_trip_through_the_payload_store(suite: Suite) -> None:
    import psycopg

    big_note = "n" * (400 * 1024)
    async with coordinator_client(suite.coordinator.target) as client:
        eid = (
            await client.executions.SubmitExecution(submit_request(suite, notes=big_note))
        ).execution_id
        with psycopg.connect(suite.coordinator_env["TPF_DATABASE_URL"]) as conn:
            inline, ref = conn.execute(
                "SELECT payload, payload_ref FROM executions WHERE execution_id = %s", (eid,)
            ).fetchone() or (None, None)
        assert inline is None and ref and ref.startswith("file://")
        [item] = await claim(client)
        assert big_note in item.input_payload.payload
        big_output = envelope(DTO + "ValidatedRestaurantOrderRequestDto", {"notes": big_note})
        await complete(client, step_done(item, 1, big_output))
        [item] = await claim(client)
        assert item.input_payload.payload == big_output.payload
        big_result = envelope(DTO + "TerminalOrderStateDto", {"summary": big_note})
        await complete(
            client,
            wpb.WorkOutcome(
                execution_id=eid,
                tenant_id=suite.tenant,
                fencing_token=item.fencing_token,
                pipeline_completed=wpb.PipelineCompletedOutcome(output_payloads=[big_result]),
            ),
        )
        answer = await client.executions.GetExecutionResult(
            epb.GetExecutionResultRequest(tenant_id=suite.tenant, execution_id=eid)
        )
        assert answer.result_payload.payload == big_result.payload
        with psycopg.connect(suite.coordinator_env["TPF_DATABASE_URL"]) as conn:
            row = conn.execute(
                "SELECT result, result_ref FROM executions WHERE execution_id = %s", (eid,)
            ).fetchone()
        assert row is not None and row[0] is None and row[1]


async def test_a_retried_submission_with_the_same_request_id_creates_one_execution(
    suite: Suite,
) -> None:
    request_id = str(uuid.uuid4())
    request = submit_request(suite, requestId=str(uuid.uuid4()))
    request.request_id = request_id
    async with coordinator_client(suite.coordinator.target) as client:
        first = await client.executions.SubmitExecution(request)
        again = await client.executions.SubmitExecution(request)
        assert not first.duplicate and again.duplicate
        assert again.execution_id == first.execution_id

        other = submit_request(suite, requestId=str(uuid.uuid4()))
        other.request_id = request_id
        await expect_error(
            client.executions.SubmitExecution(other),
            grpc.StatusCode.ALREADY_EXISTS,
            "IDEMPOTENCY_KEY_REUSED",
        )
        malformed = submit_request(suite)
        malformed.request_id = "not-a-uuid"
        await expect_error(
            client.executions.SubmitExecution(malformed),
            grpc.StatusCode.INVALID_ARGUMENT,
            "FIELD_INVALID",
        )
