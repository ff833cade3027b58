"""Dead-letter use cases: list, redrive one execution, redrive in bulk (DESIGN §5, TPF_WIRE §6.3).

A redrive is one transaction: lock the execution, decide with `apply(state, Redrive(...))`
(expected version, allow_failed, status), write it through the store's `write` (history row with
the reason, optional re-pin onto another release of the pipeline), and stamp the execution's open
dead letters as redriven. It is committed before the call answers, so a status read right after
sees it. A bulk redrive runs that same redrive for each selected execution, each in its own
transaction, in bounded batches; one execution's failure does not stop the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from tpf_coordinator.domain.dead_letters import redrive_log_line
from tpf_coordinator.domain.model import ExecutionState, ExecutionStatus
from tpf_coordinator.domain.transitions import Redrive, apply
from tpf_coordinator.metrics import CoordinatorMetrics
from tpf_coordinator.payloads import Payloads
from tpf_coordinator.release_catalog import ReleaseCatalog, ReleaseInfo
from tpf_coordinator.store.protocol import (
    DeadLetterCursor,
    DeadLetterFilter,
    DeadLetterStore,
    ExecutionStore,
    StaleVersion,
)
from tpf_coordinator.store.records import DeadLetterRecord
from tpf_envelope import DEFAULT_MAX_PAYLOAD_BYTES, Envelope, decode
from tpf_errors import Aborted, InvalidArgument, NotFound, TpfError, Unavailable

log = logging.getLogger(__name__)

# Executions selected per query of a bulk redrive (each is then redriven in its own transaction).
BULK_BATCH_SIZE = 100


@dataclass(frozen=True, slots=True)
class RedriveOrder:
    tenant_id: str
    execution_id: str
    reason: str
    actor: str
    allow_failed: bool = False
    expected_version: int | None = None
    target_release_version: str | None = None
    # A corrected input for the step the execution resumes at (DESIGN §6: fix, then redrive).
    replacement_input: Envelope | None = None


@dataclass(frozen=True, slots=True)
class Redriven:
    """A committed redrive, as TPF's `ExecutionRedriveResult` reports it."""

    tenant_id: str
    execution_id: str
    previous_status: ExecutionStatus
    state: ExecutionState
    pipeline_id: str
    contract_version: str
    release_version: str


@dataclass(frozen=True, slots=True)
class BulkOrder:
    tenant_id: str
    filters: DeadLetterFilter
    reason: str
    actor: str
    max_executions: int
    dry_run: bool = False
    target_release_version: str | None = None


@dataclass(frozen=True, slots=True)
class BulkFailure:
    execution_id: str
    reason: str
    message: str


@dataclass
class BulkOutcome:
    matched_count: int
    dry_run: bool
    execution_ids: list[str] = field(default_factory=list)
    failures: list[BulkFailure] = field(default_factory=list)

    @property
    def redriven_count(self) -> int:
        return 0 if self.dry_run else len(self.execution_ids)


def execution_not_found(execution_id: str) -> NotFound:
    return NotFound(
        "EXECUTION_NOT_FOUND", f"Execution not found: {execution_id}", executionId=execution_id
    )


class DeadLetters:
    def __init__(
        self,
        *,
        store: DeadLetterStore,
        executions: ExecutionStore,
        catalog: ReleaseCatalog,
        now_ms: Callable[[], int],
        payloads: Payloads | None = None,
        allowed_prefixes: tuple[str, ...] = (),
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        metrics: CoordinatorMetrics | None = None,
    ) -> None:
        self._store = store
        self._executions = executions
        self._catalog = catalog
        self._now_ms = now_ms
        self._payloads = payloads
        self._allowed_prefixes = allowed_prefixes
        self._max_payload_bytes = max_payload_bytes
        self._metrics = metrics if metrics is not None else CoordinatorMetrics()

    async def list_dead_letters(
        self,
        tenant_id: str,
        filters: DeadLetterFilter,
        *,
        before: DeadLetterCursor | None,
        limit: int,
    ) -> list[DeadLetterRecord]:
        return await self._store.list_dead_letters(tenant_id, filters, before=before, limit=limit)

    async def redrive(self, order: RedriveOrder) -> Redriven:
        target: ReleaseInfo | None = None
        reason = order.reason
        if order.replacement_input is not None:
            # Well-formedness only, as for an await response: the step itself judges the value.
            decode(
                order.replacement_input,
                allowed_prefixes=self._allowed_prefixes,
                max_size_bytes=self._max_payload_bytes,
            )
            reason = f"{reason} (input replaced)"
        if order.target_release_version:
            pinned = await self._executions.get(order.tenant_id, order.execution_id)
            if pinned is None:
                raise execution_not_found(order.execution_id)
            target = await self._target_release(
                order.tenant_id, pinned.pipeline_id, order.target_release_version
            )
        async with self._executions.connection() as conn, conn.transaction():
            record = await self._executions.lock(conn, order.tenant_id, order.execution_id)
            if record is None:
                raise execution_not_found(order.execution_id)
            transition = apply(
                record.state,
                Redrive(
                    now_ms=self._now_ms(),
                    allow_failed=order.allow_failed,
                    expected_version=order.expected_version,
                    reason=reason,
                    execution_id=order.execution_id,
                ),
                actor=order.actor,
            )
            if target is not None and record.state.step_index >= len(target.steps):
                raise InvalidArgument(
                    "CONTRACT_MISMATCH",
                    f"Release {target.release_version} has {len(target.steps)} steps; execution "
                    f"{order.execution_id} runs again from step {record.state.step_index}",
                    field="targetReleaseVersion",
                    expected=f"more than {record.state.step_index} steps",
                    actual=len(target.steps),
                )
            try:
                await self._executions.write(
                    conn,
                    record,
                    transition,
                    release_version=target.release_version if target else None,
                    contract_version=target.contract_version if target else None,
                    payload=order.replacement_input,
                    set_payload=order.replacement_input is not None,
                    payloads=self._payloads,
                )
            except StaleVersion:
                raise Aborted(
                    "VERSION_CONFLICT",
                    f"Execution {order.execution_id} changed before re-drive could be admitted",
                    executionId=order.execution_id,
                    expectedVersion=record.state.version,
                ) from None
            await self._store.mark_redriven(
                conn,
                tenant_id=order.tenant_id,
                execution_id=order.execution_id,
                before_version=record.state.version,
                now_ms=transition.after.updated_at_ms,
                by=order.actor,
                reason=reason,
            )
        self._metrics.committed([transition])
        after = transition.after
        log.info(
            redrive_log_line(
                tenant_id=order.tenant_id,
                execution_id=order.execution_id,
                previous_status=record.state.status.value,
                step_index=after.step_index,
                attempt=after.attempt,
            ),
            extra={
                "tenant": order.tenant_id,
                "execution_id": order.execution_id,
                "version": after.version,
            },
        )
        return Redriven(
            tenant_id=order.tenant_id,
            execution_id=order.execution_id,
            previous_status=record.state.status,
            state=after,
            pipeline_id=record.pipeline_id,
            contract_version=target.contract_version if target else record.contract_version,
            release_version=target.release_version if target else record.release_version,
        )

    async def bulk_redrive(self, order: BulkOrder) -> BulkOutcome:
        if order.target_release_version and order.filters.pipeline_id:
            # Fail the whole call for an unknown release rather than every execution.
            await self._target_release(
                order.tenant_id, order.filters.pipeline_id, order.target_release_version
            )
        outcome = BulkOutcome(
            matched_count=await self._store.count_open_executions(order.tenant_id, order.filters),
            dry_run=order.dry_run,
        )
        after: DeadLetterCursor | None = None
        selected = 0
        while selected < order.max_executions:
            batch = await self._store.open_executions(
                order.tenant_id,
                order.filters,
                after=after,
                limit=min(BULK_BATCH_SIZE, order.max_executions - selected),
            )
            if not batch:
                break
            selected += len(batch)
            after = (batch[-1].first_created_at_ms, batch[-1].first_id)
            for candidate in batch:
                if order.dry_run:
                    outcome.execution_ids.append(candidate.execution_id)
                    continue
                try:
                    await self.redrive(
                        RedriveOrder(
                            tenant_id=order.tenant_id,
                            execution_id=candidate.execution_id,
                            reason=order.reason,
                            actor=order.actor,
                            allow_failed=True,
                            expected_version=candidate.execution_version,
                            target_release_version=order.target_release_version,
                        )
                    )
                except TpfError as error:
                    outcome.failures.append(_bulk_failure(candidate.execution_id, error))
                    continue
                outcome.execution_ids.append(candidate.execution_id)
        return outcome

    async def _target_release(
        self, tenant_id: str, pipeline_id: str, release_version: str
    ) -> ReleaseInfo:
        """The release to re-pin onto: registered for the pipeline and served by a worker."""
        release = await self._catalog.get(tenant_id, pipeline_id, release_version)
        if release.pipeline_id != pipeline_id:
            raise InvalidArgument(
                "CONTRACT_MISMATCH",
                f"Release {release_version} belongs to pipeline {release.pipeline_id}, not "
                f"{pipeline_id}",
                field="pipelineId",
                expected=pipeline_id,
                actual=release.pipeline_id,
            )
        shortage = await self._catalog.worker_shortage(tenant_id, pipeline_id, release)
        if shortage is not None:
            raise Unavailable(
                "NO_WORKER_AVAILABLE",
                f"No worker can run release {release_version}, so nothing was redriven onto it: "
                f"{shortage}",
                releaseVersion=release_version,
                detail=shortage,
            )
        return release


def _bulk_failure(execution_id: str, error: TpfError) -> BulkFailure:
    # The execution's pipeline has no such release: with a target release and no pipeline
    # filter, that is an execution of another pipeline than the release's.
    reason = "CONTRACT_MISMATCH" if error.reason == "RELEASE_NOT_FOUND" else error.reason
    return BulkFailure(execution_id=execution_id, reason=reason, message=error.message)
