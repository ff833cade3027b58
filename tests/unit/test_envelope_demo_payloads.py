"""The restaurant demo's envelopes (TPF_WIRE §2, §11) decode, show and re-encode exactly."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from tpf_envelope import (
    MAP,
    STRING,
    TRANSITION_ENCODING,
    ApplicationValue,
    Envelope,
    decode,
    encode,
    from_json_dict,
    plain,
    plain_json_text,
    to_json_dict,
)

ORDER_ID = "5b0f2c1e-8a41-4c57-9a3e-2f6d1b7c9e10"
DECIDED_AT = "2026-08-22T17:48:23.123456Z"
ORDER_TYPE = "org.pipelineframework.restaurantapproval.common.dto.PlaceRestaurantOrderRequestDto"


def demo_client_envelope(value: Any) -> dict[str, str]:
    """What TPF's demo client posts for `value`: Map/List envelopes nest, scalars by Python type."""
    if isinstance(value, dict):
        items = {str(key): demo_client_envelope(item) for key, item in value.items()}
        return _demo(MAP, {"items": items})
    if isinstance(value, list):
        return _demo("java.util.List", {"items": [demo_client_envelope(item) for item in value]})
    if value is None:
        return {"payloadTypeId": "null", "payloadEncoding": TRANSITION_ENCODING, "payload": "null"}
    type_id = {str: STRING, bool: "java.lang.Boolean", int: "java.lang.Long"}[type(value)]
    return _demo(type_id, value)


def _demo(type_id: str, payload: Any) -> dict[str, str]:
    text = json.dumps(payload, separators=(",", ":"))
    return {"payloadTypeId": type_id, "payloadEncoding": TRANSITION_ENCODING, "payload": text}


DECISION = {"accepted": {"orderId": ORDER_ID, "decidedAt": DECIDED_AT, "note": "Approved by Cafe"}}


def test_demo_decision_envelope_decodes_to_the_nested_decision() -> None:
    envelope = from_json_dict(demo_client_envelope(DECISION))

    decoded = decode(envelope)

    assert decoded.type_id == MAP
    assert decoded.value == DECISION
    assert isinstance(decoded.value, dict)
    accepted = decoded.value["accepted"]
    assert isinstance(accepted, dict)
    assert list(accepted) == ["orderId", "decidedAt", "note"]
    assert decoded.envelope == envelope


def test_demo_decision_envelope_re_encodes_to_the_same_text() -> None:
    sent = demo_client_envelope(DECISION)

    again = encode(decode(from_json_dict(sent)).value)

    assert to_json_dict(again) == sent
    assert json.dumps(to_json_dict(again)) == json.dumps(sent)


def test_demo_decision_inner_payloads_are_strings_nested_three_deep() -> None:
    envelope = encode(DECISION)
    outer = json.loads(envelope.payload)
    accepted = outer["items"]["accepted"]
    assert accepted["payloadTypeId"] == MAP
    order_id = json.loads(accepted["payload"])["items"]["orderId"]
    assert order_id == {
        "payloadTypeId": STRING,
        "payloadEncoding": TRANSITION_ENCODING,
        "payload": json.dumps(ORDER_ID),
    }


def test_incident_decision_with_an_invalid_uuid_still_decodes_as_a_plain_map() -> None:
    incident = {"accepted": {"orderId": "not-a-uuid", "decidedAt": DECIDED_AT, "note": "bad"}}

    decoded = decode(from_json_dict(demo_client_envelope(incident)))

    assert decoded.value == incident


def test_demo_order_submission_decodes_to_its_application_json_with_exact_amount() -> None:
    order: dict[str, Any] = {
        "requestId": "0d9c4c1a-7e44-4a55-b6c2-5f3c1b0a9d88",
        "customerName": "Ada",
        "restaurantName": "Chez TPF",
        "items": "Margherita Pizza, Sparkling Water",
        "totalAmount": "27.50",
        "currency": "EUR",
    }
    envelope = Envelope(ORDER_TYPE, TRANSITION_ENCODING, json.dumps(order, separators=(",", ":")))

    decoded = decode(envelope)

    assert decoded.value == ApplicationValue(ORDER_TYPE, order)
    assert encode(decoded.value) == envelope
    assert plain(decoded.value) == order


def test_pending_approval_request_payload_is_plain_json_with_both_timestamp_forms() -> None:
    text = (
        '{"id":null,"orderId":"' + ORDER_ID + '","totalAmount":27.50,'
        '"createdAt":1766412345.123456789,"validatedAt":"2026-08-22T17:48:23.123456Z"}'
    )
    pending_type = ORDER_TYPE.replace("PlaceRestaurantOrderRequestDto", "PendingApprovalDto")
    decoded = decode(Envelope(pending_type, TRANSITION_ENCODING, text))

    shown = plain(decoded.value)

    assert shown == {
        "id": None,
        "orderId": ORDER_ID,
        "totalAmount": 27.5,
        "createdAt": 1766412345.1234567,
        "validatedAt": "2026-08-22T17:48:23.123456Z",
    }
    assert plain_json_text(decoded.value) == text
    assert isinstance(decoded.value, ApplicationValue)
    assert isinstance(decoded.value.json_value, dict)
    assert decoded.value.json_value["createdAt"] == Decimal("1766412345.123456789")
