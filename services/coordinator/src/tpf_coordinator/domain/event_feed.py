"""The terminal-event feed: positions, events, and which tenants a reader's cursor covers.

A position is (xact_id, history_id): the writing transaction's 64-bit id, then the history row id
(migration 0004 says why not the id alone). Positions are handed to clients as opaque strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Self

from tpf_coordinator.domain.model import ExecutionStatus, HistoryEvent, TerminalReason
from tpf_errors import InvalidArgument

_POSITION = re.compile(r"^(\d{1,20}):(\d{1,19})$")
# Leaves room in the primary key and logs; a queue URL (the bridge's default) fits easily.
MAX_CONSUMER_ID_CHARS = 256


@dataclass(frozen=True, slots=True, order=True)
class FeedPosition:
    """A place in the feed; an event is after a position when its (xact_id, history_id) is
    greater. (xid, 0) lies before every row that transaction wrote."""

    xact_id: int
    history_id: int

    @classmethod
    def start(cls) -> Self:
        return cls(0, 0)

    @classmethod
    def parse(cls, text: str, *, field: str) -> Self:
        """Read a position a client sent back; INVALID_ARGUMENT FIELD_INVALID if it is not one."""
        match = _POSITION.match(text.strip())
        if match is None:
            raise InvalidArgument(
                "FIELD_INVALID",
                f"{field} is not a feed position; pass back a position the coordinator returned",
                field=field,
            )
        return cls(int(match[1]), int(match[2]))

    def __str__(self) -> str:
        return f"{self.xact_id}:{self.history_id}"


@dataclass(frozen=True, slots=True)
class TerminalEvent:
    position: FeedPosition
    tenant_id: str
    execution_id: str
    pipeline_id: str
    release_version: str
    status: ExecutionStatus
    version: int
    updated_at_ms: int
    error_code: str | None
    error_message: str | None
    terminal_reason: str


@dataclass(frozen=True, slots=True)
class TerminalHistoryRow:
    """A terminal history row, with what the execution row and its dead letter say about it."""

    position: FeedPosition
    tenant_id: str
    execution_id: str
    version: int
    event: HistoryEvent
    to_status: ExecutionStatus
    error_code: str | None
    error_message: str | None
    release_version: str
    occurred_at_ms: int
    pipeline_id: str
    current_version: int
    current_error_code: str | None
    current_error_message: str | None
    current_terminal_reason: str
    dead_letter_reason: str | None


def terminal_event_of(row: TerminalHistoryRow) -> TerminalEvent:
    """The execution's state at the terminal transition.

    While the execution is still at that version (always, unless a FAILED one was redriven
    since), its row is that state, exactly what GetExecution shows. Otherwise the history row
    has the failure, and the reason is its dead letter's, or `await_timeout` (the one failure
    without a dead letter, as in TPF).
    """
    if row.current_version == row.version:
        error_code = row.current_error_code
        error_message = row.current_error_message
        terminal_reason = row.current_terminal_reason
    else:
        error_code = row.error_code
        error_message = row.error_message
        terminal_reason = row.dead_letter_reason or (
            TerminalReason.AWAIT_TIMEOUT.value if row.event is HistoryEvent.AWAIT_TIMED_OUT else ""
        )
    return TerminalEvent(
        position=row.position,
        tenant_id=row.tenant_id,
        execution_id=row.execution_id,
        pipeline_id=row.pipeline_id,
        release_version=row.release_version,
        status=row.to_status,
        version=row.version,
        updated_at_ms=row.occurred_at_ms,
        error_code=error_code,
        error_message=error_message,
        terminal_reason=terminal_reason,
    )


def next_position(
    after: FeedPosition, events: list[TerminalEvent], *, full: bool, horizon_xact_id: int
) -> FeedPosition:
    """Where a reader goes on after a page.

    A full page ends at its last event. A page that is not full held every matching event
    before the horizon (the oldest transaction still running), so the reader may skip to it:
    any later event comes from that transaction or a newer one. Never behind `after`.
    """
    if full and events:
        return events[-1].position
    candidates = [after, FeedPosition(horizon_xact_id, 0)]
    if events:
        candidates.append(events[-1].position)
    return max(candidates)


@dataclass(frozen=True, slots=True)
class TenantSet:
    """The tenants a feed reader covers: listed ones, or every tenant (`everything`)."""

    tenant_ids: tuple[str, ...]

    @property
    def everything(self) -> bool:
        return not self.tenant_ids

    @classmethod
    def of(cls, tenants: tuple[str, ...]) -> Self:
        return cls(tuple(sorted(set(tenants))))


@dataclass(frozen=True, slots=True)
class EventCursor:
    consumer_id: str
    tenants: TenantSet
    position: FeedPosition
    version: int
    updated_at_ms: int
