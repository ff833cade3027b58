"""Submission input admission by shape (TPF_WIRE §3.1) and the step-0 snapshot (§9.1)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tpf_envelope import (
    INPUT_SNAPSHOT,
    LIST,
    NULL,
    SET,
    TRANSITION_ENCODING,
    ApplicationValue,
    Envelope,
    InputShape,
    InputSnapshot,
    check_submission_input,
    decode,
    encode,
    envelope_json_text,
    input_snapshot,
    to_json_dict,
)
from tpf_errors import InvalidArgument

ORDER_TYPE = "org.pipelineframework.restaurantapproval.common.dto.PlaceRestaurantOrderRequestDto"
OTHER_TYPE = "org.pipelineframework.restaurantapproval.common.dto.TerminalOrderStateDto"
ORDER: dict[str, Any] = {
    "requestId": "0d9c4c1a-7e44-4a55-b6c2-5f3c1b0a9d88",
    "totalAmount": "27.50",
}


def order_envelope(type_id: str = ORDER_TYPE) -> Envelope:
    return Envelope(type_id, TRANSITION_ENCODING, json.dumps(ORDER, separators=(",", ":")))


def admit(env: Envelope, shape: str, first_type: str | None = ORDER_TYPE) -> object:
    return check_submission_input(env, input_shape=shape, first_step_input_type_id=first_type).value


def refused(env: Envelope, shape: str, first_type: str | None = ORDER_TYPE) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        check_submission_input(env, input_shape=shape, first_step_input_type_id=first_type)
    return caught.value


def test_uni_accepts_the_first_steps_type_a_generic_map_null_and_scalars() -> None:
    assert admit(order_envelope(), "UNI") == ApplicationValue(ORDER_TYPE, ORDER)
    assert admit(encode(ORDER), "UNI") == ORDER
    assert admit(encode(None), "UNI") is None
    assert admit(encode([ORDER]), "UNI") == [ORDER]
    assert admit(encode("text"), "UNI") == "text"


def test_uni_refuses_another_application_type_naming_both_types() -> None:
    error = refused(order_envelope(OTHER_TYPE), "UNI")

    assert error.reason == "PAYLOAD_UNDECODABLE"
    assert error.message == (
        f"Invalid request payload: the input at $ is a {OTHER_TYPE}, but the pipeline's first "
        f"step takes {ORDER_TYPE}; send that type or a java.util.Map."
    )
    assert error.metadata == {
        "path": "$",
        "payloadTypeId": OTHER_TYPE,
        "expectedTypeId": ORDER_TYPE,
    }


def test_unknown_first_step_type_keeps_every_concrete_type_like_tpf() -> None:
    assert admit(order_envelope(OTHER_TYPE), "UNI", None) == ApplicationValue(OTHER_TYPE, ORDER)


def test_uni_refuses_an_input_snapshot_as_submission_input() -> None:
    snapshot = encode(InputSnapshot(InputShape.UNI, ORDER))

    assert refused(snapshot, "UNI").metadata["payloadTypeId"] == INPUT_SNAPSHOT


@pytest.mark.parametrize("env", [encode([ORDER, ORDER]), encode({"x", "y"}), encode(None)])
def test_multi_accepts_list_set_and_null(env: Envelope) -> None:
    decoded = check_submission_input(env, input_shape="MULTI", first_step_input_type_id=ORDER_TYPE)

    assert decoded.type_id in {LIST, SET, NULL}


@pytest.mark.parametrize("env", [encode(ORDER), encode("x"), order_envelope()])
def test_multi_refuses_anything_but_a_collection_or_null(env: Envelope) -> None:
    error = refused(env, "MULTI")

    assert error.reason == "PAYLOAD_UNDECODABLE"
    assert error.message == (
        "Invalid request payload: a MULTI input must be a java.util.List, java.util.Set or null "
        f"payload, not {env.payload_type_id}."
    )
    assert error.metadata == {"inputShape": "MULTI", "payloadTypeId": env.payload_type_id}


def test_multi_checks_each_items_application_type() -> None:
    items = [json.loads(envelope_json_text(order_envelope(t))) for t in (ORDER_TYPE, OTHER_TYPE)]
    env = Envelope(LIST, TRANSITION_ENCODING, json.dumps({"items": items}))

    error = refused(env, "MULTI")

    assert error.metadata["path"] == "$[1]"
    assert error.metadata["payloadTypeId"] == OTHER_TYPE


def test_raw_passes_any_decodable_payload_as_is() -> None:
    assert admit(order_envelope(OTHER_TYPE), "RAW") == ApplicationValue(OTHER_TYPE, ORDER)
    assert admit(encode("x"), "RAW") == "x"


def test_admission_still_refuses_undecodable_input() -> None:
    bad = Envelope(ORDER_TYPE, TRANSITION_ENCODING, "{")

    assert refused(bad, "RAW").reason == "PAYLOAD_UNDECODABLE"
    assert refused(Envelope("com.x.Y", TRANSITION_ENCODING, "{}"), "UNI").reason == (
        "PAYLOAD_TYPE_UNSUPPORTED"
    )


def test_unknown_input_shape_is_a_field_error() -> None:
    error = refused(encode(1), "BATCH")

    assert error.reason == "FIELD_INVALID"
    assert error.metadata["field"] == "inputShape"


def test_uni_snapshot_embeds_the_submitted_envelope_unchanged() -> None:
    submitted = Envelope("java.lang.Integer", TRANSITION_ENCODING, " 7 ")
    decoded = check_submission_input(
        submitted, input_shape="UNI", first_step_input_type_id=ORDER_TYPE
    )

    snapshot = input_snapshot(InputShape.UNI, decoded)

    assert snapshot.payload_type_id == INPUT_SNAPSHOT
    assert json.loads(snapshot.payload) == {
        "shape": "UNI",
        "payload": to_json_dict(submitted),
        "items": [],
    }
    assert snapshot.payload.startswith('{"shape":"UNI","payload":{"payloadTypeId":')
    assert decode(snapshot).value == InputSnapshot(InputShape.UNI, 7)


def test_multi_snapshot_lists_each_item_envelope_and_null_means_none() -> None:
    decoded = check_submission_input(
        encode(["a", {"b": 1}]), input_shape="MULTI", first_step_input_type_id=ORDER_TYPE
    )

    snapshot = input_snapshot("MULTI", decoded)

    assert json.loads(snapshot.payload) == {
        "shape": "MULTI",
        "payload": None,
        "items": [to_json_dict(encode("a")), to_json_dict(encode({"b": 1}))],
    }
    assert decode(snapshot).value == InputSnapshot(InputShape.MULTI, None, ("a", {"b": 1}))
    empty = check_submission_input(encode(None), input_shape="MULTI", first_step_input_type_id="")
    assert input_snapshot("MULTI", empty).payload == '{"shape":"MULTI","payload":null,"items":[]}'


def test_snapshot_from_the_helper_matches_encoding_the_snapshot_value() -> None:
    decoded = check_submission_input(
        encode({"a": [1, 2]}), input_shape="RAW", first_step_input_type_id=None
    )

    assert input_snapshot("RAW", decoded) == encode(InputSnapshot(InputShape.RAW, {"a": [1, 2]}))
