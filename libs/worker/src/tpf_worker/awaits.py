"""The `awaitSuspension` a worker returns when a run reaches an await step (TPF_WIRE §9.2).

It carries the await unit record and its one interaction record, with exactly TPF's keys, and
the identifiers TPF derives from names (§5.3: MD5 name-based UUIDs, Java's
`UUID.nameUUIDFromBytes`). The interaction id itself is random, as in TPF. Field values in an
idempotency key are Jackson's `asText()` forms, so the keys match what a TPF worker would send.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

from tpf_worker.pipeline import AwaitSettings, StepDefinition

MISSING_FIELD_TEXT: Final = "<null>"
RECORD_TTL_AFTER_DEADLINE_S: Final = 86_400
_UNPREFIXED_CORRELATION: Final = frozenset({"interactionId", "signedResumeToken"})


def name_uuid(text: str) -> str:
    """Java `UUID.nameUUIDFromBytes(text.getBytes(UTF_8)).toString()`."""
    return str(uuid.UUID(bytes=hashlib.md5(text.encode("utf-8")).digest(), version=3))


def await_unit_id(tenant_id: str, execution_id: str, step_id: str, step_index: int) -> str:
    return name_uuid(f"{tenant_id}:{execution_id}:{step_id}:{step_index}")


def interaction_idempotency_key(
    execution_id: str, step_id: str, key_fields: Sequence[str], request_payload: object
) -> str:
    """`{executionId}:{stepId}` without key fields, else `{stepId}:{field}={value}...`."""
    if not key_fields:
        return f"{execution_id}:{step_id}"
    payload = request_payload if isinstance(request_payload, Mapping) else {}
    parts = [step_id, *(f"{field}={_field_text(payload.get(field))}" for field in key_fields)]
    return ":".join(parts)


def correlation_id(
    strategy: str, tenant_id: str, execution_id: str, step_id: str, idempotency_key: str
) -> str:
    basis = f"{tenant_id}:{execution_id}:{step_id}:{idempotency_key}"
    if strategy in _UNPREFIXED_CORRELATION:
        return name_uuid(basis)
    return name_uuid(f"{strategy}:{basis}")


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


def _field_text(value: object) -> str:
    """Jackson `asText()` of a JSON value; absent and null both read `<null>` (as TPF)."""
    if value is None:
        return MISSING_FIELD_TEXT
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        # TPF's codec mapper reads JSON decimals as doubles.
        return java_double_text(float(value))
    if isinstance(value, str):
        return value
    # Containers have no text form in Jackson.
    return ""


def java_double_text(value: float) -> str:
    """Java `Double.toString` (JDK 19+ shortest form): `1.0`, `0.001`, `1.0E7`, `1.5E-4`."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    magnitude = abs(value)
    if magnitude == 0.0:
        return f"{sign}0.0"
    # repr gives the shortest digits that round-trip, as Java does since JDK 19.
    parts = Decimal(repr(magnitude)).as_tuple()
    all_digits = "".join(str(digit) for digit in parts.digits)
    exponent = len(all_digits) + int(parts.exponent) - 1
    digits = all_digits.rstrip("0") or "0"
    if 1e-3 <= magnitude < 1e7:
        if exponent >= 0:
            whole = digits[: exponent + 1].ljust(exponent + 1, "0")
            fraction = digits[exponent + 1 :] or "0"
            return f"{sign}{whole}.{fraction}"
        return f"{sign}0.{'0' * (-exponent - 1)}{digits}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{exponent}"
