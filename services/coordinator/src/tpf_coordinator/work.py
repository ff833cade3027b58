"""The dispatcher work protocol: claim (long-poll, batch), renew leases, complete (batch).

Fencing: a work item's token is the version its claim wrote. Every completion is applied only if
the row still holds that version (and is RUNNING); otherwise the item is rejected with
STALE_FENCING_TOKEN and nothing changes. All completions of one CompleteWork call commit in one
transaction (a group commit), each item in its own savepoint so one bad item cannot sink the rest.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial

from tpf_coordinator.domain.failures import dlq_log_line
from tpf_coordinator.domain.model import ExecutionStatus, Transition
from tpf_coordinator.domain.transitions import (
    AwaitRequested,
    PipelineCompleted,
    StepCompleted,
    StepFailed,
    apply,
)
from tpf_coordinator.metrics import CoordinatorMetrics
from tpf_coordinator.notifications import Notifications
from tpf_coordinator.payloads import Payloads
from tpf_coordinator.release_catalog import ReleaseCatalog, ReleaseInfo
from tpf_coordinator.store.protocol import ClaimFilter, StaleVersion, TransitionWrite, WorkStore
from tpf_coordinator.store.records import ExecutionRecord, encode_result
from tpf_coordinator.tracing import completion_span, trace_claims
from tpf_coordinator.work_outcomes import (
    AwaitAsked,
    Claimed,
    Completion,
    CompletionResult,
    PipelineDone,
    StepDone,
    failure_of,
    next_input,
    stored_texts,
    terminal_items,
)
from tpf_envelope import Envelope
from tpf_errors import Aborted, InvalidArgument, NotFound, TpfError, Unavailable
from tpf_lease import Lease, LeaseHolder, LeaseKey, LeaseStore, LeaseStoreUnavailable, RenewResult

log = logging.getLogger(__name__)
dlq_log = logging.getLogger("tpf_coordinator.dlq")

# Runnable rows that become due (retry backoff) are not notified; long polls re-check this often.
_RECHECK_S = 0.5
_MAX_DRAINED_MARKS = 1000


@dataclass
class _ClaimBatch:
    """What a claimed batch turned into: work items, rows past their last step, an error."""

    claimed: list[Claimed] = field(default_factory=list)
    ended: list[ExecutionRecord] = field(default_factory=list)
    failed: list[Exception] = field(default_factory=list)


def _stale(completion: Completion, record: ExecutionRecord | None) -> TpfError:
    if record is None:
        return NotFound(
            "EXECUTION_NOT_FOUND",
            f"Execution {completion.execution_id} does not exist for this tenant",
            executionId=completion.execution_id,
        )
    return Aborted(
        "STALE_FENCING_TOKEN",
        f"Execution {completion.execution_id} moved on (version {record.state.version}, "
        f"{record.state.status.value}); drop this work item",
        executionId=completion.execution_id,
        expectedVersion=completion.fencing_token,
        currentVersion=record.state.version,
    )


class WorkCoordinator:
    def __init__(
        self,
        *,
        store: WorkStore,
        catalog: ReleaseCatalog,
        leases: LeaseStore,
        notifications: Notifications,
        now_ms: Callable[[], int],
        default_lease_ms: int,
        max_lease_ms: int,
        max_wait_ms: int,
        dlq_log_enabled: bool = True,
        payloads: Payloads,
        rand: Callable[[], float] = random.random,
        metrics: CoordinatorMetrics | None = None,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._leases = leases
        self._notifications = notifications
        self._now_ms = now_ms
        self._default_lease_ms = default_lease_ms
        self._max_lease_ms = max_lease_ms
        self._max_wait_ms = max_wait_ms
        self._dlq_log_enabled = dlq_log_enabled
        self._rand = rand
        self._payloads = payloads
        self._metrics = metrics if metrics is not None else CoordinatorMetrics()
        # Filters whose last claim left nothing runnable: (work generation, when).
        self._drained: dict[ClaimFilter, tuple[int, float]] = {}

    def lease_ms(self, requested_ms: int) -> int:
        return (
            self._default_lease_ms if requested_ms <= 0 else min(requested_ms, self._max_lease_ms)
        )

    async def claim(
        self,
        *,
        dispatcher_id: str,
        max_items: int,
        wait_ms: int,
        lease_ms: int,
        filters: ClaimFilter,
    ) -> list[Claimed]:
        deadline = time.monotonic() + min(wait_ms, self._max_wait_ms) / 1000
        while True:
            generation = self._notifications.work_generation
            if wait_ms > 0 and self._known_empty(filters, generation):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                await self._notifications.wait_for_work(min(remaining, _RECHECK_S))
                continue
            batch = _ClaimBatch()
            claim_started_ns = time.time_ns()
            started = time.perf_counter()
            records = await self._store.claim(
                owner=dispatcher_id,
                limit=max_items,
                lease_ms=lease_ms,
                now_ms=self._now_ms(),
                filters=filters,
                before_commit=partial(self._work_items, batch),
            )
            self._metrics.claimed(len(records), time.perf_counter() - started)
            self._note_claimed(filters, generation, full=len(records) >= max_items)
            if records:
                await self._record_leases(records)
                if batch.failed:
                    raise batch.failed[0]
                if batch.ended:
                    await self._succeed_after_final_await(batch.ended)
                if batch.claimed:
                    trace_claims(batch.claimed, claim_started_ns)
                    return batch.claimed
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            await self._notifications.wait_for_work(min(remaining, _RECHECK_S))

    def _known_empty(self, filters: ClaimFilter, generation: int | None) -> bool:
        """Whether a claim with these filters found the queue drained since the last work
        notification, less than a recheck ago: then a claim query would find nothing (a
        dispatcher asks again right after every answer; on a quiet system each such query
        was pure cost, and it delayed the completion the dispatcher was about to send).

        Rows that become due without a notification (retry backoff) are found by the
        recheck, as before: the mark lasts `_RECHECK_S`."""
        mark = self._drained.get(filters)
        return (
            mark is not None
            and generation is not None
            and mark[0] == generation
            and time.monotonic() - mark[1] < _RECHECK_S
        )

    def _note_claimed(self, filters: ClaimFilter, generation: int | None, *, full: bool) -> None:
        if full or generation is None:
            self._drained.pop(filters, None)
            return
        if len(self._drained) >= _MAX_DRAINED_MARKS:
            self._drained.clear()  # many distinct filters: forget rather than grow
        self._drained[filters] = (generation, time.monotonic())

    async def _work_items(self, batch: _ClaimBatch, records: list[ExecutionRecord]) -> None:
        """Build the work items of a claimed batch, inside the claim's transaction.

        When the registry or the payload store cannot answer (Unavailable), this raises and the
        claim rolls back. Committed, its rows would sit RUNNING under a lease no dispatcher
        received until the sweeper requeued them, each time counting toward the poison-pill
        guard (and a client's transparent retry of the UNAVAILABLE call would answer "no
        work"). Other errors keep the claim, as before: its lease runs out and the poison-pill
        guard ends a row that cannot be served.
        """
        for record in records:
            try:
                item = await self._claimed(record)
            except Unavailable:
                raise
            except Exception as error:
                batch.failed.append(error)
                return
            if item is None:
                batch.ended.append(record)
            else:
                batch.claimed.append(item)

    async def _record_leases(self, records: Sequence[ExecutionRecord]) -> None:
        leases = [
            Lease(
                LeaseKey(r.tenant_id, r.execution_id),
                r.state.lease_owner,
                r.state.version,
                r.state.lease_expires_at_ms,
            )
            for r in records
        ]
        try:
            await self._leases.acquire(leases)
        except LeaseStoreUnavailable:
            # The row already holds the lease; Redis only speeds up recovery (DESIGN §4).
            log.debug("lease store unavailable at claim; row leases only")

    async def _claimed(self, record: ExecutionRecord) -> Claimed | None:
        """The work item of a claimed row; None when no step is left to run (see below)."""
        record = await self._payloads.hydrate(record)
        release = await self._catalog.get(
            record.tenant_id, record.pipeline_id, record.release_version
        )
        step = release.step(record.state.step_index)
        if step is None and record.state.step_index == len(release.steps):
            return None
        if step is None:
            raise RuntimeError(
                f"execution {record.execution_id} is at step {record.state.step_index}, "
                f"beyond release {release.release_version}'s {len(release.steps)} steps"
            )
        stop_before = -1 if release.segment_dispatch else record.state.step_index + 1
        return Claimed(record, release, step, stop_before)

    async def _succeed_after_final_await(self, records: Sequence[ExecutionRecord]) -> None:
        """An await that is the pipeline's last step: its response is the result (an itemized
        await's responses are the terminal items, in item order).

        Completing the interaction queues the execution after the await, where no step is left;
        the claim that picks it up finishes it here instead of handing out an empty work item.
        """
        written: list[Transition] = []
        async with self._store.connection() as conn, conn.transaction():
            locked = await self._store.lock_many(
                conn, [(r.tenant_id, r.execution_id) for r in records]
            )
            for record in records:
                current = locked.get((record.tenant_id, record.execution_id))
                if current is None or current.state.version != record.state.version:
                    continue
                current = await self._payloads.hydrate(current)
                transition = apply(
                    current.state, PipelineCompleted(now_ms=self._now_ms()), actor="coordinator"
                )
                outputs = terminal_items(current.payload) if current.payload is not None else ()
                await self._store.write(
                    conn,
                    current,
                    transition,
                    result=encode_result(outputs),
                    payloads=self._payloads,
                )
                written.append(transition)
        self._metrics.committed(written)

    async def renew(
        self, *, dispatcher_id: str, leases: Sequence[tuple[str, str, int]], lease_ms: int
    ) -> list[RenewResult]:
        expires_at = self._now_ms() + lease_ms
        results = await self._leases.renew(
            [
                Lease(LeaseKey(tenant, execution), dispatcher_id, token, expires_at)
                for tenant, execution, token in leases
            ]
        )
        # Every refusal answers STALE_FENCING_TOKEN: the caller no longer holds the claim.
        refused = sum(1 for result in results if not result.renewed)
        if refused:
            self._metrics.fencing_rejections.labels("renew").inc(refused)
        return results

    async def complete(
        self, *, dispatcher_id: str, completions: Sequence[Completion]
    ) -> list[CompletionResult]:
        results: list[CompletionResult] = []
        payloads = await self._payloads.stored_ahead(stored_texts(completions))
        async with self._store.connection() as conn, conn.transaction():
            locked = await self._store.lock_many(
                conn, [(c.tenant_id, c.execution_id) for c in completions]
            )
            batch: list[TransitionWrite] = []
            for completion in completions:
                result = CompletionResult(completion.tenant_id, completion.execution_id, False)
                results.append(result)
                record = locked.get((completion.tenant_id, completion.execution_id))
                if (
                    record is None
                    or record.state.version != completion.fencing_token
                    or record.state.status is not ExecutionStatus.RUNNING
                ):
                    result.error = _stale(completion, record)
                    continue
                try:
                    with completion_span(record, completion.outcome):
                        write = await self._plan(
                            dispatcher_id, record, completion, result, payloads
                        )
                        if isinstance(completion.outcome, AwaitAsked):
                            # An await writes more than the row: in a savepoint of its own, so
                            # that a failure undoes this item alone.
                            async with conn.transaction():
                                await self._store.write_many(conn, [write])
                                await self._store.insert_await(
                                    conn,
                                    record,
                                    completion.outcome.new_await,
                                    now_ms=write.transition.after.updated_at_ms,
                                )
                        else:
                            batch.append(write)
                except TpfError as error:
                    result.error = error
                    continue
                except StaleVersion:
                    result.error = _stale(completion, record)
                    continue
                assert result.record is not None
                locked[(completion.tenant_id, completion.execution_id)] = result.record
                result.accepted = True
            # The rows are locked and their versions checked above, so the batch cannot meet a
            # stale row; if it did, StaleVersion rolls the whole call back.
            await self._store.write_many(conn, batch)
        self._count_completions(results)
        for result in results:
            for line in result.log_lines:
                dlq_log.error(line)
        tokens = {(c.tenant_id, c.execution_id): c.fencing_token for c in completions}
        released = [
            LeaseHolder(
                LeaseKey(r.tenant_id, r.execution_id),
                dispatcher_id,
                tokens[(r.tenant_id, r.execution_id)],
            )
            for r in results
            if r.accepted and r.next_work is None
        ]
        if released:
            try:
                await self._leases.release(released)
            except LeaseStoreUnavailable:
                log.debug("lease store unavailable at release; leases expire on their own")
        for result in results:
            if result.next_work is not None:
                await self._record_leases([result.next_work.record])
        return results

    def _count_completions(self, results: Sequence[CompletionResult]) -> None:
        """After the commit: what the accepted items wrote, and the stale ones refused."""
        self._metrics.committed(
            (r.transition for r in results if r.accepted and r.transition is not None),
            reported=True,
        )
        stale = sum(
            1 for r in results if r.error is not None and r.error.reason == "STALE_FENCING_TOKEN"
        )
        if stale:
            self._metrics.fencing_rejections.labels("complete").inc(stale)

    async def _plan(
        self,
        dispatcher_id: str,
        record: ExecutionRecord,
        completion: Completion,
        result: CompletionResult,
        payloads: Payloads,
    ) -> TransitionWrite:
        """The write of one completion (nothing is written here); fills `result` with the
        transition, the updated record and, for a kept claim, the next work item. Raises
        TpfError for a completion that cannot apply (and for a text the object store refuses)."""
        release = await self._catalog.get(
            record.tenant_id, record.pipeline_id, record.release_version
        )
        now_ms = self._now_ms()
        outcome = completion.outcome
        actor = completion.worker_id or dispatcher_id
        payload: Envelope | None = None
        result_text: str | None = None
        if isinstance(outcome, StepDone):
            self._check_next_step(record, release, outcome.next_step_index)
            keep = outcome.continue_claim
            lease_ms = self._default_lease_ms
            transition = apply(
                record.state,
                StepCompleted(
                    now_ms=now_ms,
                    next_step_index=outcome.next_step_index,
                    keep_claim=keep,
                    lease_ms=lease_ms,
                ),
                actor=actor,
            )
            if outcome.outputs:
                payload = next_input(outcome.outputs)
        elif isinstance(outcome, PipelineDone):
            transition = apply(record.state, PipelineCompleted(now_ms=now_ms), actor=actor)
            result_text = encode_result(outcome.outputs)
        elif isinstance(outcome, AwaitAsked):
            transition = apply(
                record.state,
                AwaitRequested(
                    now_ms=now_ms,
                    await_step_index=outcome.await_step_index,
                    unit_id=outcome.new_await.unit_id,
                ),
                actor=actor,
            )
        else:
            step = release.step(record.state.step_index)
            assert step is not None
            transition = apply(
                record.state,
                StepFailed(
                    now_ms=now_ms, failure=failure_of(outcome), retry=step.retry, random=self._rand
                ),
                actor=actor,
            )
        write = TransitionWrite(
            record,
            transition,
            payload=payload,
            payload_text=await payloads.store_text(payload.payload) if payload else None,
            result_text=await payloads.store_text(result_text) if result_text is not None else None,
        )
        result.transition = transition
        if transition.dead_letter_reason is not None and self._dlq_log_enabled:
            result.log_lines.append(self._dlq_line(record, release, transition))
        updated = _with_state(record, transition, payload if payload else record.payload)
        result.record = updated
        if isinstance(outcome, StepDone) and outcome.continue_claim:
            step = release.step(outcome.next_step_index)
            assert step is not None
            stop_before = -1 if release.segment_dispatch else outcome.next_step_index + 1
            result.next_work = Claimed(updated, release, step, stop_before)
        return write

    @staticmethod
    def _check_next_step(record: ExecutionRecord, release: ReleaseInfo, next_index: int) -> None:
        if not record.state.step_index < next_index < len(release.steps):
            raise InvalidArgument(
                "FIELD_INVALID",
                f"next_step_index {next_index} must be after step {record.state.step_index} and "
                f"before the pipeline's {len(release.steps)} steps; send pipeline_completed "
                "after the last step",
                field="nextStepIndex",
                value=next_index,
            )

    @staticmethod
    def _dlq_line(record: ExecutionRecord, release: ReleaseInfo, transition: Transition) -> str:
        after = transition.after
        assert transition.dead_letter_reason is not None
        return dlq_log_line(
            tenant_id=record.tenant_id,
            execution_id=record.execution_id,
            transition_key=f"{record.execution_id}:{after.step_index}:{after.attempt}",
            terminal_reason=transition.dead_letter_reason.value,
            error_message=after.error_message or "",
            retryable=bool(transition.failure and transition.failure.retryable),
            retries_observed=after.attempt,
            # TPF prints the pipeline's transport and platform, as its contract names them.
            transport=release.transport or None,
            platform=release.platform or None,
        )


def _with_state(
    record: ExecutionRecord, transition: Transition, payload: Envelope | None
) -> ExecutionRecord:
    return replace(record, state=transition.after, payload=payload)
