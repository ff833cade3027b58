"""The `awaitSuspension` a worker returns when a run reaches an await step (TPF_WIRE §9.2).

It carries the await unit record and its interaction records, with exactly TPF's keys, and the
identifiers TPF derives from names (§5.3: MD5 name-based UUIDs, Java's
`UUID.nameUUIDFromBytes`). Interaction ids themselves are random, as in TPF. Field values in an
idempotency key are Jackson's `asText()` forms, so the keys match what a TPF worker would send.

A one-to-one await has one interaction with no item index. An itemized await has one
interaction per item: item `n` has `itemIndex` n and its idempotency key ends in `:item={n}`
(so each item has its own correlation id), and the unit's `expectedItemCount` is the number of
items.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
    request_payloads: Sequence[Any],
    itemized: bool,
    new_interaction_id: Callable[[], str],
    now_ms: int,
) -> dict[str, Any]:
    """The suspension for `step`, one interaction per request payload (plain JSON of the item).

    With `itemized` False there must be exactly one payload (a one-to-one await). The unit and
    interactions start WAITING: the coordinator creates them and dispatches the interactions on
    their transport. `causation_id` is the transition key that reached the await.
    """
    if not request_payloads:
        raise ValueError("an await needs at least one item")
    if not itemized and len(request_payloads) != 1:
        raise ValueError("a one-to-one await has exactly one item")
    settings = _settings_of(step)
    unit_id = await_unit_id(tenant_id, execution_id, step.service, step.index)
    deadline_ms = now_ms + int(settings.timeout.total_seconds() * 1000)
    ttl_epoch_s = deadline_ms // 1000 + RECORD_TTL_AFTER_DEADLINE_S
    interactions = [
        _interaction(
            tenant_id=tenant_id,
            execution_id=execution_id,
            causation_id=causation_id,
            step=step,
            settings=settings,
            unit_id=unit_id,
            interaction_id=new_interaction_id(),
            item_index=index if itemized else None,
            request_payload=payload,
            deadline_ms=deadline_ms,
            ttl_epoch_s=ttl_epoch_s,
            now_ms=now_ms,
        )
        for index, payload in enumerate(request_payloads)
    ]
    unit: dict[str, Any] = {
        "tenantId": tenant_id,
        "unitId": unit_id,
        "executionId": execution_id,
        "stepId": step.service,
        "stepIndex": step.index,
        "cardinality": step.cardinality,
        "version": 0,
        "status": "WAITING_EXTERNAL",
        "primaryInteractionId": interactions[0]["interactionId"],
        "expectedItemCount": len(interactions),
        "completedItemCount": 0,
        "completedItemKeys": [],
        "dispatchComplete": False,
        "createdAtEpochMs": now_ms,
        "updatedAtEpochMs": now_ms,
        "ttlEpochS": ttl_epoch_s,
    }
    return {
        "tenantId": tenant_id,
        "executionId": execution_id,
        "unitId": unit_id,
        "stepIndex": step.index,
        "unit": unit,
        "interactions": interactions,
    }


def _interaction(
    *,
    tenant_id: str,
    execution_id: str,
    causation_id: str,
    step: StepDefinition,
    settings: AwaitSettings,
    unit_id: str,
    interaction_id: str,
    item_index: int | None,
    request_payload: Any,
    deadline_ms: int,
    ttl_epoch_s: int,
    now_ms: int,
) -> dict[str, Any]:
    key = interaction_idempotency_key(
        execution_id,
        step.service,
        settings.idempotency_key_fields,
        # Key fields are read from an object; an item of another JSON kind has none of them.
        request_payload if isinstance(request_payload, Mapping) else None,
        item_index,
    )
    return {
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
        "itemIndex": item_index,
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


def _settings_of(step: StepDefinition) -> AwaitSettings:
    if step.awaiting is None:
        raise ValueError(f"step {step.name!r} is not an await step")
    return step.awaiting
