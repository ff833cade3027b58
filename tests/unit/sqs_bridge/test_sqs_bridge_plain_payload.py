"""The bridge wraps plain JSON completions as tpf_envelope.encode does, with clear refusals."""

from __future__ import annotations

import pytest

from tpf_envelope import encode
from tpf_sqs_bridge.plain_payload import PlainPayloadError, wrap_plain_json

VALUES = [
    None,
    True,
    0,
    -(2**63),
    2**63,
    1.5,
    'text with \u00e9 and "quotes"',
    [],
    {},
    {"accepted": {"orderId": "o-1", "note": "fine", "total": 27.5, "tags": ["a", None, 3]}},
    [{"nested": [[{"deep": False}]]}],
]


@pytest.mark.parametrize("value", VALUES)
def test_wrapping_matches_the_envelope_library(value: object) -> None:
    expected = encode(value)
    wrapped = wrap_plain_json(value)
    assert (wrapped.payload_type_id, wrapped.payload_encoding, wrapped.payload) == (
        expected.payload_type_id,
        expected.payload_encoding,
        expected.payload,
    )


@pytest.mark.parametrize("value", [{"": 1}, {"a": {"  ": 1}}, float("nan"), object()])
def test_values_without_a_tpf_form_are_refused(value: object) -> None:
    with pytest.raises(PlainPayloadError):
        wrap_plain_json(value)


def test_nesting_is_bounded() -> None:
    value: object = 1
    for _ in range(100):
        value = [value]
    with pytest.raises(PlainPayloadError, match="nested more than"):
        wrap_plain_json(value)
