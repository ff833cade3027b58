"""SubmitExecutions, and submissions written together, through real registry and coordinator
processes: each request gets what SubmitExecution would have answered, in order; the accepted
ones become one QUEUED execution each with exactly one SUBMITTED history row."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from tests.e2e.conftest import Suite
from tests.e2e.test_coordinator_executions import get, history, submit_request
from tests.support.coordinator_client import CoordinatorClient, coordinator_client
from tests.support.grpc_errors import expect_error
from tests.support.release_artifacts import PIPELINE_ID
from tpf.common.v1 import error_reason_pb2
from tpf.common.v1 import execution_status_pb2 as st
from tpf.coordinator.v1 import execution_pb2
from tpf.coordinator.v1 import execution_service_pb2 as epb

pytestmark = pytest.mark.e2e

INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT.value[0]
ALREADY_EXISTS = grpc.StatusCode.ALREADY_EXISTS.value[0]


def copy_of(request: epb.SubmitExecutionRequest) -> epb.SubmitExecutionRequest:
    copy = epb.SubmitExecutionRequest()
    copy.CopyFrom(request)
    return copy


async def assert_one_queued_execution(
    client: CoordinatorClient, suite: Suite, execution_id: str
) -> None:
    got = await get(client, suite, execution_id)
    assert got.execution.status == st.EXECUTION_STATUS_QUEUED
    assert got.execution.version == 0
    rows = await history(client, suite, execution_id)
    assert [(row.version, row.event) for row in rows] == [
        (0, execution_pb2.HISTORY_EVENT_SUBMITTED)
    ]


async def test_each_request_gets_its_own_answer_in_order(suite: Suite) -> None:
    async with coordinator_client(suite.coordinator.target) as client:
        earlier_request = submit_request(suite, "earlier")
        earlier = await client.executions.SubmitExecution(earlier_request)
        b1 = submit_request(suite, "b-1")
        no_payload = epb.SubmitExecutionRequest(
            pipeline_id=PIPELINE_ID, input_shape=execution_pb2.INPUT_SHAPE_UNI
        )
        requests = [
            b1,
            submit_request(suite, "b-2", customerName="Bob"),
            copy_of(b1),  # the same key and input as the first: a duplicate
            submit_request(suite, "b-2", customerName="Carol"),  # same key, other input
            no_payload,
            copy_of(earlier_request),  # committed before this call
            submit_request(suite, "b-3"),
        ]
        for request in requests:
            request.tenant_id = ""  # the call's tenant
        response = await client.executions.SubmitExecutions(
            epb.SubmitExecutionsRequest(tenant_id=suite.tenant, requests=requests)
        )
        results = list(response.results)
        assert [r.WhichOneof("outcome") for r in results] == [
            "accepted",
            "accepted",
            "accepted",
            "error",
            "error",
            "accepted",
            "accepted",
        ]
        first, second, repeat, reused, missing, again, third = results
        # The first of two requests with the same key creates the execution.
        assert not first.accepted.duplicate and not second.accepted.duplicate
        assert repeat.accepted.duplicate
        assert repeat.accepted.execution_id == first.accepted.execution_id
        assert reused.error.code == ALREADY_EXISTS
        assert reused.error.reason == error_reason_pb2.ERROR_REASON_IDEMPOTENCY_KEY_REUSED
        assert reused.error.metadata["executionId"] == second.accepted.execution_id
        assert missing.error.code == INVALID_ARGUMENT
        assert missing.error.reason == error_reason_pb2.ERROR_REASON_FIELD_REQUIRED
        assert "inputPayload" in missing.error.message
        assert again.accepted.duplicate
        assert again.accepted.execution_id == earlier.execution_id
        assert not third.accepted.duplicate
        created = {
            first.accepted.execution_id,
            second.accepted.execution_id,
            third.accepted.execution_id,
        }
        assert len(created) == 3
        for execution_id in created:
            assert third.accepted.status_url.startswith("/pipeline/executions/")
            await assert_one_queued_execution(client, suite, execution_id)


async def test_a_call_that_cannot_be_taken_is_refused_whole(suite: Suite) -> None:
    async with coordinator_client(suite.coordinator.target) as client:
        await expect_error(
            client.executions.SubmitExecutions(epb.SubmitExecutionsRequest(tenant_id=suite.tenant)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "FIELD_REQUIRED",
        )
        other_tenant = submit_request(suite, "x")
        other_tenant.tenant_id = "someone-else"
        found = await expect_error(
            client.executions.SubmitExecutions(
                epb.SubmitExecutionsRequest(
                    tenant_id=suite.tenant, requests=[submit_request(suite, "y"), other_tenant]
                )
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "FIELD_INVALID",
        )
        assert found.metadata["field"] == "requests[1].tenantId"
        await expect_error(
            client.executions.SubmitExecutions(
                epb.SubmitExecutionsRequest(
                    tenant_id=suite.tenant,
                    requests=[submit_request(suite, f"k{i}") for i in range(1001)],
                )
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "FIELD_OUT_OF_RANGE",
        )
        # Nothing of the refused calls was written (the first request of the second call
        # included).
        listed = await client.executions.ListExecutions(
            epb.ListExecutionsRequest(tenant_id=suite.tenant, page_size=10)
        )
        assert list(listed.executions) == []


async def test_concurrent_submissions_written_together_stay_one_each(suite: Suite) -> None:
    """Many SubmitExecution calls in flight share statements (group commit); each still gets
    its own execution, and repeats of a key racing each other get the one execution."""
    requests = [submit_request(suite, f"c-{i}") for i in range(40)]
    async with coordinator_client(suite.coordinator.target) as client:
        calls = [client.executions.SubmitExecution(copy_of(requests[i % 40])) for i in range(80)]
        responses = await asyncio.gather(*calls)
        by_key: dict[int, set[str]] = {}
        for i, response in enumerate(responses):
            by_key.setdefault(i % 40, set()).add(response.execution_id)
        assert all(len(ids) == 1 for ids in by_key.values())
        assert sum(not r.duplicate for r in responses) == 40
        for ids in list(by_key.values())[:5]:
            await assert_one_queued_execution(client, suite, next(iter(ids)))
        listed = await client.executions.ListExecutions(
            epb.ListExecutionsRequest(tenant_id=suite.tenant, page_size=100)
        )
        assert len(listed.executions) == 40
