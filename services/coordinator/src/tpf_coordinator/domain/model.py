"""Execution state as the domain sees it: statuses, events, the row state a transition changes.

The status set is declared once here; the proto enum (`tpf.common.v1.ExecutionStatus`) and the
SQL CHECK on `executions.status` list the same names
(tests/integration/test_coordinator_status_sets.py checks the three against the migrated schema).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ExecutionStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    WAITING_EXTERNAL = "WAITING_EXTERNAL"
    WAIT_RETRY = "WAIT_RETRY"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    # Kept for TPF compatibility: accepted by redrive, never written (DESIGN §3).
    DLQ = "DLQ"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_runnable(self) -> bool:
        """Claimable once due: QUEUED is written due at once (next_due = the writer's now),
        WAIT_RETRY when its backoff ends."""
        return self in (ExecutionStatus.QUEUED, ExecutionStatus.WAIT_RETRY)


_TERMINAL = frozenset(
    {
        ExecutionStatus.SUCCEEDED,
        ExecutionStatus.FAILED,
        ExecutionStatus.DLQ,
        ExecutionStatus.CANCELLED,
    }
)


class HistoryEvent(StrEnum):
    """What happened in one transition; one history row each (proto `HistoryEvent`)."""

    SUBMITTED = "SUBMITTED"
    CLAIMED = "CLAIMED"
    STEP_COMPLETED = "STEP_COMPLETED"
    SUCCEEDED = "SUCCEEDED"
    AWAIT_REQUESTED = "AWAIT_REQUESTED"
    INTERACTION_COMPLETED = "INTERACTION_COMPLETED"
    RETRY_SCHEDULED = "RETRY_SCHEDULED"
    FAILED = "FAILED"
    LEASE_EXPIRED = "LEASE_EXPIRED"
    AWAIT_TIMED_OUT = "AWAIT_TIMED_OUT"
    REDRIVEN = "REDRIVEN"
    CANCELLED = "CANCELLED"


class TerminalReason(StrEnum):
    """Why an execution failed for good; TPF's DLQ `terminalReason` spelling (lower-case)."""

    RETRY_EXHAUSTED = "retry_exhausted"
    NON_RETRYABLE = "non_retryable"
    LEASE_EXPIRED_REPEATEDLY = "lease_expired_repeatedly"
    AWAIT_TIMEOUT = "await_timeout"


# `nextDueAtEpochMs` while WAITING_EXTERNAL, as TPF writes it (Java Long.MAX_VALUE).
NEVER_DUE_MS = 9_223_372_036_854_775_807


@dataclass(frozen=True, slots=True)
class ExecutionState:
    """The columns of an execution row that transitions change.

    `version` is the fencing token: every accepted transition writes `version + 1`, conditional
    on the row still holding `version`.
    """

    status: ExecutionStatus
    step_index: int
    attempt: int
    version: int
    next_due_at_ms: int
    updated_at_ms: int
    lease_owner: str = ""
    lease_expires_at_ms: int = 0
    error_code: str | None = None
    error_message: str | None = None
    terminal_reason: str = ""
    consecutive_lease_expiries: int = 0
    await_unit_id: str = ""


@dataclass(frozen=True, slots=True)
class StepFailure:
    """A failed step as recorded: code, message (≤ 512 chars), and whether it may be retried."""

    error_code: str
    error_message: str
    retryable: bool
    # The step could not even decode its input: fails at once, never retried (DESIGN §5).
    permanent_input_error: bool = False


@dataclass(frozen=True, slots=True)
class Transition:
    """One accepted state change: what the row becomes, and the history row that records it."""

    event: HistoryEvent
    before: ExecutionState
    after: ExecutionState
    actor: str
    reason: str = ""
    failure: StepFailure | None = None
    # Set when the transition ends the execution in FAILED with a dead letter (same transaction).
    dead_letter_reason: TerminalReason | None = None
