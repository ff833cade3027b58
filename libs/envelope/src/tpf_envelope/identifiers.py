"""Identifiers TPF derives for await units and interactions (TPF_WIRE §5.3), bit for bit.

Shared by the coordinator (units it derives itself) and the worker SDK (await suspensions).

TPF uses Java's `UUID.nameUUIDFromBytes`: an MD5 name-based (version 3) UUID of the UTF-8 text,
with no namespace. Field values in idempotency keys are Jackson's `JsonNode.asText()` forms.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

# Strategies whose correlation id TPF derives without a strategy prefix.
_UNPREFIXED_CORRELATION_STRATEGIES = frozenset({"interactionId", "signedResumeToken"})
MISSING_FIELD_TEXT = "<null>"


def name_uuid(text: str) -> str:
    """Java `UUID.nameUUIDFromBytes(text.getBytes(UTF_8)).toString()`."""
    return str(uuid.UUID(bytes=hashlib.md5(text.encode("utf-8")).digest(), version=3))


def await_unit_id(tenant_id: str, execution_id: str, step_id: str, step_index: int) -> str:
    return name_uuid(f"{tenant_id}:{execution_id}:{step_id}:{step_index}")


def interaction_idempotency_key(
    execution_id: str,
    step_id: str,
    key_fields: Sequence[str],
    request_payload: Mapping[str, Any] | None,
    item_index: int | None = None,
) -> str:
    """The key an await interaction is created under (create-or-get).

    Without `idempotencyKeyFields` it is `{executionId}:{stepId}`; with them it is `{stepId}`
    followed by `:{field}={value}` per field, and holds no execution id. TPF looks keys up by
    tenant + step + key only, so a second execution with the same field values (the same
    `orderId`) is handed the first execution's open interaction. We keep TPF's key text, since it
    is visible on the wire, but the coordinator also scopes every lookup by execution id, so one
    execution never receives another's interaction (DESIGN §6).
    """
    if key_fields:
        parts = [step_id]
        for field in key_fields:
            value = None if request_payload is None else request_payload.get(field)
            parts.append(f"{field}={_field_text(value)}")
        key = ":".join(parts)
    else:
        key = f"{execution_id}:{step_id}"
    return key if item_index is None else f"{key}:item={item_index}"


def correlation_id(
    strategy: str, tenant_id: str, execution_id: str, step_id: str, idempotency_key: str
) -> str:
    basis = f"{tenant_id}:{execution_id}:{step_id}:{idempotency_key}"
    if strategy in _UNPREFIXED_CORRELATION_STRATEGIES:
        return name_uuid(basis)
    return name_uuid(f"{strategy}:{basis}")


def _field_text(value: object) -> str:
    """Jackson `asText()` of a JSON value; absent and JSON null both read `<null>` (as TPF)."""
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
    if isinstance(value, Mapping | Sequence):
        # Container nodes have no text form in Jackson.
        return ""
    return str(value)


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
