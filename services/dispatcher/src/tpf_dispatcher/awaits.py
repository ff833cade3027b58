"""A worker's `awaitSuspension` JSON (TPF_WIRE §9.2) as the coordinator's AwaitRequestedOutcome.

The JSON is parsed into `tpf.worker.v1.AwaitSuspension`, whose protobuf JSON mapping is TPF's
camelCase shape, so field names and types are checked by the protobuf parser rather than by
hand. TPF writes enum values without their prefix (`"WAITING"`), which the parser would not
accept, so the two status fields are prefixed first.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from google.protobuf import json_format

from tpf.coordinator.v1 import interaction_pb2
from tpf.coordinator.v1 import work_service_pb2 as wpb
from tpf.worker.v1 import result_pb2


class InvalidAwaitSuspension(ValueError):
    """The worker's awaitSuspension cannot be turned into an await outcome; str() says why."""


_UNIT_STATUS_PREFIX = "AWAIT_UNIT_STATUS_"
_INTERACTION_STATUS_PREFIX = "INTERACTION_STATUS_"


def await_requested(
    suspension: Mapping[str, Any], *, fallback_deadline_epoch_ms: int
) -> wpb.AwaitRequestedOutcome:
    """The await outcome for `suspension`.

    The deadline is the latest interaction deadline; `fallback_deadline_epoch_ms` (now + the
    step's timeout) applies when the worker set none.
    """
    parsed = _parse(suspension)
    if not parsed.unit_id.strip():
        raise InvalidAwaitSuspension("awaitSuspension.unitId is blank")
    if not parsed.interactions:
        raise InvalidAwaitSuspension("awaitSuspension.interactions is empty")
    outcome = wpb.AwaitRequestedOutcome(
        await_step_index=parsed.step_index,
        unit_id=parsed.unit_id,
        interactions=[_spec(record) for record in parsed.interactions],
    )
    if parsed.HasField("unit"):
        outcome.unit.CopyFrom(parsed.unit)
    deadlines = [r.deadline_epoch_ms for r in parsed.interactions if r.deadline_epoch_ms > 0]
    outcome.deadline_epoch_ms = max(deadlines) if deadlines else fallback_deadline_epoch_ms
    return outcome


def _json_numbers(value: Any) -> Any:
    """Exact decimals (the worker protocol keeps `27.50` as a Decimal) as the float that
    `google.protobuf.Value` holds; `requestPayload` is shown to people, never computed with."""
    if isinstance(value, Decimal):
        return (
            int(value)
            if value == value.to_integral_value() and "." not in str(value)
            else float(value)
        )
    if isinstance(value, Mapping):
        return {key: _json_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_numbers(item) for item in value]
    return value


def _parse(suspension: Mapping[str, Any]) -> result_pb2.AwaitSuspension:
    document = _json_numbers(dict(suspension))
    unit = document.get("unit")
    if isinstance(unit, Mapping):
        document["unit"] = _prefixed_status(unit, _UNIT_STATUS_PREFIX)
    interactions = document.get("interactions")
    if isinstance(interactions, list):
        document["interactions"] = [
            _prefixed_status(record, _INTERACTION_STATUS_PREFIX)
            if isinstance(record, Mapping)
            else record
            for record in interactions
        ]
    try:
        return json_format.ParseDict(document, result_pb2.AwaitSuspension())
    except json_format.ParseError as error:
        raise InvalidAwaitSuspension(f"awaitSuspension is invalid: {error}") from None


def _prefixed_status(record: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    copy = dict(record)
    status = copy.get("status")
    if isinstance(status, str) and status and not status.startswith(prefix):
        copy["status"] = prefix + status
    return copy


def _spec(record: result_pb2.AwaitInteractionRecord) -> wpb.AwaitInteractionSpec:
    interaction = interaction_pb2.Interaction(
        interaction_id=record.interaction_id,
        correlation_id=record.correlation_id,
        execution_id=record.execution_id,
        step_id=record.step_id,
        step_index=record.step_index,
        output_type=record.output_type,
        status=record.status,
        transport_type=record.transport_type,
        deadline_epoch_ms=record.deadline_epoch_ms,
        created_at_epoch_ms=record.created_at_epoch_ms,
        updated_at_epoch_ms=record.updated_at_epoch_ms,
    )
    if record.HasField("request_payload"):
        interaction.request_payload.CopyFrom(record.request_payload)
    if record.HasField("transport_metadata"):
        interaction.transport_metadata.CopyFrom(record.transport_metadata)
    if record.HasField("assignee"):
        interaction.assignee = record.assignee
    if record.HasField("group"):
        interaction.group = record.group
    spec = wpb.AwaitInteractionSpec(
        interaction=interaction,
        idempotency_key=record.idempotency_key,
        causation_id=record.causation_id,
        transport_output_type=record.transport_output_type,
    )
    if record.HasField("item_index"):
        spec.item_index = record.item_index
    return spec
