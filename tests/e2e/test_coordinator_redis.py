"""A coordinator with TPF_REDIS_URL: leases live in Redis, and losing Redis loses nothing.

DESIGN §4: a claim writes the row lease and a Redis key `tpf:lease:{tenant}:{execution}` =
`{owner}:{version}`; heartbeats extend only the key; the sweeper requeues a RUNNING row only
when its row lease has passed *and* its key is gone; with Redis down every lease call falls
back to the row, and Redis is used again once it answers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from redis.asyncio import Redis

from tests.e2e.conftest import Suite
from tests.harness.wait import wait_until
from tests.support.coordinator_client import CoordinatorClient, coordinator_client
from tests.support.fake_dispatcher import step_completed
from tests.support.release_artifacts import PIPELINE_ID
from tests.support.restaurant import order_envelope
from tpf.common.v1 import execution_status_pb2 as st
from tpf.coordinator.v1 import execution_pb2
from tpf.coordinator.v1 import execution_service_pb2 as epb
from tpf.coordinator.v1 import work_service_pb2 as wpb

pytestmark = pytest.mark.e2e


@dataclass
class RedisSuite:
    suite: Suite
    coordinator: Any
    redis: Redis
    database: str

    def key(self, execution_id: str) -> str:
        return f"tpf:lease:{self.suite.tenant}:{execution_id}"

    async def row_lease_ms(self, execution_id: str) -> int:
        async with await psycopg.AsyncConnection.connect(self.database) as conn:
            cursor = await conn.execute(
                "SELECT lease_expires_at_ms FROM executions WHERE execution_id = %s",
                (execution_id,),
            )
            row = await cursor.fetchone()
        assert row is not None
        return int(row[0])


@pytest.fixture
async def redis_suite(
    suite: Suite, start_service: Any, redis_server: Any, database: str
) -> AsyncIterator[RedisSuite]:
    """The suite's coordinator replaced by one that keeps leases in the test Redis.

    The suite's own coordinator (row leases only) is stopped: its sweeper would requeue claims
    whose Redis lease is alive, a mixed configuration no deployment runs.
    """
    suite.coordinator.terminate()
    coordinator = start_service(
        "tpf_coordinator", {**suite.coordinator_env, "TPF_REDIS_URL": redis_server.url}
    )
    redis = Redis.from_url(redis_server.url, decode_responses=True)
    try:
        yield RedisSuite(suite, coordinator, redis, database)
    finally:
        await redis.aclose()
        await asyncio.to_thread(redis_server.ensure_running)


async def submit(client: CoordinatorClient, rs: RedisSuite) -> str:
    response = await client.executions.SubmitExecution(
        epb.SubmitExecutionRequest(
            tenant_id=rs.suite.tenant,
            pipeline_id=PIPELINE_ID,
            input_shape=execution_pb2.INPUT_SHAPE_UNI,
            input_payload=order_envelope(),
        )
    )
    return response.execution_id


async def claim_one(client: CoordinatorClient, owner: str, lease_ms: int) -> wpb.WorkItem:
    request = wpb.ClaimWorkRequest(dispatcher_id=owner, max_items=1)
    request.wait.FromMilliseconds(2000)
    request.lease_duration.FromMilliseconds(lease_ms)
    [item] = (await client.work.ClaimWork(request)).work_items
    return item


async def renew(
    client: CoordinatorClient, owner: str, item: wpb.WorkItem, lease_ms: int
) -> wpb.LeaseRenewalResult:
    request = wpb.RenewLeasesRequest(
        dispatcher_id=owner,
        leases=[
            wpb.LeaseRenewal(
                execution_id=item.execution_id,
                tenant_id=item.identity.tenant_id,
                fencing_token=item.fencing_token,
            )
        ],
    )
    request.lease_duration.FromMilliseconds(lease_ms)
    [result] = (await client.work.RenewLeases(request)).results
    return result


async def complete(
    client: CoordinatorClient, owner: str, outcome: wpb.WorkOutcome
) -> wpb.WorkOutcomeResult:
    request = wpb.CompleteWorkRequest(dispatcher_id=owner, outcomes=[outcome])
    [result] = (await client.work.CompleteWork(request)).results
    return result


async def status(client: CoordinatorClient, rs: RedisSuite, execution_id: str) -> Any:
    response = await client.executions.GetExecution(
        epb.GetExecutionRequest(tenant_id=rs.suite.tenant, execution_id=execution_id)
    )
    return response.execution


async def test_claim_records_the_lease_in_redis_and_renewals_extend_only_the_key(
    redis_suite: RedisSuite,
) -> None:
    rs = redis_suite
    async with coordinator_client(rs.coordinator.target) as client:
        eid = await submit(client, rs)
        item = await claim_one(client, "d1", lease_ms=5_000)
        assert item.execution_id == eid
        assert await rs.redis.get(rs.key(eid)) == f"d1:{item.fencing_token}"
        assert 0 < await rs.redis.pttl(rs.key(eid)) <= 5_000
        row_lease = await rs.row_lease_ms(eid)

        renewed = await renew(client, "d1", item, lease_ms=60_000)
        assert renewed.renewed
        assert renewed.lease_expires_at.ToMilliseconds() > time.time() * 1000 + 50_000
        assert await rs.redis.pttl(rs.key(eid)) > 50_000
        # A heartbeat is not a transition: the row (and its version) stay as the claim wrote them.
        assert await rs.row_lease_ms(eid) == row_lease
        assert (await status(client, rs, eid)).version == item.fencing_token

        # Another owner cannot renew it, nor an old token.
        assert not (await renew(client, "intruder", item, lease_ms=60_000)).renewed
        stale = wpb.WorkItem()
        stale.CopyFrom(item)
        stale.fencing_token = item.fencing_token - 1
        assert not (await renew(client, "d1", stale, lease_ms=60_000)).renewed

        result = await complete(client, "d1", step_completed(item))
        assert result.accepted and result.status == st.EXECUTION_STATUS_QUEUED
        # The commit ends the lease: the key is released.
        assert await rs.redis.exists(rs.key(eid)) == 0


async def test_sweeper_keeps_a_claim_whose_redis_lease_is_alive_after_its_row_lease(
    redis_suite: RedisSuite,
) -> None:
    rs = redis_suite
    async with coordinator_client(rs.coordinator.target) as client:
        await submit(client, rs)
        await submit(client, rs)
        busy = await claim_one(client, "busy", lease_ms=1_000)
        gone = await claim_one(client, "gone", lease_ms=1_000)
        assert (await renew(client, "busy", busy, lease_ms=60_000)).renewed

        async def gone_requeued() -> bool:
            execution = await status(client, rs, gone.execution_id)
            return bool(execution.status == st.EXECUTION_STATUS_QUEUED)

        # `gone` stopped renewing: once both row leases passed, the sweeper requeues it. Its row
        # lease ends no earlier than busy's, so the pass that requeued it also saw `busy`.
        await wait_until(gone_requeued, timeout_s=20, what="abandoned claim requeued")
        assert await rs.row_lease_ms(busy.execution_id) < time.time() * 1000
        kept = await status(client, rs, busy.execution_id)
        assert kept.status == st.EXECUTION_STATUS_RUNNING
        assert kept.version == busy.fencing_token
        assert await rs.redis.get(rs.key(busy.execution_id)) == f"busy:{busy.fencing_token}"

        result = await complete(client, "busy", step_completed(busy))
        assert result.accepted
        history = await client.executions.ListExecutionHistory(
            epb.ListExecutionHistoryRequest(
                tenant_id=rs.suite.tenant, execution_id=busy.execution_id
            )
        )
        events = [execution_pb2.HistoryEvent.Name(h.event) for h in history.history_entries]
        assert "HISTORY_EVENT_LEASE_EXPIRED" not in events


async def test_redis_outage_falls_back_to_row_leases_and_recovers(
    redis_suite: RedisSuite, redis_server: Any
) -> None:
    redis_server.require_control()
    rs = redis_suite
    async with coordinator_client(rs.coordinator.target) as client:
        ids = [await submit(client, rs) for _ in range(3)]
        await asyncio.to_thread(redis_server.kill)

        # Claims, renewals and completions keep working, on row leases.
        item = await claim_one(client, "d1", lease_ms=2_000)
        assert item.execution_id in ids
        renewed = await renew(client, "d1", item, lease_ms=30_000)
        assert renewed.renewed
        assert await rs.row_lease_ms(item.execution_id) > time.time() * 1000 + 20_000
        result = await complete(client, "d1", step_completed(item))
        assert result.accepted and result.status == st.EXECUTION_STATUS_QUEUED

        # An abandoned claim is requeued on its row lease alone.
        abandoned = await claim_one(client, "gone", lease_ms=1_000)

        async def requeued() -> bool:
            execution = await status(client, rs, abandoned.execution_id)
            return bool(execution.status == st.EXECUTION_STATUS_QUEUED)

        await wait_until(requeued, timeout_s=20, what="requeue on the row lease alone")

        held = await claim_one(client, "d2", lease_ms=30_000)
        await asyncio.to_thread(redis_server.restart)

        # Once Redis answers again (the store re-probes it every few seconds), heartbeats
        # re-seed the leases it lost with its memory.
        async def reseeded() -> bool:
            assert (await renew(client, "d2", held, lease_ms=30_000)).renewed
            return bool(await rs.redis.get(rs.key(held.execution_id)) == f"d2:{held.fencing_token}")

        await wait_until(reseeded, timeout_s=30, what="lease re-seeded in Redis")
        done = await complete(client, "d2", step_completed(held))
        assert done.accepted

        # And new claims are recorded in Redis again.
        fresh = await claim_one(client, "d3", lease_ms=30_000)
        assert await rs.redis.get(rs.key(fresh.execution_id)) == f"d3:{fresh.fencing_token}"
        assert (await complete(client, "d3", step_completed(fresh))).accepted
    log = rs.coordinator.log_text()
    assert "falling back to row leases" in log
    assert "leaving the row-lease fallback" in log
    assert rs.coordinator.is_running
