"""The sweeper: recovers abandoned claims, times out overdue awaits, expires old interactions.

One leader at a time across coordinator replicas (a transaction-scoped Postgres advisory lock);
each pass handles bounded batches. A RUNNING row is abandoned when its row lease has passed and
the lease store no longer holds it (Redis renewals extend only Redis; with no Redis, the row is
the lease). Requeueing is not a retry (TPF); N consecutive expiries on one step fail the
execution with a dead letter (the poison-pill guard, DESIGN §3). An interaction whose record
TTL has passed (deadline + 1 day by default, TPF_WIRE §5.3) becomes EXPIRED; awaits time out at
their deadline, long before, so expiry never decides an execution's fate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tpf_coordinator.domain.failures import dlq_log_line
from tpf_coordinator.domain.interactions import DEFAULT_RECORD_TTL_MS
from tpf_coordinator.domain.model import Transition
from tpf_coordinator.domain.transitions import AwaitTimedOut, LeaseExpired, apply
from tpf_coordinator.metrics import CoordinatorMetrics
from tpf_coordinator.store.protocol import SweeperStore
from tpf_coordinator.store.records import ExecutionRecord
from tpf_lease import LeaseKey, LeaseStore, LeaseStoreUnavailable

log = logging.getLogger(__name__)
dlq_log = logging.getLogger("tpf_coordinator.dlq")

ACTOR = "sweeper"


@dataclass
class SweepReport:
    led: bool = False
    requeued: int = 0
    failed: int = 0
    timed_out: int = 0
    expired_interactions: int = 0


class Sweeper:
    def __init__(
        self,
        *,
        store: SweeperStore,
        leases: LeaseStore,
        now_ms: Callable[[], int],
        interval_ms: int,
        limit: int,
        max_lease_expiries: int,
        forget_request_ids: Callable[[], Awaitable[int]] | None = None,
        interaction_record_ttl_ms: int = DEFAULT_RECORD_TTL_MS,
        metrics: CoordinatorMetrics | None = None,
    ) -> None:
        self._store = store
        self._leases = leases
        self._now_ms = now_ms
        self._interval_s = interval_ms / 1000
        self._limit = limit
        self._max_expiries = max_lease_expiries
        self._forget_request_ids = forget_request_ids
        self._record_ttl_ms = interaction_record_ttl_ms
        self._metrics = metrics if metrics is not None else CoordinatorMetrics()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tpf-sweeper")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                report = await self.sweep_once()
                if (
                    report.requeued
                    or report.failed
                    or report.timed_out
                    or report.expired_interactions
                ):
                    log.info(
                        "sweep: %d requeued, %d failed, %d awaits timed out, "
                        "%d interactions expired",
                        report.requeued,
                        report.failed,
                        report.timed_out,
                        report.expired_interactions,
                    )
            except Exception:  # the sweeper must outlive a failed pass (e.g. Postgres restart)
                log.exception("sweep failed; retrying next interval")
            await asyncio.sleep(self._interval_s)

    async def sweep_once(self) -> SweepReport:
        report = SweepReport()
        lines: list[str] = []
        written: list[Transition] = []
        store = self._store
        async with store.connection() as conn, conn.transaction():
            if not await store.try_lead(conn):
                return report
            report.led = True
            now_ms = self._now_ms()
            candidates = await store.expired_leases(conn, now_ms=now_ms, limit=self._limit)
            alive = await self._alive(candidates)
            for record in candidates:
                if LeaseKey(record.tenant_id, record.execution_id) in alive:
                    continue
                transition = apply(
                    record.state,
                    LeaseExpired(now_ms=now_ms, max_consecutive=self._max_expiries),
                    actor=ACTOR,
                )
                await store.write(conn, record, transition)
                written.append(transition)
                if transition.dead_letter_reason is not None:
                    report.failed += 1
                    lines.append(_dlq_line(record.tenant_id, record.execution_id, transition))
                else:
                    report.requeued += 1
            for overdue in await store.overdue_interactions(conn, now_ms=now_ms, limit=self._limit):
                waiting = await store.time_out_interaction(conn, overdue, now_ms=now_ms)
                if waiting is None:
                    continue
                transition = apply(
                    waiting.state,
                    AwaitTimedOut(now_ms=now_ms, interaction_id=overdue.interaction_id),
                    actor=ACTOR,
                )
                await store.write(conn, waiting, transition)
                written.append(transition)
                report.timed_out += 1
            report.expired_interactions = await store.expire_interactions(
                conn,
                expired_before_ms=now_ms - self._record_ttl_ms,
                now_ms=now_ms,
                limit=self._limit,
            )
        self._metrics.committed(written)
        for line in lines:
            dlq_log.error(line)
        if self._forget_request_ids is not None:
            await self._forget_request_ids()
        return report

    async def _alive(self, candidates: list[ExecutionRecord]) -> set[LeaseKey]:
        keys = [LeaseKey(r.tenant_id, r.execution_id) for r in candidates]
        if not keys:
            return set()
        try:
            return await self._leases.alive(keys)
        except LeaseStoreUnavailable:
            # Without the lease store only the row lease counts (slower, never unsafe).
            return set()


def _dlq_line(tenant_id: str, execution_id: str, transition: Transition) -> str:
    after = transition.after
    assert transition.dead_letter_reason is not None
    return dlq_log_line(
        tenant_id=tenant_id,
        execution_id=execution_id,
        transition_key=f"{execution_id}:{after.step_index}:{after.attempt}",
        terminal_reason=transition.dead_letter_reason.value,
        error_message=after.error_message or "",
        retryable=False,
        retries_observed=after.attempt,
        # The sweeper does not load the release; the line says so rather than guessing.
        transport=None,
        platform=None,
    )
