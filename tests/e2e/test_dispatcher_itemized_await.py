"""An itemized await authored with the worker SDK, run by a real dispatcher process: one
interaction per element of the await's list, the execution resumes once every element is
answered, and the next step gets the answers in the elements' order."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Suite
from tests.e2e.test_dispatcher_local import (
    dispatcher_env,
    events,
    register_local_release,
    result_value,
    wait_for_status,
)
from tests.support.coordinator_client import coordinator_client
from tests.support.itemized_pipeline import APPROVALS_TYPE, ITEMIZED, ORDER_TYPE
from tests.support.restaurant import envelope
from tpf.common.v1 import execution_status_pb2 as st
from tpf.coordinator.v1 import execution_pb2, interaction_service_pb2_grpc
from tpf.coordinator.v1 import execution_service_pb2 as epb
from tpf.coordinator.v1 import interaction_service_pb2 as ipb

pytestmark = pytest.mark.e2e

H = execution_pb2.HistoryEvent
APPROVERS = ["ann", "bob", "cy", "dee"]


async def test_an_sdk_itemized_await_resumes_with_every_answer_in_order(
    suite: Suite, start_service: Any, tmp_path: Path
) -> None:
    await register_local_release(suite, ITEMIZED, tmp_path / "itemized")
    start_service(
        "tpf_dispatcher",
        dispatcher_env(
            suite,
            TPF_LOCAL_PIPELINES="tests.support.itemized_pipeline:ITEMIZED",
            TPF_PIPELINE_IDS=ITEMIZED.pipeline_id,
        ),
    )
    async with coordinator_client(suite.coordinator.target) as client:
        order_id = f"order-{uuid.uuid4()}"
        submitted = await client.executions.SubmitExecution(
            epb.SubmitExecutionRequest(
                tenant_id=suite.tenant,
                pipeline_id=ITEMIZED.pipeline_id,
                input_shape=execution_pb2.INPUT_SHAPE_UNI,
                input_payload=envelope(ORDER_TYPE, {"orderId": order_id, "approvers": APPROVERS}),
            )
        )
        execution_id = submitted.execution_id
        await wait_for_status(client, suite, execution_id, st.EXECUTION_STATUS_WAITING_EXTERNAL)
        stub = interaction_service_pb2_grpc.InteractionServiceStub(client.channel)
        pending = await stub.ListPendingInteractions(
            ipb.ListPendingInteractionsRequest(tenant_id=suite.tenant)
        )
        by_approver = {
            i.request_payload.struct_value.fields["approver"].string_value: i
            for i in pending.interactions
            if i.execution_id == execution_id
        }
        assert sorted(by_approver) == sorted(APPROVERS)
        assert len({i.correlation_id for i in by_approver.values()}) == len(APPROVERS)

        # Answered in another order than asked, one of them twice.
        answered: set[str] = set()
        for name in ["dee", "bob", "ann", "bob", "cy"]:
            done = await stub.CompleteInteraction(
                ipb.CompleteInteractionRequest(
                    tenant_id=suite.tenant,
                    interaction_id=by_approver[name].interaction_id,
                    response_payload=envelope(
                        APPROVALS_TYPE, {"approver": name, "approved": name != "cy"}
                    ),
                    actor=name,
                )
            )
            if name != "cy":
                assert (
                    await client.executions.GetExecution(
                        epb.GetExecutionRequest(tenant_id=suite.tenant, execution_id=execution_id)
                    )
                ).execution.status == st.EXECUTION_STATUS_WAITING_EXTERNAL
            assert done.duplicate == (name in answered)
            answered.add(name)

        await wait_for_status(client, suite, execution_id, st.EXECUTION_STATUS_SUCCEEDED)
        assert await result_value(client, suite, execution_id) == {
            "approved": False,
            "approvers": APPROVERS,
        }
        history = [e.event for e in await events(client, suite, execution_id)]
        assert history.count(H.HISTORY_EVENT_AWAIT_REQUESTED) == 1
        assert history.count(H.HISTORY_EVENT_INTERACTION_COMPLETED) == 1
