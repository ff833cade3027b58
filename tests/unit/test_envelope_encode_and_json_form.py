"""Encoding emits what TPF emits; the camelCase object form is strict (TPF_WIRE §2)."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest

from tpf_envelope import (
    BIG_DECIMAL,
    BIG_INTEGER,
    BOOLEAN,
    DOUBLE,
    INPUT_SNAPSHOT,
    LIST,
    LONG,
    MAP,
    NULL,
    SET,
    STRING,
    TRANSITION_ENCODING,
    ApplicationValue,
    Envelope,
    InputShape,
    InputSnapshot,
    Value,
    decode,
    encode,
    from_json_dict,
    plain,
    plain_json_text,
    to_json_dict,
)
from tpf_errors import InvalidArgument

APP_TYPE = "org.pipelineframework.demo.Order"


@pytest.mark.parametrize(
    ("value", "type_id", "text"),
    [
        (None, NULL, "null"),
        (True, BOOLEAN, "true"),
        (False, BOOLEAN, "false"),
        (0, LONG, "0"),
        (2**63 - 1, LONG, "9223372036854775807"),
        (2**63, BIG_INTEGER, "9223372036854775808"),
        (-(2**63) - 1, BIG_INTEGER, "-9223372036854775809"),
        (1.5, DOUBLE, "1.5"),
        (Decimal("27.50"), BIG_DECIMAL, "27.50"),
        ('café ☕ "q"\n', STRING, '"café ☕ \\"q\\"\\n"'),
        ([], LIST, '{"items":[]}'),
        ((), LIST, '{"items":[]}'),
        (set(), SET, '{"items":[]}'),
        ({}, MAP, '{"items":{}}'),
    ],
)
def test_value_encodes_to_tpf_type_id_and_compact_text(value: Any, type_id: str, text: str) -> None:
    assert encode(value) == Envelope(type_id, TRANSITION_ENCODING, text)


def test_bool_is_boolean_not_long_even_nested() -> None:
    envelope = encode({"flag": True, "count": 1})

    assert '"payloadTypeId":"java.lang.Boolean"' in envelope.payload
    assert '"payloadTypeId":"java.lang.Long"' in envelope.payload
    assert decode(envelope).value == {"flag": True, "count": 1}


def test_map_text_nests_envelope_objects_in_key_order() -> None:
    assert encode({"b": "x", "a": None}).payload == (
        '{"items":{"b":{"payloadTypeId":"java.lang.String","payloadEncoding":'
        '"application/tpf-transition+json","payload":"\\"x\\""},'
        '"a":{"payloadTypeId":"null","payloadEncoding":"application/tpf-transition+json",'
        '"payload":"null"}}}'
    )


def test_set_items_are_sorted_so_the_text_is_deterministic() -> None:
    assert encode(frozenset({"b", "c", "a"})) == encode({"c", "a", "b"})
    assert decode(encode({"b", "a"})).value == ["a", "b"]


def test_application_value_and_snapshot_encode_under_their_type_ids() -> None:
    app = ApplicationValue(APP_TYPE, {"total": Decimal("27.50"), "name": "Zoë"})
    assert encode(app) == Envelope(APP_TYPE, TRANSITION_ENCODING, '{"total":27.50,"name":"Zoë"}')

    snapshot = encode(InputSnapshot(InputShape.MULTI, None, ("x",)))
    assert snapshot.payload_type_id == INPUT_SNAPSHOT
    assert snapshot.payload.startswith('{"shape":"MULTI","payload":null,"items":[{')


@pytest.mark.parametrize(
    ("value", "path", "detail"),
    [
        ({"": 1}, "$", 'map keys must not be blank, got ""'),
        ({"a": {" \t\u2028": 1}}, "$.a", "map keys must not be blank"),
        ({1: "x"}, "$", "map keys must be strings, got a int"),
        ([1, math.nan], "$[1]", "nan has no JSON form"),
        ({"x": [Decimal("Infinity")]}, "$.x[0]", "Decimal Infinity has no JSON form"),
        (ApplicationValue(APP_TYPE, {"a": math.inf}), "$", "inf is not a JSON number"),
    ],
)
def test_value_without_a_tpf_form_is_refused_with_its_path(
    value: Any, path: str, detail: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        encode(value)

    assert caught.value.reason == "PAYLOAD_UNDECODABLE"
    assert caught.value.metadata["path"] == path
    assert detail in caught.value.metadata["detail"]


def test_java_blank_rules_decide_which_keys_are_allowed() -> None:
    # U+00A0 is whitespace to Python but not to Java's isBlank, so TPF accepts it as a key.
    assert decode(encode({"\u00a0": 1})).value == {"\u00a0": 1}


def test_encode_refuses_unknown_python_types_and_runaway_nesting() -> None:
    with pytest.raises(TypeError, match=r"cannot encode a bytes at \$\.a"):
        encode({"a": b"x"})
    looped: list[object] = []
    looped.append(looped)
    with pytest.raises(InvalidArgument, match="nested more than 64 levels deep"):
        encode(looped)


def test_application_value_must_name_an_application_class() -> None:
    for type_id in (STRING, MAP, "not a class", ""):
        with pytest.raises(ValueError, match="must name an application class"):
            ApplicationValue(type_id, {})
    with pytest.raises(ValueError, match="must not be None"):
        ApplicationValue(APP_TYPE, None)


def test_input_snapshot_shape_rules() -> None:
    with pytest.raises(ValueError, match="MULTI"):
        InputSnapshot(InputShape.MULTI, "x")
    with pytest.raises(ValueError, match="UNI"):
        InputSnapshot(InputShape.UNI, None, ("x",))
    assert InputSnapshot("RAW", 1).shape is InputShape.RAW  # type: ignore[arg-type]  # str coerced


def test_plain_turns_decoded_values_into_plain_json() -> None:
    value: dict[str, Value] = {
        "amount": Decimal("27.50"),
        "count": Decimal("3"),
        "big": Decimal("1E+2"),
        "order": ApplicationValue(APP_TYPE, {"id": Decimal("1.0")}),
        "snapshot": InputSnapshot(InputShape.MULTI, None, (1,)),
    }

    assert plain(value) == {
        "amount": 27.5,
        "count": 3,
        "big": 100,
        "order": {"id": 1.0},
        "snapshot": {"shape": "MULTI", "payload": None, "items": [1]},
    }
    assert isinstance(plain(Decimal("3")), int)
    assert plain_json_text(value) == (
        '{"amount":27.50,"count":3,"big":1E+2,"order":{"id":1.0},'
        '"snapshot":{"shape":"MULTI","payload":null,"items":[1]}}'
    )
    with pytest.raises(InvalidArgument, match=r"\$.huge"):
        plain({"huge": Decimal("1.5E+5000")})


def test_json_dict_form_round_trips_with_camel_case_keys_in_order() -> None:
    envelope = encode({"a": 1})
    obj = to_json_dict(envelope)

    assert list(obj) == ["payloadTypeId", "payloadEncoding", "payload"]
    assert from_json_dict(obj) == envelope


@pytest.mark.parametrize(
    ("obj", "detail"),
    [
        ([], "expected a JSON object, got an array"),
        ({"payloadEncoding": TRANSITION_ENCODING, "payload": "1"}, "payloadTypeId is required"),
        (
            {"payloadTypeId": None, "payloadEncoding": "e", "payload": "1"},
            "payloadTypeId is required",
        ),
        (
            {"payloadTypeId": LONG, "payloadEncoding": "e", "payload": 1},
            "payload must be a string, got a number",
        ),
        (
            {"payloadTypeId": LONG, "payloadEncoding": "e", "payload": "1", "extra": True},
            'unknown field "extra"',
        ),
    ],
)
def test_json_dict_form_is_strict(obj: object, detail: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        from_json_dict(obj)

    assert caught.value.reason == "PAYLOAD_UNDECODABLE"
    assert caught.value.metadata == {"path": "$", "detail": detail}


def test_json_dict_form_may_ignore_unknown_keys_for_lenient_outer_bodies() -> None:
    obj = {"payloadTypeId": LONG, "payloadEncoding": TRANSITION_ENCODING, "payload": "1", "x": 0}

    assert from_json_dict(obj, ignore_unknown_keys=True) == encode(1)
