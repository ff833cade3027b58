"""Await interactions as the domain sees them: statuses, and when a completion is accepted.

The status sets are TPF's (TPF_WIRE §5.2); the proto enums (`tpf.coordinator.v1.InteractionStatus`,
`AwaitUnitStatus`) and the SQL CHECKs on `interactions.status` / `await_units.status` list the
same names. A completion is judged in this order (DESIGN §6, TPF_WIRE §3.5):

0. past its record TTL (deadline + the TTL, 1 day by default) or EXPIRED: not found,
   INTERACTION_RECORD_EXPIRED (TPF has purged the record by then and answers 404), even for an
   interaction that was completed;
1. already COMPLETED: a duplicate, answered as such, nothing changes (the first answer wins);
2. otherwise terminal (FAILED, TIMED_OUT, CANCELLED, EXPIRED): refused, INTERACTION_TERMINAL;
3. deadline passed (deadline <= now): refused, INTERACTION_EXPIRED. The interaction is left as it
   is, so the sweeper times it out and fails the execution with AWAIT_TIMEOUT; TPF marks only the
   interaction, which strands the execution in WAITING_EXTERNAL (a quirk we do not copy);
4. the execution must still be WAITING_EXTERNAL on the interaction's await unit, and the
   interaction must be one of the unit's current items, else the await is over for it
   (cancelled, timed out, re-created): INTERACTION_TERMINAL.

An itemized await unit has one interaction per item. Each item counts once (a second answer to
an item is a duplicate, rule 1), and the unit resumes its execution only when every expected
item is answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum, StrEnum

from tpf_coordinator.domain.model import ExecutionState, ExecutionStatus
from tpf_errors import FailedPrecondition, InvalidArgument, NotFound


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


# TPF keeps an interaction record until its deadline + 86 400 s (TPF_WIRE §5.3).
DEFAULT_RECORD_TTL_MS = 86_400_000


def record_expires_at_ms(deadline_ms: int, record_ttl_ms: int) -> int:
    return deadline_ms + record_ttl_ms


def require_unexpired(
    status: InteractionStatus,
    *,
    interaction_id: str,
    deadline_ms: int,
    record_ttl_ms: int,
    now_ms: int,
) -> None:
    """Rule 0: past its record TTL an interaction is gone, whatever the sweeper did so far."""
    expires_at_ms = record_expires_at_ms(deadline_ms, record_ttl_ms)
    if status is InteractionStatus.EXPIRED or now_ms >= expires_at_ms:
        raise NotFound(
            "INTERACTION_RECORD_EXPIRED",
            f"Interaction {interaction_id} expired at {expires_at_ms} (its deadline plus the "
            "record TTL); it can no longer be completed",
            interactionId=interaction_id,
            expiredAtEpochMs=expires_at_ms,
        )


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


def require_current_item(
    item_interaction_ids: tuple[str, ...], *, interaction_id: str, status: InteractionStatus
) -> None:
    """Rule 4, second half: an interaction of an earlier await on the same unit (the unit was
    re-created for the same execution and step) no longer counts."""
    if interaction_id not in item_interaction_ids:
        raise FailedPrecondition(
            "INTERACTION_TERMINAL",
            f"Interaction {interaction_id} belongs to an earlier await of its step; it can no "
            "longer be completed",
            interactionId=interaction_id,
            status=status.value,
        )


def interaction_terminal(interaction_id: str, status: str) -> FailedPrecondition:
    return FailedPrecondition(
        "INTERACTION_TERMINAL",
        f"Interaction {interaction_id} is {status}; it can no longer be completed",
        interactionId=interaction_id,
        status=status,
    )


# TPF's `await-aggregate-max-input-items` default: the most items one await unit may have.
MAX_AWAIT_ITEMS = 10_000


def item_order(item_indexes: Sequence[int | None], *, expected_item_count: int | None) -> list[int]:
    """Positions of an await's interactions in item order, after checking they form one await.

    A one-to-one await has exactly one interaction and no item index. An itemized await has one
    interaction per item, each with a distinct item index >= 0; when the worker states the
    unit's `expectedItemCount`, it must equal the number of interactions (an item that never
    gets an interaction could never be answered). Raises InvalidArgument otherwise.
    """
    count = len(item_indexes)
    if count > MAX_AWAIT_ITEMS:
        raise InvalidArgument(
            "FIELD_OUT_OF_RANGE",
            f"awaitRequested.interactions holds {count} items; an await may have at most "
            f"{MAX_AWAIT_ITEMS}",
            field="awaitRequested.interactions",
            value=count,
            max=MAX_AWAIT_ITEMS,
        )
    if expected_item_count is not None and expected_item_count > 0 and expected_item_count != count:
        raise InvalidArgument(
            "FIELD_INVALID",
            f"awaitRequested.unit.expectedItemCount is {expected_item_count} but "
            f"awaitRequested.interactions holds {count}; send one interaction per item",
            field="awaitRequested.unit.expectedItemCount",
            value=expected_item_count,
        )
    if count == 1 and item_indexes[0] is None:
        return [0]
    indexes: list[int] = []
    for index in item_indexes:
        if index is None or index < 0:
            raise InvalidArgument(
                "FIELD_INVALID",
                f"every interaction of an itemized await needs an itemIndex >= 0, not {index}",
                field="awaitRequested.interactions.itemIndex",
                value=str(index),
            )
        indexes.append(index)
    if len(set(indexes)) != count:
        raise InvalidArgument(
            "FIELD_INVALID",
            "awaitRequested.interactions repeats an itemIndex; each item has one interaction",
            field="awaitRequested.interactions.itemIndex",
        )
    return sorted(range(count), key=lambda position: indexes[position])
