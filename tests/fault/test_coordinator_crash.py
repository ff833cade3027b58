"""The crash campaign: kill -9 the coordinator, restart Redis and Postgres, under load.

500 executions of the 4-step restaurant release are submitted at once and processed by two fake
dispatchers. While they run, at random points of progress, the coordinator is killed with
SIGKILL and restarted 2 or 3 times, Redis is restarted once (it comes back empty) and Postgres is
killed and restarted once (when the test owns the server). The dispatchers ride it out by
retrying. Afterwards every execution must have SUCCEEDED, and `execution_history` must show
each version recorded once and each step's outcome committed exactly once.

Scaled to run in well under two minutes; the schedule is random but logged with its seed
(set TPF_CRASH_SEED to replay one, TPF_CRASH_FAULTS=postgres,redis,... to choose the faults).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

# The e2e fixtures this campaign runs on (tests/fault/conftest.py shares the registry ones).
from tests.e2e.conftest import Suite, suite
from tests.harness.postgres import PostgresServer
from tests.harness.redis import RedisServer
from tests.harness.wait import wait_until
from tests.support.coordinator_client import coordinator_client
from tests.support.fake_dispatcher import FakeDispatcher, history_report, submit_all
from tests.support.release_artifacts import PIPELINE_ID
from tests.support.restaurant import order_envelope
from tpf.coordinator.v1 import execution_pb2
from tpf.coordinator.v1 import execution_service_pb2 as epb
from tpf.coordinator.v1 import work_service_pb2 as wpb

pytestmark = pytest.mark.e2e
__all__ = ["suite"]

log = logging.getLogger(__name__)

EXECUTIONS = 500
STEPS = 4  # the restaurant release
LEASE_MS = 3_000
# Faults fire when this share of all step commits is done, so they hit a running workload.
FIRST_FAULT_AT = 0.08
LAST_FAULT_AT = 0.75


def submission(tenant: str, n: int) -> epb.SubmitExecutionRequest:
    return epb.SubmitExecutionRequest(
        tenant_id=tenant,
        pipeline_id=PIPELINE_ID,
        input_shape=execution_pb2.INPUT_SHAPE_UNI,
        input_payload=order_envelope(),
        idempotency_key=f"crash-order-{n}",
    )


async def count_succeeded(database: str) -> int:
    async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
        cursor = await conn.execute("SELECT count(*) FROM executions WHERE status = 'SUCCEEDED'")
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def test_crash_campaign_loses_nothing_and_commits_every_step_once(
    suite: Suite,
    start_service: Any,
    database: str,
    postgres_server: PostgresServer,
    redis_server: RedisServer,
) -> None:
    seed = int(os.environ.get("TPF_CRASH_SEED", random.randrange(1 << 32)))
    rng = random.Random(seed)
    faults = ["coordinator"] * rng.choice((2, 3))
    if redis_server.can_control:
        faults.append("redis")
    if postgres_server.can_control:
        faults.append("postgres")
    rng.shuffle(faults)
    if os.environ.get("TPF_CRASH_FAULTS"):  # e.g. "postgres,coordinator": replay one schedule
        faults = os.environ["TPF_CRASH_FAULTS"].split(",")
    total_commits = EXECUTIONS * STEPS
    points = sorted(int(total_commits * rng.uniform(FIRST_FAULT_AT, LAST_FAULT_AT)) for _ in faults)
    print(f"crash campaign seed={seed}: {list(zip(faults, points, strict=True))}")

    # The suite's row-lease coordinator makes way for one that keeps leases in Redis.
    suite.coordinator.terminate()
    coordinator = start_service(
        "tpf_coordinator",
        {
            **suite.coordinator_env,
            "TPF_REDIS_URL": redis_server.url,
            # The campaign checks durability and exactly-once commits; one execution caught in
            # several crashes at the same step must not trip the poison-pill guard.
            "TPF_MAX_LEASE_EXPIRIES": "50",
        },
    )

    async def stall_a_few(item: wpb.WorkItem) -> wpb.WorkOutcome | None:
        # One step in fifty runs past a lease renewal interval, so renewals are in the mix.
        if rng.random() < 0.02:
            await asyncio.sleep(rng.uniform(1.0, 2.5))
        return None

    dispatchers = [
        FakeDispatcher(
            [coordinator.target],
            steps=STEPS,
            dispatcher_id=f"crash-d{n}",
            batch=50,
            max_in_flight=100,
            lease_ms=LEASE_MS,
            step=stall_a_few,
        )
        for n in (1, 2)
    ]

    def commits() -> int:
        for dispatcher in dispatchers:
            dispatcher.raise_if_crashed()
        return sum(d.stats.accepted for d in dispatchers)

    def reached(point: int) -> Callable[[], bool]:
        return lambda: commits() >= point

    done_at_fault: list[tuple[str, int]] = []
    started = time.monotonic()
    async with coordinator_client(coordinator.target) as client, dispatchers[0], dispatchers[1]:
        submitted = await submit_all(
            client.executions, [submission(suite.tenant, n) for n in range(EXECUTIONS)]
        )
        assert len({s.execution_id for s in submitted}) == EXECUTIONS
        for fault, point in zip(faults, points, strict=True):
            await wait_until(
                reached(point),
                timeout_s=60,
                what=f"{point} step commits before the {fault} fault",
            )
            done_at_fault.append((fault, commits()))
            if fault == "coordinator":
                await asyncio.to_thread(coordinator.kill)
                await asyncio.to_thread(coordinator.restart)
            elif fault == "redis":
                await asyncio.to_thread(redis_server.restart)
            else:
                await asyncio.to_thread(postgres_server.kill)
                await asyncio.to_thread(postgres_server.restart)

        async def all_succeeded() -> bool:
            for dispatcher in dispatchers:
                dispatcher.raise_if_crashed()
            try:
                return await count_succeeded(database) == EXECUTIONS
            except psycopg.OperationalError:
                return False

        await wait_until(all_succeeded, timeout_s=60, what="every execution SUCCEEDED")
    elapsed = time.monotonic() - started

    report = await history_report(database, steps=STEPS)
    stats = [d.stats for d in dispatchers]
    summary = {
        "seed": seed,
        "faults": done_at_fault,
        "seconds": round(elapsed, 1),
        "events": dict(report.events),
        "rejected": sum((s.rejected for s in stats), start=Counter[str]()),
        "rpc_errors": sum((s.rpc_errors for s in stats), start=Counter[str]()),
        "renewed": sum(s.renewed for s in stats),
        "slowest": [s.slowest_call_s for s in stats],
    }
    print(f"crash campaign: {summary}")
    # Every fault hit a running workload.
    assert all(done < total_commits for _, done in done_at_fault), summary
    assert report.statuses == {"SUCCEEDED": EXECUTIONS}, summary
    assert not report.duplicate_versions, report.duplicate_versions
    assert not report.version_gaps, report.version_gaps
    assert not report.step_commit_anomalies, report.step_commit_anomalies
    assert not report.incomplete, report.incomplete
    assert report.events["STEP_COMPLETED"] == EXECUTIONS * (STEPS - 1)
    assert report.events["SUCCEEDED"] == EXECUTIONS
    assert coordinator.is_running
