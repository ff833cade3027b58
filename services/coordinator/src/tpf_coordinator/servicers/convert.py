"""Conversions between coordinator records and tpf.coordinator.v1 messages."""

from __future__ import annotations

from google.protobuf import duration_pb2, timestamp_pb2

from tpf.common.v1 import (
    error_reason_pb2,
    execution_status_pb2,
    failure_pb2,
    payload_pb2,
    pinned_identity_pb2,
)
from tpf.coordinator.v1 import execution_pb2, work_service_pb2
from tpf.registry.v1 import release_pb2
from tpf_coordinator.domain.model import ExecutionStatus, HistoryEvent
from tpf_coordinator.store.records import ExecutionRecord, HistoryRecord
from tpf_coordinator.work_outcomes import Claimed
from tpf_envelope import Envelope
from tpf_errors import InvalidArgument

STATUS_TO_PROTO = {
    status: execution_status_pb2.ExecutionStatus.Value(f"EXECUTION_STATUS_{status.value}")
    for status in ExecutionStatus
}
STATUS_FROM_PROTO = {value: status for status, value in STATUS_TO_PROTO.items()}
EVENT_TO_PROTO = {
    event: execution_pb2.HistoryEvent.Value(f"HISTORY_EVENT_{event.value}")
    for event in HistoryEvent
}
INPUT_SHAPES = {
    execution_pb2.INPUT_SHAPE_UNI: "UNI",
    execution_pb2.INPUT_SHAPE_MULTI: "MULTI",
    execution_pb2.INPUT_SHAPE_RAW: "RAW",
}
INPUT_SHAPE_TO_PROTO = {name: value for value, name in INPUT_SHAPES.items()}
RESULT_SHAPE_TO_PROTO = {
    "SINGLE": execution_pb2.RESULT_SHAPE_SINGLE,
    "MATERIALIZED_MULTI": execution_pb2.RESULT_SHAPE_MATERIALIZED_MULTI,
}


def status_from_proto(value: int, field: str) -> ExecutionStatus:
    status: ExecutionStatus | None = STATUS_FROM_PROTO.get(value)  # type: ignore[call-overload]  # int vs the enum ValueType
    if status is None:
        raise InvalidArgument(
            "FIELD_INVALID", f"{field} must be a known execution status", field=field
        )
    return status


def envelope_from_proto(message: payload_pb2.PayloadEnvelope) -> Envelope:
    return Envelope(message.payload_type_id, message.payload_encoding, message.payload)


def envelope_to_proto(envelope: Envelope) -> payload_pb2.PayloadEnvelope:
    return payload_pb2.PayloadEnvelope(
        payload_type_id=envelope.payload_type_id,
        payload_encoding=envelope.payload_encoding,
        payload=envelope.payload,
    )


def identity_to_proto(record: ExecutionRecord) -> pinned_identity_pb2.PinnedIdentity:
    return pinned_identity_pb2.PinnedIdentity(
        tenant_id=record.tenant_id,
        pipeline_id=record.pipeline_id,
        contract_version=record.contract_version,
        release_version=record.release_version,
    )


def execution_to_proto(record: ExecutionRecord) -> execution_pb2.Execution:
    state = record.state
    message = execution_pb2.Execution(
        execution_id=record.execution_id,
        identity=identity_to_proto(record),
        status=STATUS_TO_PROTO[state.status],
        step_index=state.step_index,
        attempt=state.attempt,
        version=state.version,
        next_due_at_epoch_ms=state.next_due_at_ms,
        updated_at_epoch_ms=state.updated_at_ms,
        created_at_epoch_ms=record.created_at_ms,
        idempotency_key=record.idempotency_key,
        input_shape=INPUT_SHAPE_TO_PROTO[record.input_shape],
        result_shape=RESULT_SHAPE_TO_PROTO[record.result_shape],
        lease_owner=state.lease_owner,
        lease_expires_at_epoch_ms=state.lease_expires_at_ms,
        await_unit_id=state.await_unit_id,
        consecutive_lease_expiries=state.consecutive_lease_expiries,
        terminal_reason=state.terminal_reason,
    )
    if state.error_code is not None:
        message.error_code = state.error_code
    if state.error_message is not None:
        message.error_message = state.error_message
    return message


def status_view(record: ExecutionRecord) -> execution_pb2.ExecutionStatusView:
    state = record.state
    view = execution_pb2.ExecutionStatusView(
        execution_id=record.execution_id,
        status=STATUS_TO_PROTO[state.status],
        step_index=state.step_index,
        attempt=state.attempt,
        version=state.version,
        next_due_at_epoch_ms=state.next_due_at_ms,
        updated_at_epoch_ms=state.updated_at_ms,
    )
    if state.error_code is not None:
        view.error_code = state.error_code
    if state.error_message is not None:
        view.error_message = state.error_message
    return view


def history_to_proto(entry: HistoryRecord) -> execution_pb2.HistoryEntry:
    message = execution_pb2.HistoryEntry(
        sequence=entry.id,
        execution_id=entry.execution_id,
        to_status=STATUS_TO_PROTO[ExecutionStatus(entry.to_status)],
        version=entry.version,
        step_index=entry.step_index,
        attempt=entry.attempt,
        event=EVENT_TO_PROTO[HistoryEvent(entry.event)],
        actor=entry.actor,
        reason=entry.reason,
        occurred_at_epoch_ms=entry.occurred_at_ms,
        release_version=entry.release_version,
    )
    if entry.from_status is not None:
        message.from_status = STATUS_TO_PROTO[ExecutionStatus(entry.from_status)]
    if entry.error_code is not None:
        message.failure.CopyFrom(
            failure_pb2.Failure(
                error_code=entry.error_code,
                error_message=entry.error_message or "",
                retryable=bool(entry.retryable),
            )
        )
    return message


def _duration(ms: int | None) -> duration_pb2.Duration | None:
    if ms is None:
        return None
    value = duration_pb2.Duration()
    value.FromMilliseconds(ms)
    return value


def work_item(claimed: Claimed) -> work_service_pb2.WorkItem:
    record, step = claimed.record, claimed.step
    state = record.state
    expires = timestamp_pb2.Timestamp()
    expires.FromMilliseconds(state.lease_expires_at_ms)
    retry = step.retry
    item = work_service_pb2.WorkItem(
        execution_id=record.execution_id,
        identity=identity_to_proto(record),
        fencing_token=state.version,
        attempt=state.attempt,
        attempt_key=f"{record.execution_id}:{state.step_index}:{state.attempt}",
        step_index=state.step_index,
        stop_before_step_index=claimed.stop_before_step_index,
        result_shape=RESULT_SHAPE_TO_PROTO[record.result_shape],
        step=work_service_pb2.WorkStepDescriptor(
            step_index=step.index,
            step_id=step.step_id,
            kind=step.kind,
            cardinality=step.cardinality,
            input_type_id=step.input_type_id,
            output_type_id=step.output_type_id,
            retry_policy=release_pb2.RetryPolicy(
                max_retries=retry.max_retries,
                initial_delay=_duration(retry.initial_delay_ms),
                multiplier=retry.multiplier,
                max_delay=_duration(retry.max_delay_ms),
                jitter=retry.jitter,
            ),
        ),
        lease_expires_at=expires,
        trace_parent=record.trace_parent or "",
    )
    if record.payload is not None:
        item.input_payload.CopyFrom(envelope_to_proto(record.payload))
    return item


def error_reason_value(reason: str) -> error_reason_pb2.ErrorReason.ValueType:
    """An error's reason as the ErrorReason enum (INTERNAL for one it does not list)."""
    try:
        return error_reason_pb2.ErrorReason.Value(f"ERROR_REASON_{reason}")
    except ValueError:
        return error_reason_pb2.ERROR_REASON_INTERNAL
