"""Decoding refuses exactly what TPF refuses, with the reason, message and path (TPF_WIRE §2)."""

from __future__ import annotations

import json

import pytest

from tpf_envelope import (
    DEFAULT_MAX_DEPTH,
    ENVELOPE_ENCODING,
    INPUT_SNAPSHOT,
    LIST,
    MAP,
    NULL,
    SET,
    STRING,
    TRANSITION_ENCODING,
    ApplicationValue,
    Envelope,
    InputShape,
    InputSnapshot,
    check_payload_size,
    decode,
    encode,
    envelope_json_text,
    payload_size_bytes,
    should_offload,
)
from tpf_errors import ErrorKind, InvalidArgument, ResourceExhausted

APP_TYPE = "org.pipelineframework.restaurantapproval.common.dto.RestaurantDecisionDto"


def envelope(type_id: str, payload: str, encoding: str = TRANSITION_ENCODING) -> Envelope:
    return Envelope(type_id, encoding, payload)


def container(type_id: str, items: object) -> Envelope:
    return envelope(type_id, json.dumps({"items": items}, separators=(",", ":")))


def nested(env: Envelope) -> dict[str, str]:
    loaded: dict[str, str] = json.loads(envelope_json_text(env))
    return loaded


def refused(env: Envelope, **options: object) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        decode(env, **options)  # type: ignore[arg-type]  # options are decode's keywords
    return caught.value


def test_null_envelope_decodes_to_none_and_needs_the_text_null() -> None:
    assert decode(envelope(NULL, "null")).value is None
    assert decode(envelope(NULL, " null ")).value is None
    error = refused(envelope(NULL, '""'))
    assert error.reason == "PAYLOAD_UNDECODABLE"
    assert error.message == (
        "Payload at $ does not decode as null: expected the text null, got a string."
    )


def test_set_decodes_to_a_list_in_wire_order() -> None:
    items = [nested(encode("b")), nested(encode("a"))]

    assert decode(container(SET, items)).value == ["b", "a"]


def test_missing_or_null_items_read_as_empty_like_tpf() -> None:
    assert decode(envelope(MAP, "{}")).value == {}
    assert decode(envelope(LIST, '{"items":null}')).value == []


def test_map_accepts_any_key_when_decoding() -> None:
    value = decode(container(MAP, {" ": nested(encode(1))})).value

    assert value == {" ": 1}


@pytest.mark.parametrize("encoding", [ENVELOPE_ENCODING, "application/json", ""])
def test_wrong_encoding_is_refused_with_tpf_message(encoding: str) -> None:
    error = refused(envelope(STRING, '"x"', encoding))

    assert error.kind is ErrorKind.INVALID_ARGUMENT
    assert error.reason == "PAYLOAD_ENCODING_UNSUPPORTED"
    assert error.message == f"Unsupported transition payload encoding: {encoding}"
    assert error.metadata == {"payloadEncoding": encoding, "path": "$"}


def test_wrong_encoding_of_a_nested_envelope_names_its_path() -> None:
    bad = nested(Envelope(STRING, "text/plain", '"x"'))
    outer = container(MAP, {"accepted": nested(container(MAP, {"orderId": bad}))})

    error = refused(outer)

    assert error.reason == "PAYLOAD_ENCODING_UNSUPPORTED"
    assert error.message == "Unsupported transition payload encoding: text/plain"
    assert error.metadata["path"] == "$.accepted.orderId"


@pytest.mark.parametrize(
    "type_id",
    ["com.example.Order", "java.util.HashMap", "java.lang.Object", "", "org.pipelineframework."],
)
def test_type_outside_the_allowed_prefixes_is_unsupported(type_id: str) -> None:
    error = refused(envelope(type_id, "{}"))

    assert error.reason == "PAYLOAD_TYPE_UNSUPPORTED"
    assert error.message == f"Unsupported transition payload type: {type_id}"
    assert error.metadata["payloadTypeId"] == type_id


def test_application_type_under_an_allowed_prefix_decodes_to_its_json() -> None:
    value = decode(envelope(APP_TYPE, '{"type":"accepted","accepted":{"note":"ok"}}')).value

    assert value == ApplicationValue(APP_TYPE, {"type": "accepted", "accepted": {"note": "ok"}})


def test_configured_prefixes_replace_the_default() -> None:
    custom = envelope("com.example.Order", '{"id":1}')

    assert decode(custom, allowed_prefixes=("com.example.",)).value == ApplicationValue(
        "com.example.Order", {"id": 1}
    )
    assert refused(envelope(APP_TYPE, "{}"), allowed_prefixes=("com.example.",)).reason == (
        "PAYLOAD_TYPE_UNSUPPORTED"
    )


def test_blank_prefixes_fall_back_to_the_default_like_tpf() -> None:
    assert decode(envelope(APP_TYPE, "{}"), allowed_prefixes=["", "  "]).type_id == APP_TYPE
    with pytest.raises(TypeError):
        decode(envelope(APP_TYPE, "{}"), allowed_prefixes="org.")


def test_jdk_scalars_and_snapshots_need_no_prefix() -> None:
    assert decode(envelope(STRING, '"x"'), allowed_prefixes=("com.example.",)).value == "x"
    snapshot = encode(InputSnapshot(InputShape.UNI, "x"))
    assert decode(snapshot, allowed_prefixes=("com.example.",)).value == InputSnapshot(
        InputShape.UNI, "x"
    )


def test_nested_type_refusal_names_the_path() -> None:
    outer = container(LIST, [nested(encode(1)), nested(envelope("com.example.X", "{}"))])

    error = refused(outer)

    assert error.reason == "PAYLOAD_TYPE_UNSUPPORTED"
    assert error.metadata["path"] == "$[1]"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            envelope(MAP, "{not json"),
            "Payload at $ does not decode as java.util.Map: not valid JSON",
        ),
        (envelope(MAP, "[]"), 'expected {"items": ...}, got an array'),
        (envelope(MAP, '{"items":{},"extra":1}'), 'unknown field "extra"; only "items" is allowed'),
        (envelope(MAP, '{"items":[]}'), "items must be an object, got an array"),
        (envelope(LIST, '{"items":{}}'), "items must be an array, got an object"),
        (envelope(APP_TYPE, "null"), "the text is null; a null payload has type id null"),
        (envelope(APP_TYPE, '{"a":1} trailing'), "not valid JSON"),
        (envelope(APP_TYPE, '{"a":Infinity}'), "Infinity is not a JSON number"),
    ],
)
def test_text_that_does_not_fit_the_type_is_undecodable(env: Envelope, message: str) -> None:
    error = refused(env)

    assert error.reason == "PAYLOAD_UNDECODABLE"
    assert message in error.message


@pytest.mark.parametrize(
    ("item", "detail"),
    [
        (None, "expected a JSON object, got null"),
        ("text", "expected a JSON object, got a string"),
        ({"payloadTypeId": STRING, "payloadEncoding": TRANSITION_ENCODING}, "payload is required"),
        (
            {"payloadTypeId": STRING, "payloadEncoding": TRANSITION_ENCODING, "payload": 1},
            "payload must be a string, got a number",
        ),
        (
            {**nested(encode("x")), "traceId": "t"},
            'unknown field "traceId"',
        ),
    ],
)
def test_malformed_nested_envelope_is_undecodable_at_its_path(item: object, detail: str) -> None:
    error = refused(container(MAP, {"order id": item}))

    assert error.reason == "PAYLOAD_UNDECODABLE"
    assert error.metadata == {"path": '$["order id"]', "detail": detail}
    assert error.message.startswith(f'Envelope at $["order id"] is malformed: {detail}.')


def test_undecodable_scalar_deep_inside_names_the_full_path() -> None:
    bad = nested(Envelope("java.util.UUID", TRANSITION_ENCODING, '"not-a-uuid"'))
    items = container(LIST, [nested(encode("ok")), nested(container(MAP, {"orderId": bad}))])
    outer = container(MAP, {"orders": nested(items)})

    error = refused(outer)

    assert error.metadata["path"] == "$.orders[1].orderId"
    assert error.message.startswith(
        "Payload at $.orders[1].orderId does not decode as java.util.UUID"
    )


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        ('{"shape":"BATCH","payload":null,"items":[]}', "shape must be UNI, MULTI or RAW"),
        ('{"payload":null}', "shape must be UNI, MULTI or RAW, got None"),
        ('{"shape":"UNI","payload":null,"items":[]}', "a UNI snapshot needs a payload envelope"),
        ('{"shape":"UNI","payload":null,"items":[],"x":1}', 'unknown field "x"'),
        ('{"shape":"MULTI","payload":{},"items":[]}', "keeps its inputs in items, not payload"),
    ],
)
def test_malformed_input_snapshot_is_undecodable(payload: str, detail: str) -> None:
    error = refused(envelope(INPUT_SNAPSHOT, payload))

    assert error.reason == "PAYLOAD_UNDECODABLE"
    assert detail in error.metadata["detail"]


def test_input_snapshot_decodes_to_shape_payload_and_items() -> None:
    one = nested(encode({"a": 1}))
    uni = envelope(INPUT_SNAPSHOT, json.dumps({"shape": "RAW", "payload": one, "items": []}))
    multi = envelope(
        INPUT_SNAPSHOT, json.dumps({"shape": "MULTI", "payload": None, "items": [one]})
    )

    assert decode(uni).value == InputSnapshot(InputShape.RAW, {"a": 1})
    assert decode(multi).value == InputSnapshot(InputShape.MULTI, None, ({"a": 1},))


def nest(depth: int) -> object:
    value: object = "leaf"
    for _ in range(depth - 1):
        value = [value]
    return value


def test_nesting_up_to_the_depth_limit_decodes() -> None:
    env = encode(nest(10), max_depth=10)

    assert decode(env, max_depth=10).value == nest(10)


def test_nesting_beyond_the_depth_limit_is_refused_with_the_limit() -> None:
    env = encode(nest(11), max_depth=11)

    error = refused(env, max_depth=10)

    assert error.reason == "PAYLOAD_UNDECODABLE"
    assert error.metadata == {"path": "$" + "[0]" * 10, "maxDepth": "10"}
    assert "nested more than 10 levels deep" in error.message


def test_application_json_nesting_counts_towards_the_depth_limit() -> None:
    deep = envelope(APP_TYPE, "[" * 10 + "]" * 10)

    assert decode(deep, max_depth=10).type_id == APP_TYPE
    assert refused(deep, max_depth=9).metadata["maxDepth"] == "9"
    hostile = envelope(APP_TYPE, "[" * 100_000 + "]" * 100_000)
    assert refused(hostile).reason == "PAYLOAD_UNDECODABLE"


def test_default_depth_limit_is_64_and_bounded() -> None:
    assert DEFAULT_MAX_DEPTH == 64
    with pytest.raises(ValueError, match="max_depth"):
        decode(encode(1), max_depth=10_000)


def test_payload_over_the_size_limit_is_resource_exhausted_with_both_sizes() -> None:
    env = encode("é" * 600)  # 1200 bytes of UTF-8 plus two quotes

    with pytest.raises(ResourceExhausted) as caught:
        decode(env, max_size_bytes=1000)

    error = caught.value
    assert error.reason == "PAYLOAD_TOO_LARGE"
    assert error.metadata == {"limitBytes": "1000", "sizeBytes": "1202"}
    assert error.message == (
        "Payload is 1202 bytes, over the limit of 1000 bytes; send a smaller payload."
    )
    assert decode(env, max_size_bytes=1202).value == "é" * 600


def test_size_is_utf8_bytes_of_the_payload_text_and_drives_offload() -> None:
    env = encode("x" * (256 * 1024 - 2))
    assert payload_size_bytes(env) == 256 * 1024
    assert not should_offload(env)
    assert should_offload(encode("x" * (256 * 1024 - 1)))
    assert check_payload_size(env) == 256 * 1024
    assert payload_size_bytes(Envelope(STRING, TRANSITION_ENCODING, '"\ud800"')) == 5
