"""Property tests: what `encode` writes, `decode` reads back unchanged (TPF_WIRE §2)."""

from __future__ import annotations

import json
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from tpf_envelope import (
    ApplicationValue,
    Envelope,
    InputShape,
    InputSnapshot,
    JsonValue,
    Value,
    decode,
    encode,
    plain,
)

# TPF refuses blank map keys when it encodes, so generated keys are never blank.
keys = st.text(min_size=1, max_size=8).filter(lambda key: key.strip() != "")
scalars: st.SearchStrategy[Value] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=12),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.floats(allow_nan=False, allow_infinity=False),
)
values: st.SearchStrategy[Value] = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(keys, children, max_size=4),
    ),
    max_leaves=20,
)
json_values: st.SearchStrategy[JsonValue] = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.text(max_size=8),
        st.decimals(allow_nan=False, allow_infinity=False),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


def same_types(left: object, right: object) -> bool:
    """Equality that also tells True from 1 and Decimal('1.0') from Decimal('1')."""
    if isinstance(left, dict) and isinstance(right, dict):
        return list(left) == list(right) and all(same_types(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(same_types, left, right))
    if isinstance(left, Decimal) and isinstance(right, Decimal):
        return left.as_tuple() == right.as_tuple()
    if isinstance(left, float) and isinstance(right, float):
        return left.hex() == right.hex()
    return type(left) is type(right) and left == right


@given(values)
def test_decode_of_encode_gives_back_the_value(value: Value) -> None:
    decoded = decode(encode(value), max_size_bytes=64 * 1024 * 1024)

    assert decoded.value == value
    assert same_types(decoded.value, value)


@given(values)
def test_encode_of_decoded_value_gives_back_the_same_text(value: Value) -> None:
    envelope = encode(value)

    assert encode(decode(envelope, max_size_bytes=64 * 1024 * 1024).value) == envelope


@given(values)
def test_plain_of_a_map_or_list_value_is_json_serialisable(value: Value) -> None:
    json.dumps(plain(value), allow_nan=False)


@given(json_values.filter(lambda value: value is not None))
def test_application_values_round_trip_exactly(json_value: JsonValue) -> None:
    value = ApplicationValue("org.pipelineframework.demo.Thing", json_value)

    envelope = encode(value)

    assert decode(envelope).value == value
    assert encode(decode(envelope).value) == envelope


@given(st.lists(values, max_size=3), values)
def test_input_snapshots_round_trip(items: list[Value], single: Value) -> None:
    for snapshot in (
        InputSnapshot(InputShape.MULTI, None, tuple(items)),
        InputSnapshot(InputShape.UNI, single),
        InputSnapshot(InputShape.RAW, single),
    ):
        envelope = encode(snapshot)
        assert isinstance(envelope, Envelope)
        assert decode(envelope, max_size_bytes=64 * 1024 * 1024).value == snapshot
