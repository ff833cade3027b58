"""The execution state machine (DESIGN §3) as one pure function: `apply(state, event)`.

`apply` decides whether an event is allowed in the current state and what the row becomes; it
never reads a clock or a random source (both arrive in the event). Every accepted event yields
exactly one `Transition`: the row after it, with `version + 1` and `updated_at_ms = now`, and the
history event that records it. The store writes `after` only where the row still holds
`before.version` (the fencing token), so an event decided on an outdated copy of the row is
rejected there. A refused event raises and changes nothing:

- FAILED_PRECONDITION / INVALID_TRANSITION when the status forbids it (terminal statuses absorb
  every event; only redrive leaves FAILED or DLQ);
- ABORTED / VERSION_CONFLICT when a redrive names a version the row no longer holds.
"""

from __future__ import annotations

from dataclasses import replace
from typing import assert_never

from tpf_coordinator.domain.events import (
    DEFAULT_MAX_CONSECUTIVE_LEASE_EXPIRIES,
    AwaitRequested,
    AwaitTimedOut,
    Cancel,
    Claim,
    Event,
    InteractionCompleted,
    LeaseExpired,
    PipelineCompleted,
    Redrive,
    StepCompleted,
    StepFailed,
)
from tpf_coordinator.domain.failures import truncate_message
from tpf_coordinator.domain.model import (
    NEVER_DUE_MS,
    ExecutionState,
    ExecutionStatus,
    HistoryEvent,
    StepFailure,
    TerminalReason,
    Transition,
)
from tpf_errors import Aborted, FailedPrecondition

# Error codes this module writes (the others are workers' exception class names).
LEASE_EXPIRED = "LEASE_EXPIRED"
LEASE_EXPIRED_REPEATEDLY = "LEASE_EXPIRED_REPEATEDLY"
AWAIT_TIMEOUT = "AWAIT_TIMEOUT"

__all__ = [
    "AWAIT_TIMEOUT",
    "DEFAULT_MAX_CONSECUTIVE_LEASE_EXPIRIES",
    "LEASE_EXPIRED",
    "LEASE_EXPIRED_REPEATEDLY",
    "AwaitRequested",
    "AwaitTimedOut",
    "Cancel",
    "Claim",
    "Event",
    "InteractionCompleted",
    "LeaseExpired",
    "PipelineCompleted",
    "Redrive",
    "StepCompleted",
    "StepFailed",
    "apply",
    "new_execution_state",
]

_Status = ExecutionStatus


def new_execution_state(now_ms: int) -> ExecutionState:
    """A submitted execution (recorded as SUBMITTED): QUEUED at step 0, attempt 0, version 0."""
    return ExecutionState(
        status=_Status.QUEUED,
        step_index=0,
        attempt=0,
        version=0,
        next_due_at_ms=now_ms,
        updated_at_ms=now_ms,
    )


def apply(state: ExecutionState, event: Event, *, actor: str) -> Transition:
    """The transition `event` causes from `state`, or a raised TpfError if it is not allowed."""
    if isinstance(event, Redrive):
        return _redrive(state, event, actor)
    if state.status.is_terminal:
        raise _invalid(
            state,
            event,
            f"The execution is {state.status}, which is terminal; only a redrive (from FAILED "
            "or DLQ) changes it.",
        )
    if isinstance(event, Claim):
        return _claim(state, event, actor)
    if isinstance(event, StepCompleted):
        return _step_completed(state, event, actor)
    if isinstance(event, PipelineCompleted):
        _require(state, event, _Status.RUNNING)
        after = replace(
            _released(state),
            status=_Status.SUCCEEDED,
            next_due_at_ms=event.now_ms,
            error_code=None,
            error_message=None,
            consecutive_lease_expiries=0,
        )
        return _commit(state, after, HistoryEvent.SUCCEEDED, event.now_ms, actor)
    if isinstance(event, AwaitRequested):
        return _await_requested(state, event, actor)
    if isinstance(event, StepFailed):
        return _step_failed(state, event, actor)
    if isinstance(event, LeaseExpired):
        return _lease_expired(state, event, actor)
    if isinstance(event, InteractionCompleted):
        _require(state, event, _Status.WAITING_EXTERNAL)
        _require_advance(state, event, event.next_step_index)
        after = replace(
            state,
            status=_Status.QUEUED,
            step_index=event.next_step_index,
            next_due_at_ms=event.now_ms,
            error_code=None,
            error_message=None,
        )
        return _commit(state, after, HistoryEvent.INTERACTION_COMPLETED, event.now_ms, actor)
    if isinstance(event, AwaitTimedOut):
        return _await_timed_out(state, event, actor)
    if isinstance(event, Cancel):
        after = replace(_released(state), status=_Status.CANCELLED, next_due_at_ms=event.now_ms)
        return _commit(
            state, after, HistoryEvent.CANCELLED, event.now_ms, actor, reason=event.reason
        )
    assert_never(event)


def _claim(state: ExecutionState, event: Claim, actor: str) -> Transition:
    # QUEUED is written due at the writer's "now", so it is due at once on that clock; the
    # claim SQL (store/work_postgres.py) applies this same rule to both statuses, which keeps
    # its scan on the runnable index ordered by due time.
    if state.status.is_runnable and state.next_due_at_ms > event.now_ms:
        raise _invalid(
            state,
            event,
            f"The execution is not due until {state.next_due_at_ms} (now {event.now_ms}); claim"
            " it then.",
        )
    if state.status not in (_Status.QUEUED, _Status.WAIT_RETRY):
        raise _invalid(
            state,
            event,
            f"Only QUEUED executions, or WAIT_RETRY ones once due, can be claimed; this one is "
            f"{state.status}.",
        )
    # The previous attempt's error is cleared: TPF keeps it on a RUNNING retry, a quirk its
    # wire reference says not to copy (a client would read a running execution as failing).
    # The error stays in the history row of the RETRY_SCHEDULED transition.
    after = replace(
        state,
        status=_Status.RUNNING,
        lease_owner=event.owner,
        lease_expires_at_ms=event.now_ms + event.lease_ms,
        error_code=None,
        error_message=None,
    )
    return _commit(state, after, HistoryEvent.CLAIMED, event.now_ms, actor)


def _step_completed(state: ExecutionState, event: StepCompleted, actor: str) -> Transition:
    _require(state, event, _Status.RUNNING)
    _require_advance(state, event, event.next_step_index)
    if event.keep_claim:
        after = replace(
            state,
            step_index=event.next_step_index,
            lease_expires_at_ms=event.now_ms + event.lease_ms,
            error_code=None,
            error_message=None,
            consecutive_lease_expiries=0,
        )
    else:
        after = replace(
            _released(state),
            status=_Status.QUEUED,
            step_index=event.next_step_index,
            next_due_at_ms=event.now_ms,
            error_code=None,
            error_message=None,
            consecutive_lease_expiries=0,
        )
    return _commit(state, after, HistoryEvent.STEP_COMPLETED, event.now_ms, actor)


def _await_requested(state: ExecutionState, event: AwaitRequested, actor: str) -> Transition:
    _require(state, event, _Status.RUNNING)
    if event.await_step_index < state.step_index:
        raise _invalid(
            state,
            event,
            f"The await step {event.await_step_index} lies before the running step "
            f"{state.step_index}; report the await step the segment stopped at.",
        )
    after = replace(
        _released(state),
        status=_Status.WAITING_EXTERNAL,
        step_index=event.await_step_index,
        next_due_at_ms=NEVER_DUE_MS,
        await_unit_id=event.unit_id,
        error_code=None,
        error_message=None,
        consecutive_lease_expiries=0,
    )
    return _commit(state, after, HistoryEvent.AWAIT_REQUESTED, event.now_ms, actor)


def _step_failed(state: ExecutionState, event: StepFailed, actor: str) -> Transition:
    _require(state, event, _Status.RUNNING)
    given = event.failure
    retryable = given.retryable and not given.permanent_input_error
    failure = StepFailure(
        error_code=given.error_code,
        error_message=truncate_message(given.error_message),
        retryable=retryable,
        permanent_input_error=given.permanent_input_error,
    )
    if retryable and event.retry.may_retry(state.attempt):
        next_attempt = state.attempt + 1
        after = replace(
            _released(state),
            status=_Status.WAIT_RETRY,
            attempt=next_attempt,
            next_due_at_ms=event.now_ms + event.retry.delay_ms(next_attempt, event.random),
            error_code=failure.error_code,
            error_message=failure.error_message,
            consecutive_lease_expiries=0,
        )
        return _commit(
            state, after, HistoryEvent.RETRY_SCHEDULED, event.now_ms, actor, failure=failure
        )
    reason = TerminalReason.RETRY_EXHAUSTED if retryable else TerminalReason.NON_RETRYABLE
    after = replace(
        _released(state),
        status=_Status.FAILED,
        next_due_at_ms=event.now_ms,
        error_code=failure.error_code,
        error_message=failure.error_message,
        terminal_reason=reason.value,
        consecutive_lease_expiries=0,
    )
    return _commit(
        state,
        after,
        HistoryEvent.FAILED,
        event.now_ms,
        actor,
        failure=failure,
        dead_letter_reason=reason,
    )


def _lease_expired(state: ExecutionState, event: LeaseExpired, actor: str) -> Transition:
    _require(state, event, _Status.RUNNING)
    if state.lease_expires_at_ms > event.now_ms:
        raise _invalid(
            state,
            event,
            f"The lease of {state.lease_owner} runs until {state.lease_expires_at_ms} (now "
            f"{event.now_ms}); it has not expired.",
        )
    expiries = state.consecutive_lease_expiries + 1
    if expiries >= event.max_consecutive:
        failure = StepFailure(
            error_code=LEASE_EXPIRED_REPEATEDLY,
            error_message=truncate_message(
                f"Lease expired {expiries} times in a row at step {state.step_index}; "
                f"last owner {state.lease_owner}"
            ),
            retryable=False,
        )
        reason = TerminalReason.LEASE_EXPIRED_REPEATEDLY
        after = replace(
            _released(state),
            status=_Status.FAILED,
            next_due_at_ms=event.now_ms,
            error_code=failure.error_code,
            error_message=failure.error_message,
            terminal_reason=reason.value,
            consecutive_lease_expiries=expiries,
        )
        return _commit(
            state,
            after,
            HistoryEvent.FAILED,
            event.now_ms,
            actor,
            failure=failure,
            dead_letter_reason=reason,
        )
    failure = StepFailure(
        error_code=LEASE_EXPIRED,
        error_message=truncate_message(
            f"Lease of {state.lease_owner} expired at {state.lease_expires_at_ms} "
            f"({expiries} of {event.max_consecutive} allowed in a row at step {state.step_index})"
        ),
        retryable=True,
    )
    after = replace(
        _released(state),
        status=_Status.QUEUED,
        next_due_at_ms=event.now_ms,
        consecutive_lease_expiries=expiries,
    )
    return _commit(state, after, HistoryEvent.LEASE_EXPIRED, event.now_ms, actor, failure=failure)


def _await_timed_out(state: ExecutionState, event: AwaitTimedOut, actor: str) -> Transition:
    _require(state, event, _Status.WAITING_EXTERNAL)
    failure = StepFailure(
        error_code=AWAIT_TIMEOUT,
        error_message=truncate_message(f"Await interaction timed out: {event.interaction_id}"),
        retryable=False,
    )
    # Failed without a dead letter, as TPF.
    after = replace(
        _released(state),
        status=_Status.FAILED,
        next_due_at_ms=event.now_ms,
        error_code=failure.error_code,
        error_message=failure.error_message,
        terminal_reason=TerminalReason.AWAIT_TIMEOUT.value,
    )
    return _commit(state, after, HistoryEvent.AWAIT_TIMED_OUT, event.now_ms, actor, failure=failure)


def _redrive(state: ExecutionState, event: Redrive, actor: str) -> Transition:
    named = f"Execution {event.execution_id}" if event.execution_id else "Execution"
    if event.expected_version is not None and event.expected_version != state.version:
        raise Aborted(
            "VERSION_CONFLICT",
            f"{named} version mismatch: expected {event.expected_version} but current version "
            f"is {state.version}",
            expectedVersion=event.expected_version,
            currentVersion=state.version,
        )
    allowed = state.status is _Status.DLQ or (state.status is _Status.FAILED and event.allow_failed)
    if not allowed:
        raise FailedPrecondition(
            "INVALID_TRANSITION",
            f"{named} cannot be re-driven from status {state.status}",
            status=state.status.value,
            operation=type(event).__name__,
        )
    after = replace(
        _released(state),
        status=_Status.QUEUED,
        attempt=state.attempt + 1,
        next_due_at_ms=event.now_ms,
        error_code=None,
        error_message=None,
        terminal_reason="",
        consecutive_lease_expiries=0,
    )
    return _commit(state, after, HistoryEvent.REDRIVEN, event.now_ms, actor, reason=event.reason)


def _released(state: ExecutionState) -> ExecutionState:
    """`state` with its lease cleared, for statuses no dispatcher holds."""
    return replace(state, lease_owner="", lease_expires_at_ms=0)


def _commit(
    before: ExecutionState,
    after: ExecutionState,
    event: HistoryEvent,
    now_ms: int,
    actor: str,
    *,
    reason: str = "",
    failure: StepFailure | None = None,
    dead_letter_reason: TerminalReason | None = None,
) -> Transition:
    return Transition(
        event=event,
        before=before,
        after=replace(after, version=before.version + 1, updated_at_ms=now_ms),
        actor=actor,
        reason=reason,
        failure=failure,
        dead_letter_reason=dead_letter_reason,
    )


def _require(state: ExecutionState, event: Event, status: ExecutionStatus) -> None:
    if state.status is not status:
        raise _invalid(
            state,
            event,
            f"{type(event).__name__} applies to a {status} execution; this one is {state.status}.",
        )


def _require_advance(state: ExecutionState, event: Event, next_step_index: int) -> None:
    if next_step_index <= state.step_index:
        raise _invalid(
            state,
            event,
            f"The next step {next_step_index} must come after the current step {state.step_index}.",
        )


def _invalid(state: ExecutionState, event: Event, message: str) -> FailedPrecondition:
    return FailedPrecondition(
        "INVALID_TRANSITION",
        message,
        status=state.status.value,
        operation=type(event).__name__,
    )
