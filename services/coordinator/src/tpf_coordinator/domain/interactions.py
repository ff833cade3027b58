"""Await interactions as the domain sees them: statuses, and when a completion is accepted.

The status sets are TPF's (TPF_WIRE §5.2); the proto enums (`tpf.coordinator.v1.InteractionStatus`,
`AwaitUnitStatus`) and the SQL CHECKs on `interactions.status` / `await_units.status` list the
same names. A completion is judged in this order (DESIGN §6, TPF_WIRE §3.5):

1. already COMPLETED: a duplicate, answered as such, nothing changes (the first answer wins);
2. otherwise terminal (FAILED, TIMED_OUT, CANCELLED, EXPIRED): refused, INTERACTION_TERMINAL;
3. deadline passed (deadline <= now): refused, INTERACTION_EXPIRED. The interaction is left as it
   is, so the sweeper times it out and fails the execution with AWAIT_TIMEOUT; TPF marks only the
   interaction, which strands the execution in WAITING_EXTERNAL (a quirk we do not copy);
4. the execution must still be WAITING_EXTERNAL on the interaction's await unit, else the await
   is over for it (cancelled, timed out): INTERACTION_TERMINAL.
"""

from __future__ import annotations

from enum import Enum, StrEnum

from tpf_coordinator.domain.model import ExecutionState, ExecutionStatus
from tpf_errors import FailedPrecondition


class InteractionStatus(StrEnum):
    WAITING = "WAITING"
    DISPATCHING = "DISPATCHING"
    DISPATCHED = "DISPATCHED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"

    @property
    def is_terminal(self) -> bool:
        return self not in PENDING_INTERACTION_STATUSES


# A completion may land on any of these; the pending list shows exactly these.
PENDING_INTERACTION_STATUSES = (
    InteractionStatus.WAITING,
    InteractionStatus.DISPATCHING,
    InteractionStatus.DISPATCHED,
)


class AwaitUnitStatus(StrEnum):
    WAITING_EXTERNAL = "WAITING_EXTERNAL"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


class Admission(Enum):
    """What a completion attempt on an interaction amounts to, if it is not refused."""

    COMPLETE = "complete"
    DUPLICATE = "duplicate"


def admit_completion(
    status: InteractionStatus, *, interaction_id: str, deadline_ms: int, now_ms: int
) -> Admission:
    """Rules 1-3 of the module docstring; raises FailedPrecondition for a refusal."""
    if status is InteractionStatus.COMPLETED:
        return Admission.DUPLICATE
    if status.is_terminal:
        raise interaction_terminal(interaction_id, status.value)
    if deadline_ms <= now_ms:
        raise FailedPrecondition(
            "INTERACTION_EXPIRED",
            f"Interaction {interaction_id} passed its deadline at {deadline_ms}; it can no "
            "longer be completed (its execution fails with AWAIT_TIMEOUT)",
            interactionId=interaction_id,
            deadlineEpochMs=deadline_ms,
        )
    return Admission.COMPLETE


def require_waiting_on(state: ExecutionState, *, unit_id: str, interaction_id: str) -> None:
    """Rule 4: the execution still waits on the interaction's await unit."""
    if state.status is not ExecutionStatus.WAITING_EXTERNAL or state.await_unit_id != unit_id:
        raise FailedPrecondition(
            "INTERACTION_TERMINAL",
            f"Interaction {interaction_id} can no longer be completed: its execution is "
            f"{state.status.value} and no longer waits on it",
            interactionId=interaction_id,
            executionStatus=state.status.value,
        )


def interaction_terminal(interaction_id: str, status: str) -> FailedPrecondition:
    return FailedPrecondition(
        "INTERACTION_TERMINAL",
        f"Interaction {interaction_id} is {status}; it can no longer be completed",
        interactionId=interaction_id,
        status=status,
    )
