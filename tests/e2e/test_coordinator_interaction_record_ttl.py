"""Interaction expiry through a real coordinator process with a short record TTL (TPF_WIRE §5.3):
the await times out at its deadline as before (FAILED AWAIT_TIMEOUT), and once the TTL has
passed too, every interaction of the await is EXPIRED and a completion is NOT_FOUND."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import psycopg
import pytest

from tests.e2e.conftest import Suite
from tests.e2e.test_coordinator_executions import get
from tests.harness.wait import wait_until
from tests.support.coordinator_client import coordinator_client
from tests.support.grpc_errors import expect_error
from tests.support.itemized_awaits import answer_item, park_items
from tpf.common.v1 import execution_status_pb2 as st

pytestmark = pytest.mark.e2e

RECORD_TTL_MS = 1_000


async def interaction_statuses(database: str, execution_id: str) -> list[str]:
    async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT status FROM interactions WHERE execution_id = %s ORDER BY item_index",
            (execution_id,),
        )
        return [row[0] for row in await cursor.fetchall()]


async def test_interactions_expire_after_the_await_timed_out(
    suite: Suite, start_service: Any, database: str
) -> None:
    await asyncio.to_thread(suite.coordinator.terminate)
    coordinator = await asyncio.to_thread(
        start_service,
        "tpf_coordinator",
        {**suite.coordinator_env, "TPF_INTERACTION_RECORD_TTL_MS": str(RECORD_TTL_MS)},
    )
    async with coordinator_client(coordinator.target) as client:
        deadline_ms = int(time.time() * 1000) + 1_500
        parked = await park_items(client, suite, 3, deadline_ms=deadline_ms)
        await answer_item(client, suite, parked, 1)

        async def failed() -> Any:
            status = (await get(client, suite, parked.execution_id)).status
            return status if status.status == st.EXECUTION_STATUS_FAILED else None

        status = await wait_until(failed, what="the sweeper to time out the await")
        assert status.error_code == "AWAIT_TIMEOUT"
        version = status.version

        async def expired() -> bool:
            statuses = await interaction_statuses(database, parked.execution_id)
            return statuses == ["EXPIRED"] * 3

        await wait_until(expired, what="the sweeper to expire the interactions")
        assert time.time() * 1000 >= deadline_ms + RECORD_TTL_MS
        for item in range(3):
            gone = await expect_error(
                answer_item(client, suite, parked, item),
                grpc.StatusCode.NOT_FOUND,
                "INTERACTION_RECORD_EXPIRED",
            )
            assert gone.metadata["interactionId"] == parked.interaction_ids[item]
        # Expiry ends records, not executions: the failed execution is as the timeout left it.
        assert (await get(client, suite, parked.execution_id)).status.version == version
