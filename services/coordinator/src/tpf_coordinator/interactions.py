"""Interaction use cases: the pending list, and completing an await (DESIGN §6, TPF_WIRE §5.4).

A completion finds its interaction by interaction id, else correlation id, else the interaction
id read (unverified) from the resume token; a supplied resume token is always verified against
the interaction found. The first completion of an interaction wins: in one transaction it stores
the response, marks the interaction COMPLETED and counts its item on the await unit. When that
was the unit's last expected item, the same transaction marks the unit COMPLETED and moves the
execution WAITING_EXTERNAL → QUEUED at the step after the await (one versioned transition). That
step's input is the response itself for a one-to-one await, and for an itemized await a MULTI
input snapshot of every item's response in item order (TPF's materialized items). Later
completions of an interaction are duplicates and change nothing. Past its record TTL an
interaction is not found any more (TPF_WIRE §5.3).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tpf_coordinator.domain import resume_tokens
from tpf_coordinator.domain.interactions import (
    DEFAULT_RECORD_TTL_MS,
    Admission,
    AwaitUnitStatus,
    admit_completion,
    interaction_terminal,
    require_current_item,
    require_unexpired,
    require_waiting_on,
)
from tpf_coordinator.domain.model import Transition
from tpf_coordinator.domain.transitions import InteractionCompleted, apply
from tpf_coordinator.metrics import CoordinatorMetrics
from tpf_coordinator.payloads import Payloads
from tpf_coordinator.store.protocol import (
    ExecutionStore,
    InteractionStore,
    PendingCursor,
    PendingFilter,
)
from tpf_coordinator.store.records import InteractionRecord, LockedInteraction
from tpf_coordinator.tracing import trace_resume
from tpf_coordinator.work_outcomes import multi_snapshot
from tpf_envelope import Envelope, decode
from tpf_errors import FailedPrecondition, NotFound

log = logging.getLogger(__name__)

SECRET_SETTING = "TPF_RESUME_TOKEN_SECRET"


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """A completion as the servicer hands it over: handles trimmed, blank meaning absent."""

    tenant_id: str
    response: Envelope
    actor: str
    interaction_id: str = ""
    correlation_id: str = ""
    resume_token: str = ""
    idempotency_key: str = ""


@dataclass(frozen=True, slots=True)
class CompletionOutcome:
    interaction_id: str
    execution_id: str
    step_id: str
    duplicate: bool


def interaction_not_found() -> NotFound:
    return NotFound(
        "INTERACTION_NOT_FOUND",
        "No interaction of this tenant matches the given interactionId, correlationId or "
        "resumeToken",
    )


class Interactions:
    def __init__(
        self,
        *,
        store: InteractionStore,
        executions: ExecutionStore,
        now_ms: Callable[[], int],
        resume_token_secret: bytes | None,
        allowed_prefixes: Sequence[str],
        max_payload_bytes: int,
        payloads: Payloads | None = None,
        record_ttl_ms: int = DEFAULT_RECORD_TTL_MS,
        metrics: CoordinatorMetrics | None = None,
    ) -> None:
        self._store = store
        self._executions = executions
        self._now_ms = now_ms
        self._secret = resume_token_secret
        self._allowed_prefixes = tuple(allowed_prefixes)
        self._max_payload_bytes = max_payload_bytes
        self._payloads = payloads
        self._record_ttl_ms = record_ttl_ms
        self._metrics = metrics if metrics is not None else CoordinatorMetrics()

    async def list_pending(
        self,
        tenant_id: str,
        filters: PendingFilter,
        *,
        after: PendingCursor | None,
        limit: int,
    ) -> list[InteractionRecord]:
        return await self._store.list_pending(
            tenant_id,
            filters,
            after=after,
            limit=limit,
            expired_before_ms=self._now_ms() - self._record_ttl_ms,
        )

    async def complete(self, request: CompletionRequest) -> CompletionOutcome:
        # Well-formedness only: the answer is not checked against the next step's input type,
        # so a bad answer fails that step rather than this call (DESIGN §6).
        decode(
            request.response,
            allowed_prefixes=self._allowed_prefixes,
            max_size_bytes=self._max_payload_bytes,
        )
        interaction_id = request.interaction_id
        if not interaction_id and not request.correlation_id:
            interaction_id = resume_tokens.read_unverified(request.resume_token).interaction_id
        now_ms = self._now_ms()
        resumed: list[Transition] = []
        async with self._executions.connection() as conn, conn.transaction():
            found = await self._store.find(
                conn,
                request.tenant_id,
                interaction_id=interaction_id,
                correlation_id=request.correlation_id,
            )
            if found is None:
                raise interaction_not_found()
            self._require_unexpired(found, now_ms)
            if request.resume_token:
                self._verify_token(request.resume_token, found, now_ms)
            if self._admit(found, now_ms) is Admission.DUPLICATE:
                return _duplicate(found)
            # Lock order: execution, then interaction and unit (as cancel does), so a completion
            # racing a cancel waits instead of deadlocking.
            execution = await self._executions.lock(conn, found.tenant_id, found.execution_id)
            locked = await self._store.lock(conn, found.tenant_id, found.interaction_id)
            if execution is None or locked is None:
                raise interaction_not_found()
            interaction = locked.interaction
            self._require_unexpired(interaction, now_ms)
            if self._admit(interaction, now_ms) is Admission.DUPLICATE:
                return _duplicate(interaction)
            require_waiting_on(
                execution.state,
                unit_id=interaction.unit_id,
                interaction_id=interaction.interaction_id,
            )
            if locked.unit_status is not AwaitUnitStatus.WAITING_EXTERNAL:
                raise interaction_terminal(interaction.interaction_id, locked.unit_status.value)
            require_current_item(
                locked.unit_item_interaction_ids,
                interaction_id=interaction.interaction_id,
                status=interaction.status,
            )
            progress = await self._store.record_completion(
                conn,
                locked,
                response=request.response,
                actor=request.actor,
                idempotency_key=request.idempotency_key,
                now_ms=now_ms,
            )
            version = execution.state.version
            if progress.completed:
                transition = apply(
                    execution.state,
                    InteractionCompleted(
                        next_step_index=execution.state.step_index + 1, now_ms=now_ms
                    ),
                    actor=request.actor,
                )
                await self._executions.write(
                    conn,
                    execution,
                    transition,
                    payload=await self._resumed_input(conn, locked, request.response),
                    set_payload=True,
                    payloads=self._payloads,
                )
                version = transition.after.version
                trace_resume(execution, interaction.interaction_id)
                resumed.append(transition)
        self._metrics.committed(resumed)
        log.info(
            "interaction completed (item %d of %d)",
            progress.completed_item_count,
            progress.expected_item_count,
            extra={
                "tenant": request.tenant_id,
                "execution_id": interaction.execution_id,
                "version": version,
                "interaction_id": interaction.interaction_id,
            },
        )
        return CompletionOutcome(
            interaction_id=interaction.interaction_id,
            execution_id=interaction.execution_id,
            step_id=interaction.step_id,
            duplicate=False,
        )

    async def _resumed_input(
        self, conn: Any, locked: LockedInteraction, response: Envelope
    ) -> Envelope:
        """The input of the step after the await: the one answer of a one-to-one await, else
        every item's answer in item order."""
        if locked.is_one_to_one:
            return response
        responses = await self._store.item_responses(
            conn, locked.interaction.tenant_id, locked.unit_item_interaction_ids
        )
        return multi_snapshot(responses)

    def _require_unexpired(self, interaction: InteractionRecord, now_ms: int) -> None:
        require_unexpired(
            interaction.status,
            interaction_id=interaction.interaction_id,
            deadline_ms=interaction.deadline_ms,
            record_ttl_ms=self._record_ttl_ms,
            now_ms=now_ms,
        )

    @staticmethod
    def _admit(interaction: InteractionRecord, now_ms: int) -> Admission:
        return admit_completion(
            interaction.status,
            interaction_id=interaction.interaction_id,
            deadline_ms=interaction.deadline_ms,
            now_ms=now_ms,
        )

    def _verify_token(self, token: str, interaction: InteractionRecord, now_ms: int) -> None:
        if not self._secret:
            # TPF answers 500 here; this is the operator's configuration, not a bug or the
            # caller's token, so the caller learns what is missing.
            raise FailedPrecondition(
                "RESUME_TOKEN_SECRET_MISSING",
                "Resume tokens cannot be checked: this coordinator has no resume token secret; "
                f"the operator must set {SECRET_SETTING}, or complete by interactionId or "
                "correlationId without a resumeToken",
                setting=SECRET_SETTING,
            )
        resume_tokens.verify(
            self._secret,
            token,
            expected=resume_tokens.ResumeTokenClaims(
                tenant_id=interaction.tenant_id,
                interaction_id=interaction.interaction_id,
                correlation_id=interaction.correlation_id,
                execution_id=interaction.execution_id,
                step_id=interaction.step_id,
                deadline_epoch_ms=interaction.deadline_ms,
            ),
            now_ms=now_ms,
        )


def _duplicate(interaction: InteractionRecord) -> CompletionOutcome:
    return CompletionOutcome(
        interaction_id=interaction.interaction_id,
        execution_id=interaction.execution_id,
        step_id=interaction.step_id,
        duplicate=True,
    )
