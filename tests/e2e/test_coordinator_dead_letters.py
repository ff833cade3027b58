"""DeadLetterService through real registry and coordinator processes: the dead-letter queue,
redrive one by one (TPF_WIRE §6.3) and in bulk, optionally onto another release (DESIGN §5)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.e2e.conftest import Suite
from tests.e2e.test_coordinator_executions import claim, complete, get, history, submit_request
from tests.support.coordinator_client import CoordinatorClient, coordinator_client
from tests.support.grpc_errors import expect_error
from tests.support.registry_client import (
    ADMIN_B,
    CONTROL_PLANE_A,
    declare_local_host,
    registry_client,
)
from tests.support.release_artifacts import PIPELINE_ID, BuiltRelease, build_release
from tests.support.restaurant import order_envelope
from tpf.common.v1 import error_reason_pb2, payload_pb2
from tpf.common.v1 import execution_status_pb2 as st
from tpf.coordinator.v1 import dead_letter_pb2, dead_letter_service_pb2_grpc, execution_pb2
from tpf.coordinator.v1 import dead_letter_service_pb2 as dpb
from tpf.coordinator.v1 import work_service_pb2 as wpb
from tpf.registry.v1 import release_service_pb2 as rpb
from tpf.registry.v1 import worker_service_pb2 as wkpb

pytestmark = pytest.mark.e2e


def dead_letters_of(
    client: CoordinatorClient,
) -> dead_letter_service_pb2_grpc.DeadLetterServiceAsyncStub:
    return dead_letter_service_pb2_grpc.DeadLetterServiceStub(client.channel)


async def fail_permanently(
    client: CoordinatorClient, suite: Suite, *, error_code: str | None = None
) -> str:
    """An execution that fails at step 0 with a permanent input error: FAILED, version 2."""
    eid = (await client.executions.SubmitExecution(submit_request(suite))).execution_id
    [item] = await claim(client)
    assert item.execution_id == eid
    failed = wpb.FailedOutcome(
        failure_class="java.lang.IllegalArgumentException",
        message="cannot decode input",
        retryable=False,
        permanent_input_error=True,
    )
    if error_code is not None:
        failed.error_code = error_code
    [result] = await complete(
        client,
        wpb.WorkOutcome(
            execution_id=eid,
            tenant_id=suite.tenant,
            fencing_token=item.fencing_token,
            failed=failed,
        ),
    )
    assert result.accepted and result.status == st.EXECUTION_STATUS_FAILED
    assert result.version == 2
    return eid


async def listed(client: CoordinatorClient, suite: Suite, **fields: Any) -> Any:
    return await dead_letters_of(client).ListDeadLetters(
        dpb.ListDeadLettersRequest(tenant_id=suite.tenant, **fields)
    )


def redrive(suite: Suite, execution_id: str, **fields: Any) -> dpb.RedriveExecutionRequest:
    return dpb.RedriveExecutionRequest(tenant_id=suite.tenant, execution_id=execution_id, **fields)


async def register_release(
    suite: Suite, tmp_path: Path, salt: str, *, with_worker: bool
) -> BuiltRelease:
    """Another release of the restaurant pipeline, registered but not activated."""
    built = build_release(tmp_path / f"release{salt}", salt=salt)
    async with registry_client(suite.registry.target) as registry:
        await registry.releases.RegisterRelease(
            rpb.RegisterReleaseRequest(
                tenant_id=suite.tenant,
                pipeline_id=PIPELINE_ID,
                release_descriptor_path=str(built.descriptor_path),
            )
        )
        if with_worker:
            await registry.workers.RegisterWorker(
                wkpb.RegisterWorkerRequest(
                    tenant_id=suite.tenant,
                    pipeline_id=PIPELINE_ID,
                    worker_id=f"worker{salt}",
                    contract_version=built.contract_version,
                    release_version=built.release_version,
                    protocol="local",
                )
            )
            await declare_local_host(
                registry, pipeline_id=PIPELINE_ID, contract_version=built.contract_version
            )
    return built


async def test_a_failed_execution_is_dead_lettered_and_redriven_with_allow_failed(
    suite: Suite,
) -> None:
    async with coordinator_client(suite.coordinator.target) as client:
        stub = dead_letters_of(client)
        eid = await fail_permanently(client, suite)
        [letter] = (await listed(client, suite)).dead_letters
        assert (letter.execution_id, letter.tenant_id) == (eid, suite.tenant)
        assert letter.terminal_reason == dead_letter_pb2.TERMINAL_REASON_NON_RETRYABLE
        assert letter.terminal_status == st.EXECUTION_STATUS_FAILED
        assert letter.error_code == "NonRetryableException"
        assert letter.error_message == "cannot decode input"
        assert not letter.retryable and letter.retries_observed == 0
        assert (letter.step_index, letter.attempt, letter.execution_version) == (0, 0, 2)
        assert letter.transition_key == f"{eid}:0:0"
        assert letter.resource_type == "tpf.orchestrator.execution"
        assert letter.identity.release_version == suite.release.release_version
        assert letter.execution_key.startswith(f"{suite.tenant}:{PIPELINE_ID}:")
        assert uuid.UUID(letter.dead_letter_id)
        assert not letter.redriven and letter.redriven_at_epoch_ms == 0

        refused = await expect_error(
            stub.RedriveExecution(redrive(suite, eid)),
            grpc.StatusCode.FAILED_PRECONDITION,
            "INVALID_TRANSITION",
        )
        assert refused.message == f"Execution {eid} cannot be re-driven from status FAILED"
        conflict = await expect_error(
            stub.RedriveExecution(redrive(suite, eid, allow_failed=True, expected_version=1)),
            grpc.StatusCode.ABORTED,
            "VERSION_CONFLICT",
        )
        assert conflict.message == (
            f"Execution {eid} version mismatch: expected 1 but current version is 2"
        )
        await expect_error(
            stub.RedriveExecution(redrive(suite, "no-such-execution", allow_failed=True)),
            grpc.StatusCode.NOT_FOUND,
            "EXECUTION_NOT_FOUND",
        )
        assert (await get(client, suite, eid)).status.version == 2

        reason = "  fixed the input decoder " + "x" * 100
        done = await stub.RedriveExecution(
            redrive(suite, eid, allow_failed=True, expected_version=2, reason=reason)
        )
        assert (done.tenant_id, done.execution_id) == (suite.tenant, eid)
        assert done.previous_status == st.EXECUTION_STATUS_FAILED
        assert done.status == st.EXECUTION_STATUS_QUEUED
        assert (done.version, done.attempt, done.current_step_index) == (3, 1, 0)
        assert (done.pipeline_id, done.release_version, done.contract_version) == (
            PIPELINE_ID,
            suite.release.release_version,
            suite.release.contract_version,
        )
        # Committed before the answer: visible at once.
        got = await get(client, suite, eid)
        assert got.status.status == st.EXECUTION_STATUS_QUEUED
        assert (got.status.version, got.status.attempt) == (3, 1)
        assert not got.status.HasField("error_code")
        last = (await history(client, suite, eid))[-1]
        assert last.event == execution_pb2.HISTORY_EVENT_REDRIVEN
        stored_reason = reason.strip()[:80]
        assert (last.version, last.actor, last.reason) == (3, "ops", stored_reason)

        assert list((await listed(client, suite)).dead_letters) == []
        [audited] = (
            await listed(client, suite, filter=dpb.DeadLetterFilter(include_redriven=True))
        ).dead_letters
        assert audited.redriven and audited.redriven_at_epoch_ms == done.updated_at_epoch_ms
        assert (audited.redriven_by, audited.redrive_reason) == ("ops", stored_reason)

        await expect_error(
            stub.RedriveExecution(redrive(suite, eid, allow_failed=True)),
            grpc.StatusCode.FAILED_PRECONDITION,
            "INVALID_TRANSITION",
        )
        [item] = await claim(client)
        assert (item.execution_id, item.attempt, item.step_index) == (eid, 1, 0)
    line = (
        f"Re-drove execution tenant={suite.tenant} executionId={eid} previousStatus=FAILED "
        "stepIndex=0 attempt=1"
    )
    assert line in suite.coordinator.log_text()


async def test_dead_letters_list_newest_first_with_filters_and_pages(suite: Suite) -> None:
    async with coordinator_client(suite.coordinator.target) as client:
        first = await fail_permanently(client, suite, error_code="CodeA")
        second = await fail_permanently(client, suite, error_code="CodeB")
        third = await fail_permanently(client, suite, error_code="CodeA")

        async def ids(**fields: Any) -> list[str]:
            return [d.execution_id for d in (await listed(client, suite, **fields)).dead_letters]

        assert await ids() == [third, second, first]
        page = await listed(client, suite, page_size=2)
        assert [d.execution_id for d in page.dead_letters] == [third, second]
        rest = await listed(client, suite, page_size=2, page_token=page.next_page_token)
        assert [d.execution_id for d in rest.dead_letters] == [first]
        assert rest.next_page_token == ""

        def only(**criteria: Any) -> dpb.DeadLetterFilter:
            return dpb.DeadLetterFilter(**criteria)

        assert await ids(filter=only(error_code="CodeA")) == [third, first]
        assert await ids(filter=only(execution_id=second)) == [second]
        assert await ids(filter=only(pipeline_id=PIPELINE_ID)) == [third, second, first]
        assert await ids(filter=only(pipeline_id="other.pipeline")) == []
        assert await ids(filter=only(release_version=suite.release.release_version)) == [
            third,
            second,
            first,
        ]
        non_retryable = dead_letter_pb2.TERMINAL_REASON_NON_RETRYABLE
        exhausted = dead_letter_pb2.TERMINAL_REASON_RETRY_EXHAUSTED
        assert len(await ids(filter=only(terminal_reasons=[non_retryable]))) == 3
        assert await ids(filter=only(terminal_reasons=[exhausted])) == []
        newest = (await listed(client, suite)).dead_letters[0]
        later = only()
        later.created_after.FromMilliseconds(newest.created_at_epoch_ms + 1)
        assert await ids(filter=later) == []
        earlier = only()
        earlier.created_before.FromMilliseconds(newest.created_at_epoch_ms + 1)
        assert third in await ids(filter=earlier)

        await expect_error(
            listed(
                client,
                suite,
                page_size=2,
                page_token=page.next_page_token,
                filter=only(error_code="CodeA"),
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "PAGE_TOKEN_INVALID",
        )
        await expect_error(
            listed(client, suite, filter=only(terminal_reasons=[0])),
            grpc.StatusCode.INVALID_ARGUMENT,
            "FIELD_INVALID",
        )
        backwards = only()
        backwards.created_after.FromMilliseconds(2000)
        backwards.created_before.FromMilliseconds(1000)
        await expect_error(
            listed(client, suite, filter=backwards),
            grpc.StatusCode.INVALID_ARGUMENT,
            "FIELD_INVALID",
        )
        await expect_error(
            listed(client, suite, page_size=-1),
            grpc.StatusCode.INVALID_ARGUMENT,
            "FIELD_OUT_OF_RANGE",
        )
    async with coordinator_client(suite.coordinator.target, token=CONTROL_PLANE_A) as cp:
        stub = dead_letters_of(cp)
        for call in (
            stub.ListDeadLetters(dpb.ListDeadLettersRequest(tenant_id="tenant-a")),
            stub.RedriveExecution(
                dpb.RedriveExecutionRequest(tenant_id="tenant-a", execution_id=first)
            ),
            stub.BulkRedrive(dpb.BulkRedriveRequest(tenant_id="tenant-a", reason="r")),
        ):
            await expect_error(call, grpc.StatusCode.PERMISSION_DENIED, "ROLE_REQUIRED")
    async with coordinator_client(suite.coordinator.target, token=ADMIN_B) as other:
        stub = dead_letters_of(other)
        for call in (
            stub.ListDeadLetters(dpb.ListDeadLettersRequest(tenant_id=suite.tenant)),
            stub.RedriveExecution(redrive(suite, first, allow_failed=True)),
            stub.BulkRedrive(dpb.BulkRedriveRequest(tenant_id=suite.tenant, reason="r")),
        ):
            await expect_error(call, grpc.StatusCode.PERMISSION_DENIED, "TENANT_NOT_IN_SCOPE")
        # Its own tenant has no dead letters, and cannot reach ours.
        mine = await stub.ListDeadLetters(dpb.ListDeadLettersRequest(tenant_id="tenant-b"))
        assert list(mine.dead_letters) == []
        await expect_error(
            stub.RedriveExecution(
                dpb.RedriveExecutionRequest(
                    tenant_id="tenant-b", execution_id=first, allow_failed=True
                )
            ),
            grpc.StatusCode.NOT_FOUND,
            "EXECUTION_NOT_FOUND",
        )


async def test_bulk_redrive_counts_on_a_dry_run_then_redrives_each(suite: Suite) -> None:
    async with coordinator_client(suite.coordinator.target) as client:
        stub = dead_letters_of(client)
        eids = [await fail_permanently(client, suite) for _ in range(3)]
        dry = await stub.BulkRedrive(
            dpb.BulkRedriveRequest(tenant_id=suite.tenant, dry_run=True, reason="look first")
        )
        assert (dry.matched_count, dry.redriven_count, dry.dry_run) == (3, 0, True)
        assert list(dry.execution_ids) == eids
        for eid in eids:
            assert (await get(client, suite, eid)).status.status == st.EXECUTION_STATUS_FAILED

        # Executions of the pipeline have no such release: reported one by one, none changed.
        unknown = await stub.BulkRedrive(
            dpb.BulkRedriveRequest(
                tenant_id=suite.tenant, reason="repin", target_release_version="no-such-release"
            )
        )
        assert (unknown.matched_count, unknown.redriven_count) == (3, 0)
        assert [f.execution_id for f in unknown.failures] == eids
        assert {f.reason for f in unknown.failures} == {
            error_reason_pb2.ERROR_REASON_CONTRACT_MISMATCH
        }
        await expect_error(
            stub.BulkRedrive(
                dpb.BulkRedriveRequest(
                    tenant_id=suite.tenant,
                    reason="repin",
                    target_release_version="no-such-release",
                    filter=dpb.DeadLetterFilter(pipeline_id=PIPELINE_ID),
                )
            ),
            grpc.StatusCode.NOT_FOUND,
            "RELEASE_NOT_FOUND",
        )

        request_id = str(uuid.uuid4())
        bulk = dpb.BulkRedriveRequest(
            tenant_id=suite.tenant, max_executions=2, reason="kitchen fixed", request_id=request_id
        )
        done = await stub.BulkRedrive(bulk)
        assert (done.matched_count, done.redriven_count, done.dry_run) == (3, 2, False)
        assert list(done.execution_ids) == eids[:2] and list(done.failures) == []
        for eid in eids[:2]:
            status = (await get(client, suite, eid)).status
            assert status.status == st.EXECUTION_STATUS_QUEUED
            assert (status.version, status.attempt) == (3, 1)
            last = (await history(client, suite, eid))[-1]
            assert last.event == execution_pb2.HISTORY_EVENT_REDRIVEN
            assert last.reason == "kitchen fixed"
        # A retried call with its request id gets the first answer and redrives nothing more.
        assert await stub.BulkRedrive(bulk) == done
        assert (await get(client, suite, eids[2])).status.status == st.EXECUTION_STATUS_FAILED

        remaining = await stub.BulkRedrive(
            dpb.BulkRedriveRequest(tenant_id=suite.tenant, reason="the rest")
        )
        assert (remaining.matched_count, remaining.redriven_count) == (1, 1)
        assert list(remaining.execution_ids) == [eids[2]]
        assert list((await listed(client, suite)).dead_letters) == []

        for bad, reason in (
            (dpb.BulkRedriveRequest(tenant_id=suite.tenant, reason="  "), "FIELD_REQUIRED"),
            (
                dpb.BulkRedriveRequest(tenant_id=suite.tenant, reason="r", max_executions=10_001),
                "FIELD_OUT_OF_RANGE",
            ),
            (
                dpb.BulkRedriveRequest(tenant_id=suite.tenant, reason="r", request_id="nope"),
                "FIELD_INVALID",
            ),
        ):
            await expect_error(stub.BulkRedrive(bad), grpc.StatusCode.INVALID_ARGUMENT, reason)


async def test_redrive_onto_another_release_repins_the_execution(
    suite: Suite, tmp_path: Path
) -> None:
    newer = await register_release(suite, tmp_path, "-v2", with_worker=True)
    unserved = await register_release(suite, tmp_path, "-v3", with_worker=False)
    assert newer.release_version != suite.release.release_version
    async with coordinator_client(suite.coordinator.target) as client:
        stub = dead_letters_of(client)
        eid = await fail_permanently(client, suite)
        await expect_error(
            stub.RedriveExecution(
                redrive(suite, eid, allow_failed=True, target_release_version="no-such-release")
            ),
            grpc.StatusCode.NOT_FOUND,
            "RELEASE_NOT_FOUND",
        )
        await expect_error(
            stub.RedriveExecution(
                redrive(
                    suite, eid, allow_failed=True, target_release_version=unserved.release_version
                )
            ),
            grpc.StatusCode.UNAVAILABLE,
            "NO_WORKER_AVAILABLE",
        )
        assert (await get(client, suite, eid)).status.version == 2
        done = await stub.RedriveExecution(
            redrive(suite, eid, allow_failed=True, target_release_version=newer.release_version)
        )
        assert (done.release_version, done.contract_version) == (
            newer.release_version,
            newer.contract_version,
        )
        execution = (await get(client, suite, eid)).execution
        assert execution.identity.release_version == newer.release_version
        assert execution.identity.contract_version == newer.contract_version
        last = (await history(client, suite, eid))[-1]
        assert (last.release_version, last.reason) == (newer.release_version, "operator")
        [item] = await claim(client)
        assert item.identity.release_version == newer.release_version


async def test_redrive_with_a_replacement_input_runs_the_step_on_the_fixed_input(
    suite: Suite,
) -> None:
    fixed = {"requestId": str(uuid.uuid4()), "customerName": "Fixed"}
    async with coordinator_client(suite.coordinator.target) as client:
        eid = await fail_permanently(client, suite)
        bad = payload_pb2.PayloadEnvelope(
            payload_type_id="java.util.Map",
            payload_encoding="application/tpf-transition+json",
            payload="{not json",
        )
        await expect_error(
            dead_letters_of(client).RedriveExecution(
                redrive(suite, eid, allow_failed=True, replacement_input=bad)
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "PAYLOAD_UNDECODABLE",
        )
        unchanged = (await get(client, suite, eid)).execution
        assert unchanged.version == 2, "a refused redrive changes nothing"

        replacement = order_envelope(customerName="Fixed", requestId=fixed["requestId"])
        answer = await dead_letters_of(client).RedriveExecution(
            redrive(
                suite, eid, allow_failed=True, expected_version=2, replacement_input=replacement
            )
        )
        assert answer.status == st.EXECUTION_STATUS_QUEUED
        [item] = await claim(client)
        assert item.execution_id == eid and item.attempt == 1
        assert item.input_payload == replacement, "the step runs on the replacement input"
        entries = await history(client, suite, eid)
        assert any("input replaced" in entry.reason for entry in entries)
