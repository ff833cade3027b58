"""Rows as the coordinator reads them back: executions with their identity and payloads,
history, interactions with their await unit, dead letters, the backlog gauges.

Plain data, built from a row (a column-name → value mapping) by `from_row`; the stores return
them and the use cases read them (store/protocol.py says which store returns what)."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

from tpf_coordinator.domain.interactions import AwaitUnitStatus, InteractionStatus
from tpf_coordinator.domain.model import ExecutionState, ExecutionStatus
from tpf_envelope import Envelope, to_json_dict


@dataclass(frozen=True, slots=True)
class StoredText:
    """Text as a row stores it: inline, or as a reference into the object store."""

    inline: str | None
    ref: str | None


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    tenant_id: str
    execution_id: str
    pipeline_id: str
    contract_version: str
    release_version: str
    input_shape: str
    result_shape: str
    idempotency_key: str
    input_fingerprint: str
    state: ExecutionState
    payload: Envelope | None
    result: tuple[Envelope, ...] | None
    created_at_ms: int
    # Set when the payload / result text lives in the object store (see payloads.py).
    payload_ref: str | None = None
    result_ref: str | None = None
    # W3C traceparent of the submit (None before migration 0006 or with tracing off).
    trace_parent: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ExecutionRecord:
        return cls(
            tenant_id=row["tenant_id"],
            execution_id=row["execution_id"],
            pipeline_id=row["pipeline_id"],
            contract_version=row["contract_version"],
            release_version=row["release_version"],
            input_shape=row["input_shape"],
            result_shape=row["result_shape"],
            idempotency_key=row["idempotency_key"],
            input_fingerprint=row["input_fingerprint"],
            state=state_from_row(row),
            payload=(
                Envelope(row["payload_type_id"], row["payload_encoding"], row["payload"] or "")
                if row["payload_type_id"] is not None
                else None
            ),
            result=decode_result(row["result"]),
            created_at_ms=row["created_at_ms"],
            payload_ref=row["payload_ref"],
            result_ref=row["result_ref"],
            trace_parent=row.get("trace_parent"),
        )


def state_from_row(row: dict[str, Any]) -> ExecutionState:
    return ExecutionState(
        status=ExecutionStatus(row["status"]),
        step_index=row["step_index"],
        attempt=row["attempt"],
        version=row["version"],
        next_due_at_ms=row["next_due_at_ms"],
        updated_at_ms=row["updated_at_ms"],
        lease_owner=row["lease_owner"],
        lease_expires_at_ms=row["lease_expires_at_ms"],
        error_code=row["error_code"],
        error_message=row["error_message"],
        terminal_reason=row["terminal_reason"],
        consecutive_lease_expiries=row["consecutive_lease_expiries"],
        await_unit_id=row["await_unit_id"],
    )


def encode_result(envelopes: tuple[Envelope, ...]) -> str:
    return json.dumps(
        [to_json_dict(e) for e in envelopes],
        separators=(",", ":"),
        ensure_ascii=False,
    )


def decode_result(text: str | None) -> tuple[Envelope, ...] | None:
    if text is None:
        return None
    return tuple(
        Envelope(item["payloadTypeId"], item["payloadEncoding"], item["payload"])
        for item in json.loads(text)
    )


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    id: int
    tenant_id: str
    execution_id: str
    version: int
    event: str
    from_status: str | None
    to_status: str
    step_index: int
    attempt: int
    actor: str
    reason: str
    error_code: str | None
    error_message: str | None
    retryable: bool | None
    release_version: str
    occurred_at_ms: int

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> HistoryRecord:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class InteractionRecord:
    tenant_id: str
    interaction_id: str
    unit_id: str
    execution_id: str
    step_id: str
    step_index: int
    output_type: str
    correlation_id: str
    idempotency_key: str
    item_index: int | None
    status: InteractionStatus
    version: int
    request_payload: Any
    assignee: str | None
    group: str | None
    transport_type: str
    transport_metadata: dict[str, Any]
    deadline_ms: int
    created_at_ms: int
    updated_at_ms: int

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> InteractionRecord:
        return cls(
            tenant_id=row["tenant_id"],
            interaction_id=row["interaction_id"],
            unit_id=row["unit_id"],
            execution_id=row["execution_id"],
            step_id=row["step_id"],
            step_index=row["step_index"],
            output_type=row["output_type"],
            correlation_id=row["correlation_id"],
            idempotency_key=row["idempotency_key"],
            item_index=row["item_index"],
            status=InteractionStatus(row["status"]),
            version=row["version"],
            request_payload=row["request_payload"],
            assignee=row["assignee"],
            group=row["group"],
            transport_type=row["transport_type"],
            transport_metadata=row["transport_metadata"] or {},
            deadline_ms=row["deadline_ms"],
            created_at_ms=row["created_at_ms"],
            updated_at_ms=row["updated_at_ms"],
        )


@dataclass(frozen=True, slots=True)
class LockedInteraction:
    """An interaction read under its row lock, with what the completion needs of its await
    unit: version, status, how many items it expects and which interactions are its items."""

    interaction: InteractionRecord
    unit_version: int
    unit_status: AwaitUnitStatus
    unit_expected_item_count: int
    unit_item_interaction_ids: tuple[str, ...]

    @property
    def is_one_to_one(self) -> bool:
        """A classic await: one interaction without an item index, answered by its response."""
        return self.unit_expected_item_count == 1 and self.interaction.item_index is None


@dataclass(frozen=True, slots=True)
class UnitProgress:
    """The await unit after an item was answered."""

    completed: bool
    completed_item_count: int
    expected_item_count: int


@dataclass(frozen=True, slots=True)
class OverdueInteraction:
    """A pending interaction past its deadline, as the sweeper selects it (locked)."""

    tenant_id: str
    interaction_id: str
    unit_id: str
    execution_id: str


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    id: int
    tenant_id: str
    execution_id: str
    execution_version: int
    pipeline_id: str
    contract_version: str
    release_version: str
    step_index: int
    attempt: int
    transition_key: str
    terminal_reason: str
    error_code: str
    error_message: str
    retryable: bool
    created_at_ms: int
    redriven_at_ms: int | None
    redriven_by: str | None
    redrive_reason: str | None
    # The execution's idempotency key; None only if the execution row is gone.
    idempotency_key: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> DeadLetterRecord:
        return cls(**{field.name: row[field.name] for field in fields(cls)})


@dataclass(frozen=True, slots=True)
class OpenDeadLetters:
    """An execution with open dead letters, as a bulk redrive selects it."""

    execution_id: str
    first_created_at_ms: int
    first_id: int
    execution_version: int


@dataclass(frozen=True, slots=True)
class BacklogSnapshot:
    runnable: int
    oldest_runnable_age_s: float
    waiting_interactions: int
    open_dead_letters: int
    by_status: dict[str, int]
