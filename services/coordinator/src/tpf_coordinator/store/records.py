"""Rows as the coordinator reads them back: an execution with its identity and payloads."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

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
