"""The restaurant order's types: their TPF type ids and JSON shapes (TPF_WIRE §11).

The four class types carry an `id` UUID as their first key: random in each object a step
creates, null on a submitted order that did not send one. Timestamps are written as Java's
`Instant.toString` prints them; amounts as exact decimals.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Final

from restaurant_approval.java_values import (
    JavaInstant,
    jackson_text,
    jackson_uuid,
    java_big_decimal,
)
from tpf_worker import InputDecodeError

PIPELINE_ID: Final = "org.pipelineframework.restaurantapproval"
_DTO: Final = "org.pipelineframework.restaurantapproval.common.dto."
PLACE_ORDER_TYPE: Final = _DTO + "PlaceRestaurantOrderRequestDto"
VALIDATED_ORDER_TYPE: Final = _DTO + "ValidatedRestaurantOrderRequestDto"
PENDING_APPROVAL_TYPE: Final = _DTO + "PendingRestaurantApprovalDto"
DECISION_TYPE: Final = _DTO + "RestaurantDecisionDto"
TERMINAL_STATE_TYPE: Final = _DTO + "TerminalOrderStateDto"

_ORDER_FIELDS: Final = (
    "id",
    "requestId",
    "customerName",
    "restaurantName",
    "items",
    "totalAmount",
    "currency",
)
_TEXT_FIELDS: Final = ("customerName", "restaurantName", "items", "currency")
_UUID_FIELDS: Final = ("id", "requestId")


def bind_order_request(value: Any) -> dict[str, Any]:
    """A submitted PlaceRestaurantOrderRequestDto, bound as Jackson binds it.

    Unknown fields, a UUID field that is not a UUID, an amount that is not a number and a
    text field holding an object or array all fail with `InputDecodeError`: the order can never
    be processed as sent.
    """
    if not isinstance(value, Mapping):
        raise InputDecodeError(f"{PLACE_ORDER_TYPE} must be a JSON object")
    unknown = [key for key in value if key not in _ORDER_FIELDS]
    if unknown:
        raise InputDecodeError(
            f'Unrecognized field "{unknown[0]}" (class {PLACE_ORDER_TYPE}), not marked as ignorable'
        )
    bound: dict[str, Any] = {}
    for name in _ORDER_FIELDS:
        raw = value.get(name)
        try:
            bound[name] = _bind_field(name, raw)
        except ValueError as error:
            raise InputDecodeError(f"{PLACE_ORDER_TYPE}.{name}: {error}") from None
    return bound


def validated_order(order: Mapping[str, Any], *, validated_at: JavaInstant) -> dict[str, Any]:
    """ValidatedRestaurantOrderRequest: the order's fields plus `validatedAt`."""
    return {
        "id": _new_id(),
        **{name: order.get(name) for name in _ORDER_FIELDS if name != "id"},
        "validatedAt": str(validated_at),
    }


def pending_approval(validated: Mapping[str, Any], *, created_at: JavaInstant) -> dict[str, Any]:
    """PendingRestaurantApproval: a new random `orderId` and the order's fields."""
    return {
        "id": _new_id(),
        "orderId": _new_id(),
        **{name: validated.get(name) for name in _ORDER_FIELDS if name != "id"},
        "createdAt": str(created_at),
    }


def _bind_field(name: str, raw: object) -> object:
    if raw is None:
        return None
    if name in _UUID_FIELDS:
        if not isinstance(raw, str):
            raise ValueError("a UUID must be a JSON string")
        return jackson_uuid(raw)
    if name == "totalAmount":
        return java_big_decimal(raw)
    if isinstance(raw, Mapping | list):
        raise ValueError("expected text, got a JSON object or array")
    return jackson_text(raw)


def _new_id() -> str:
    return str(uuid.uuid4())
