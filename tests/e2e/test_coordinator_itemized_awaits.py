"""Itemized awaits through real registry and coordinator processes: one interaction per item,
the execution resumes only when every item is answered, each item counts once, and the step
after the await receives every answer in item order (TPF_WIRE §5.2, §9.1)."""

from __future__ import annotations

import random

import grpc
import pytest

from tests.e2e.conftest import Suite
from tests.e2e.test_coordinator_executions import claim, complete, get, history, submit_request
from tests.support.coordinator_client import coordinator_client
from tests.support.grpc_errors import expect_error
from tests.support.itemized_awaits import (
    AWAIT_STEP_INDEX,
    answer,
    answer_item,
    interactions_stub,
    park_items,
    snapshot_items,
)
from tpf.common.v1 import execution_status_pb2 as st
from tpf.coordinator.v1 import execution_pb2, interaction_pb2
from tpf.coordinator.v1 import execution_service_pb2 as epb
from tpf.coordinator.v1 import interaction_service_pb2 as ipb
from tpf.coordinator.v1 import work_service_pb2 as wpb

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("count", [1, 3, 50])
async def test_the_unit_resumes_once_every_item_is_answered_with_answers_in_item_order(
    suite: Suite, count: int
) -> None:
    rng = random.Random(count)
    async with coordinator_client(suite.coordinator.target) as client:
        parked = await park_items(client, suite, count, rng=rng)
        listed = await interactions_stub(client).ListPendingInteractions(
            ipb.ListPendingInteractionsRequest(tenant_id=suite.tenant, page_size=1000)
        )
        assert {i.interaction_id for i in listed.interactions} == set(parked.interaction_ids)

        order = list(range(count))
        rng.shuffle(order)
        answered: list[int] = []
        for item in order:
            last = len(answered) == count - 1
            done = await answer_item(client, suite, parked, item)
            assert not done.duplicate
            assert done.status == interaction_pb2.INTERACTION_STATUS_COMPLETED
            assert done.interaction_id == parked.interaction_ids[item]
            answered.append(item)
            status = (await get(client, suite, parked.execution_id)).status
            if not last:
                # An item short of the last changes nothing on the execution.
                assert status.status == st.EXECUTION_STATUS_WAITING_EXTERNAL
                assert (status.step_index, status.version) == (AWAIT_STEP_INDEX, 2)
            # A second answer to an answered item is a duplicate and counts nothing.
            repeated = rng.choice(answered)
            again = await answer_item(client, suite, parked, repeated, note="late repeat")
            assert again.duplicate
            assert again.status == interaction_pb2.INTERACTION_STATUS_COMPLETED

        status = (await get(client, suite, parked.execution_id)).status
        assert status.status == st.EXECUTION_STATUS_QUEUED
        assert (status.step_index, status.version) == (AWAIT_STEP_INDEX + 1, 3)
        entries = await history(client, suite, parked.execution_id)
        resumed = [
            e for e in entries if e.event == execution_pb2.HISTORY_EVENT_INTERACTION_COMPLETED
        ]
        assert [(e.version, e.actor) for e in resumed] == [(3, f"approver-{order[-1]}")]
        pending = await interactions_stub(client).ListPendingInteractions(
            ipb.ListPendingInteractionsRequest(tenant_id=suite.tenant)
        )
        assert list(pending.interactions) == []

        # The next step's input: every item's first answer, in item order.
        [work] = await claim(client)
        assert (work.execution_id, work.step_index) == (parked.execution_id, AWAIT_STEP_INDEX + 1)
        assert snapshot_items(work.input_payload) == [answer(n) for n in range(count)]


async def test_interactions_that_do_not_form_one_await_are_rejected(suite: Suite) -> None:
    async with coordinator_client(suite.coordinator.target) as client:
        eid = (await client.executions.SubmitExecution(submit_request(suite))).execution_id
        [item] = await claim(client)
        specs = [
            wpb.AwaitInteractionSpec(
                interaction=interaction_pb2.Interaction(
                    interaction_id=f"i-{n}",
                    correlation_id=f"c-{n}",
                    step_id="ProcessAwaitRestaurantDecisionService",
                    step_index=AWAIT_STEP_INDEX,
                ),
                idempotency_key=f"k-{n}",
                item_index=0,
            )
            for n in range(2)
        ]
        [result] = await complete(
            client,
            wpb.WorkOutcome(
                execution_id=eid,
                tenant_id=suite.tenant,
                fencing_token=item.fencing_token,
                await_requested=wpb.AwaitRequestedOutcome(
                    await_step_index=AWAIT_STEP_INDEX,
                    unit_id="unit-1",
                    deadline_epoch_ms=2**41,
                    interactions=specs,
                ),
            ),
        )
        assert not result.accepted
        assert "repeats an itemIndex" in result.rejection_message
        status = (await get(client, suite, eid)).status
        assert status.status == st.EXECUTION_STATUS_RUNNING and status.version == 1


async def test_a_cancelled_itemized_await_refuses_the_remaining_items(suite: Suite) -> None:
    async with coordinator_client(suite.coordinator.target) as client:
        parked = await park_items(client, suite, 3)
        await answer_item(client, suite, parked, 1)
        await client.executions.CancelExecution(
            epb.CancelExecutionRequest(tenant_id=suite.tenant, execution_id=parked.execution_id)
        )
        refused = await expect_error(
            answer_item(client, suite, parked, 0),
            grpc.StatusCode.FAILED_PRECONDITION,
            "INTERACTION_TERMINAL",
        )
        assert refused.metadata["status"] == "CANCELLED"
        # The item answered before the cancel stays answered: a repeat is a duplicate.
        assert (await answer_item(client, suite, parked, 1)).duplicate
        status = (await get(client, suite, parked.execution_id)).status
        assert status.status == st.EXECUTION_STATUS_CANCELLED
