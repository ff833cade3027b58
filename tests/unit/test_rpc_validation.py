"""Request edge checks: required fields, AIP-158 page sizes and opaque page tokens."""

import base64
import json

import pytest

from tpf_errors import InvalidArgument
from tpf_rpc.validation import (
    decode_page_token,
    encode_page_token,
    filters_hash,
    page_size,
    required,
)


def test_required_strips_and_returns_the_value() -> None:
    assert required("  tenant-a \n", "tenant_id") == "tenant-a"


@pytest.mark.parametrize("value", ["", "   ", "\t\n"])
def test_required_refuses_blank_values_naming_the_field(value: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        required(value, "tenant_id")
    assert raised.value.reason == "FIELD_REQUIRED"
    assert raised.value.metadata == {"field": "tenant_id"}


@pytest.mark.parametrize(
    ("requested", "expected"),
    [(0, 50), (1, 1), (50, 50), (1000, 1000), (1001, 1000), (10**9, 1000)],
)
def test_page_size_defaults_and_coerces(requested: int, expected: int) -> None:
    assert page_size(requested) == expected


def test_page_size_uses_the_callers_bounds() -> None:
    assert page_size(0, default=10, maximum=20) == 10
    assert page_size(30, default=10, maximum=20) == 20


def test_negative_page_size_is_out_of_range() -> None:
    with pytest.raises(InvalidArgument) as raised:
        page_size(-1)
    assert raised.value.reason == "FIELD_OUT_OF_RANGE"
    assert raised.value.metadata == {"field": "page_size", "value": "-1", "min": "0", "max": "1000"}


def test_page_token_round_trips_its_cursor() -> None:
    hashed = filters_hash(tenant="t", status="RUNNING")
    cursor: dict[str, str | int] = {"created_at_epoch_ms": 1_700_000_000_000, "execution_id": "e-9"}
    token = encode_page_token(cursor, hashed)
    assert "=" not in token and "+" not in token and "/" not in token
    assert decode_page_token(token, hashed) == cursor


def test_page_token_for_other_filters_is_invalid() -> None:
    token = encode_page_token({"id": "e-1"}, filters_hash(status="RUNNING"))
    with pytest.raises(InvalidArgument) as raised:
        decode_page_token(token, filters_hash(status="FAILED"))
    assert raised.value.reason == "PAGE_TOKEN_INVALID"


def _b64(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "!!!not-base64!!!",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        _b64("a string"),
        _b64(["c", "f"]),
        _b64({"f": "h"}),
        _b64({"c": "not-a-dict", "f": "h"}),
        _b64({"c": {"x": 1.5}, "f": "h"}),
        _b64({"c": {"x": True}, "f": "h"}),
        _b64({"c": {"x": None}, "f": "h"}),
    ],
)
def test_malformed_page_tokens_are_invalid(token: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        decode_page_token(token, "h")
    assert raised.value.reason == "PAGE_TOKEN_INVALID"


def test_filters_hash_ignores_argument_order_and_tells_values_apart() -> None:
    assert filters_hash(a="1", b=2) == filters_hash(b=2, a="1")
    assert filters_hash(a="1") != filters_hash(a=1)
    assert filters_hash(a=None) != filters_hash()
    assert filters_hash(tenant="t-a") != filters_hash(tenant="t-b")
