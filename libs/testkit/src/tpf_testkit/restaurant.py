"""Restaurant-approval payloads as TPF clients send them (TPF_WIRE §11)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from tpf.common.v1 import payload_pb2

TRANSITION = "application/tpf-transition+json"
ORDER_TYPE = "org.pipelineframework.restaurantapproval.common.dto.PlaceRestaurantOrderRequestDto"


def order(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "requestId": str(uuid.uuid4()),
        "customerName": "Ada",
        "restaurantName": "Chez TPF",
        "items": "2x soup",
        "totalAmount": "27.50",
        "currency": "EUR",
    }
    body.update(overrides)
    return body


def order_envelope(**overrides: Any) -> payload_pb2.PayloadEnvelope:
    return payload_pb2.PayloadEnvelope(
        payload_type_id=ORDER_TYPE,
        payload_encoding=TRANSITION,
        payload=json.dumps(order(**overrides), separators=(",", ":")),
    )


def envelope(type_id: str, value: Any) -> payload_pb2.PayloadEnvelope:
    return payload_pb2.PayloadEnvelope(
        payload_type_id=type_id,
        payload_encoding=TRANSITION,
        payload=json.dumps(value, separators=(",", ":")),
    )
