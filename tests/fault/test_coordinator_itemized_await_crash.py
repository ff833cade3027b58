"""kill -9 of the coordinator in the middle of an itemized await's answers: answers committed
before the crash count once, the rest are taken after the restart, and the execution resumes
once with every answer in item order."""

from __future__ import annotations

import asyncio
import random

import grpc
import pytest

# The e2e fixtures this test runs on (tests/fault/conftest.py shares the registry ones).
from tests.e2e.conftest import Suite, suite
from tests.e2e.test_coordinator_executions import claim, get, history
from tests.support.coordinator_client import coordinator_client
from tests.support.itemized_awaits import (
    AWAIT_STEP_INDEX,
    ParkedItems,
    answer,
    answer_item,
    park_items,
    snapshot_items,
)
from tpf.common.v1 import execution_status_pb2 as st
from tpf.coordinator.v1 import execution_pb2

pytestmark = pytest.mark.e2e
__all__ = ["suite"]

ITEMS = 20


async def test_answers_survive_a_coordinator_kill_and_resume_the_execution_once(
    suite: Suite,
) -> None:
    rng = random.Random(ITEMS)
    order = list(range(ITEMS))
    rng.shuffle(order)
    answered: list[int] = []
    half = asyncio.Event()

    async def answer_into_the_crash(parked: ParkedItems) -> None:
        """Answer half of the items, then one more while the coordinator is being killed."""
        async with coordinator_client(suite.coordinator.target) as client:
            for item in order[: ITEMS // 2 + 1]:
                if len(answered) == ITEMS // 2:
                    half.set()
                try:
                    done = await answer_item(client, suite, parked, item)
                except grpc.aio.AioRpcError:
                    return  # the coordinator died under this answer; it may or may not count
                assert not done.duplicate
                answered.append(item)

    async with coordinator_client(suite.coordinator.target) as client:
        parked = await park_items(client, suite, ITEMS, rng=rng)
    answering = asyncio.create_task(answer_into_the_crash(parked))
    # Bounded, so a failure in the answering task surfaces instead of hanging the test.
    await asyncio.wait_for(half.wait(), timeout=30)
    await asyncio.to_thread(suite.coordinator.kill)
    await answering
    await asyncio.to_thread(suite.coordinator.restart)

    async with coordinator_client(suite.coordinator.target) as client:
        status = (await get(client, suite, parked.execution_id)).status
        assert status.status == st.EXECUTION_STATUS_WAITING_EXTERNAL and status.version == 2
        first_answers = 0
        for item in order:
            done = await answer_item(client, suite, parked, item)
            # What was answered before the crash is durable: its repeat is a duplicate.
            assert done.duplicate or item not in answered
            first_answers += not done.duplicate
            assert (await answer_item(client, suite, parked, item, note="repeat")).duplicate
        # Each item counted once: before the crash, in the answer the crash cut, or after.
        assert len(answered) + first_answers in (ITEMS - 1, ITEMS)

        status = (await get(client, suite, parked.execution_id)).status
        assert status.status == st.EXECUTION_STATUS_QUEUED
        assert (status.step_index, status.version) == (AWAIT_STEP_INDEX + 1, 3)
        events = [e.event for e in await history(client, suite, parked.execution_id)]
        assert events.count(execution_pb2.HISTORY_EVENT_INTERACTION_COMPLETED) == 1
        [work] = await claim(client)
        assert snapshot_items(work.input_payload) == [answer(n) for n in range(ITEMS)]
