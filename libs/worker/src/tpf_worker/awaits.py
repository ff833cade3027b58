"""The `awaitSuspension` a worker returns when a run reaches an await step (TPF_WIRE §9.2).

It carries the await unit record and its one interaction record, with exactly TPF's keys, and
the identifiers TPF derives from names (§5.3: MD5 name-based UUIDs, Java's
`UUID.nameUUIDFromBytes`). The interaction id itself is random, as in TPF. Field values in an
idempotency key are Jackson's `asText()` forms, so the keys match what a TPF worker would send.
"""

from __future__ import annotations

from typing import Any, Final

from tpf_envelope.identifiers import await_unit_id, correlation_id, interaction_idempotency_key
from tpf_worker.pipeline import AwaitSettings, StepDefinition

RECORD_TTL_AFTER_DEADLINE_S: Final = 86_400


def await_suspension(
    *,
    tenant_id: str,
    execution_id: str,
    causation_id: str,
    step: StepDefinition,
    request_payload: Any,
    interaction_id: str,
    now_ms: int,
) -> dict[str, Any]:
    """The suspension for `step` with `request_payload` (plain JSON of the await's input).

    The unit and interaction start WAITING: the coordinator creates them and dispatches the
    interaction on its transport. `causation_id` is the transition key that reached the await.
    """
    settings = _settings_of(step)
    unit_id = await_unit_id(tenant_id, execution_id, step.service, step.index)
    key = interaction_idempotency_key(
        execution_id, step.service, settings.idempotency_key_fields, request_payload
    )
    deadline_ms = now_ms + int(settings.timeout.total_seconds() * 1000)
    ttl_epoch_s = deadline_ms // 1000 + RECORD_TTL_AFTER_DEADLINE_S
    unit: dict[str, Any] = {
        "tenantId": tenant_id,
        "unitId": unit_id,
        "executionId": execution_id,
        "stepId": step.service,
        "stepIndex": step.index,
        "cardinality": step.cardinality,
        "version": 0,
        "status": "WAITING_EXTERNAL",
        "primaryInteractionId": interaction_id,
        "expectedItemCount": 1,
        "completedItemCount": 0,
        "completedItemKeys": [],
        "dispatchComplete": False,
        "createdAtEpochMs": now_ms,
        "updatedAtEpochMs": now_ms,
        "ttlEpochS": ttl_epoch_s,
    }
    interaction: dict[str, Any] = {
        "tenantId": tenant_id,
        "executionId": execution_id,
        "stepId": step.service,
        "stepIndex": step.index,
        "outputType": step.output_type,
        "interactionId": interaction_id,
        "correlationId": correlation_id(
            settings.correlation_strategy, tenant_id, execution_id, step.service, key
        ),
        "causationId": causation_id,
        "idempotencyKey": key,
        "version": 0,
        "status": "WAITING",
        "requestPayload": request_payload,
        "responsePayload": None,
        "unitId": unit_id,
        "itemIndex": None,
        "actor": None,
        "assignee": None,
        "group": None,
        "transportType": settings.transport_type,
        "transportMetadata": {},
        "deadlineEpochMs": deadline_ms,
        "createdAtEpochMs": now_ms,
        "updatedAtEpochMs": now_ms,
        "ttlEpochS": ttl_epoch_s,
        "transportOutputType": settings.transport_output_type,
    }
    return {
        "tenantId": tenant_id,
        "executionId": execution_id,
        "unitId": unit_id,
        "stepIndex": step.index,
        "unit": unit,
        "interactions": [interaction],
    }


def _settings_of(step: StepDefinition) -> AwaitSettings:
    if step.awaiting is None:
        raise ValueError(f"step {step.name!r} is not an await step")
    return step.awaiting
