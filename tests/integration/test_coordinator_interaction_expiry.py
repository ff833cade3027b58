"""Interaction expiry on real Postgres with an injected clock (TPF_WIRE §5.3): past its deadline +
the record TTL an interaction leaves the pending list and a completion is NOT_FOUND at once,
and the sweeper marks interactions EXPIRED in bounded batches, after the await timeout has failed
any execution still waiting (AWAIT_TIMEOUT stays as it is)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from tpf_coordinator.domain.model import ExecutionStatus
from tpf_coordinator.interactions import CompletionRequest, Interactions
from tpf_coordinator.store.executions_postgres import PostgresExecutionStore
from tpf_coordinator.store.interactions_postgres import PostgresInteractionStore
from tpf_coordinator.store.leases_postgres import RowLeaseStore
from tpf_coordinator.store.protocol import NewAwait, NewInteraction, PendingFilter
from tpf_coordinator.store.sweeper_postgres import PostgresSweeperStore
from tpf_coordinator.store.work_postgres import PostgresWorkStore
from tpf_coordinator.sweeper import Sweeper
from tpf_envelope import encode
from tpf_errors import NotFound
from tpf_store import Pool, open_pool

TENANT = "expiry-tenant"
DEADLINE_MS = 1_000_000_000
TTL_MS = 5_000
SWEEP_LIMIT = 2
AWAITING = 5
STEP_ID = "ProcessAwaitDecisionService"

INSERT_WAITING_EXECUTION = """
INSERT INTO executions (
    tenant_id, execution_id, pipeline_id, contract_version, release_version, status, step_index,
    attempt, version, input_shape, result_shape, idempotency_key, input_fingerprint,
    next_due_at_ms, await_unit_id, created_at_ms, updated_at_ms)
VALUES (%s, %s, 'p', 'c', 'r', 'WAITING_EXTERNAL', 1, 0, 2, 'UNI', 'SINGLE', %s, 'f',
        9223372036854775807, %s, 0, 0)
"""


class Clock:
    """The coordinator's time, moved by the test."""

    def __init__(self, now_ms: int) -> None:
        self.now = now_ms

    def __call__(self) -> int:
        return self.now

    def now_ms(self) -> int:
        return self.now


@dataclass
class Parts:
    pool: Pool
    clock: Clock
    interactions: Interactions
    sweeper: Sweeper


@pytest.fixture
async def parts(database: str) -> AsyncIterator[Parts]:
    pool = await open_pool(database, max_size=4)
    clock = Clock(DEADLINE_MS - 60_000)
    interactions = Interactions(
        store=PostgresInteractionStore(pool),
        executions=PostgresExecutionStore(pool),
        now_ms=clock,
        resume_token_secret=None,
        allowed_prefixes=("org.pipelineframework.",),
        max_payload_bytes=1 << 20,
        record_ttl_ms=TTL_MS,
    )
    sweeper = Sweeper(
        store=PostgresSweeperStore(pool),
        leases=RowLeaseStore(pool, clock=clock),
        now_ms=clock,
        interval_ms=1_000,
        limit=SWEEP_LIMIT,
        max_lease_expiries=3,
        interaction_record_ttl_ms=TTL_MS,
    )
    try:
        yield Parts(pool, clock, interactions, sweeper)
    finally:
        await pool.close()


async def park(parts: Parts, n: int) -> str:
    """Execution `e-n` waiting on one interaction `i-n`, deadline DEADLINE_MS."""
    execution_id, unit_id = f"e-{n}", f"u-{n}"
    async with parts.pool.connection() as conn, conn.transaction():
        await conn.execute(INSERT_WAITING_EXECUTION, (TENANT, execution_id, f"k-{n}", unit_id))
        record = await PostgresExecutionStore(parts.pool).lock(conn, TENANT, execution_id)
        assert record is not None
        await PostgresWorkStore.insert_await(
            conn,
            record,
            NewAwait(
                unit_id=unit_id,
                step_id=STEP_ID,
                step_index=1,
                cardinality="ONE_TO_ONE",
                deadline_ms=DEADLINE_MS,
                interactions=(
                    NewInteraction(
                        interaction_id=f"i-{n}",
                        correlation_id=f"c-{n}",
                        idempotency_key=f"{execution_id}:{STEP_ID}",
                        causation_id="",
                        item_index=None,
                        output_type="java.util.Map",
                        request_payload={"n": n},
                        assignee=None,
                        group=None,
                        transport_type="interaction-api",
                        transport_metadata={},
                    ),
                ),
            ),
            now_ms=parts.clock.now,
        )
    return f"i-{n}"


def completion(interaction_id: str) -> CompletionRequest:
    return CompletionRequest(
        tenant_id=TENANT, response=encode({"ok": True}), actor="t", interaction_id=interaction_id
    )


async def pending_ids(parts: Parts) -> list[str]:
    listed = await parts.interactions.list_pending(TENANT, PendingFilter(), after=None, limit=100)
    return [i.interaction_id for i in listed]


async def interaction_statuses(parts: Parts) -> dict[str, str]:
    async with parts.pool.connection() as conn:
        cursor = await conn.execute("SELECT interaction_id, status FROM interactions")
        return {row[0]: row[1] for row in await cursor.fetchall()}


async def execution_statuses(parts: Parts) -> dict[str, str]:
    async with parts.pool.connection() as conn:
        cursor = await conn.execute("SELECT execution_id, status FROM executions")
        return {row[0]: row[1] for row in await cursor.fetchall()}


async def test_expired_interactions_are_gone_and_swept_in_bounded_batches(parts: Parts) -> None:
    ids = [await park(parts, n) for n in range(AWAITING)]
    answered = ids[0]
    assert not (await parts.interactions.complete(completion(answered))).duplicate
    assert await pending_ids(parts) == ids[1:]

    # One millisecond before the TTL nothing is gone: the await timeout is the sweeper's job.
    parts.clock.now = DEADLINE_MS + TTL_MS - 1
    assert await pending_ids(parts) == ids[1:]
    assert (await parts.interactions.complete(completion(answered))).duplicate

    # At deadline + TTL the records are gone, whether the sweeper has been there yet or not.
    parts.clock.now = DEADLINE_MS + TTL_MS
    assert await pending_ids(parts) == []
    for interaction_id in (ids[1], answered):
        with pytest.raises(NotFound) as gone:
            await parts.interactions.complete(completion(interaction_id))
        assert gone.value.reason == "INTERACTION_RECORD_EXPIRED"
        assert gone.value.metadata["expiredAtEpochMs"] == str(DEADLINE_MS + TTL_MS)

    passes = []
    while True:
        report = await parts.sweeper.sweep_once()
        assert report.led
        assert report.timed_out <= SWEEP_LIMIT and report.expired_interactions <= SWEEP_LIMIT
        if not (report.timed_out or report.expired_interactions):
            break
        passes.append((report.timed_out, report.expired_interactions))
    assert sum(timed_out for timed_out, _ in passes) == AWAITING - 1
    assert sum(expired for _, expired in passes) == AWAITING
    assert len(passes) == 3

    assert set((await interaction_statuses(parts)).values()) == {"EXPIRED"}
    executions = await execution_statuses(parts)
    # Every execution still waiting was failed by the await timeout, none was stranded.
    assert executions == {
        "e-0": ExecutionStatus.QUEUED.value,
        **{f"e-{n}": ExecutionStatus.FAILED.value for n in range(1, AWAITING)},
    }
    with pytest.raises(NotFound):
        await parts.interactions.complete(completion(ids[2]))


async def test_the_sweeper_leaves_interactions_alone_before_their_ttl(parts: Parts) -> None:
    ids = [await park(parts, n) for n in range(3)]
    parts.clock.now = DEADLINE_MS + 1
    timed_out = 0
    while (report := await parts.sweeper.sweep_once()).timed_out:
        timed_out += report.timed_out
        assert report.expired_interactions == 0
    assert timed_out == 3
    assert await interaction_statuses(parts) == dict.fromkeys(ids, "TIMED_OUT")
    assert await pending_ids(parts) == []
