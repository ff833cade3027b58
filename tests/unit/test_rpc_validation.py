"""Request edge checks: required fields, AIP-158 page sizes, the filters fingerprint."""

import pytest

from tpf_errors import InvalidArgument
from tpf_rpc.validation import (
    MAX_IDENTIFIER_CHARS,
    filters_hash,
    optional,
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


def test_required_refuses_values_over_the_limit_naming_it() -> None:
    assert required("x" * MAX_IDENTIFIER_CHARS, "executionId") == "x" * MAX_IDENTIFIER_CHARS
    with pytest.raises(InvalidArgument) as raised:
        required("x" * 5_000, "executionId")
    assert raised.value.reason == "FIELD_INVALID"
    assert raised.value.metadata == {
        "field": "executionId",
        "maxLength": str(MAX_IDENTIFIER_CHARS),
        "length": "5000",
    }
    assert f"at most {MAX_IDENTIFIER_CHARS} characters" in raised.value.message
    assert "xxx" not in raised.value.message, "the value is not echoed"
    with pytest.raises(InvalidArgument):
        required("x" * 11, "key", max_chars=10)


def test_optional_allows_empty_and_refuses_values_over_the_limit() -> None:
    assert optional("  ", "pipelineId") == ""
    assert optional(" p ", "pipelineId") == "p"
    with pytest.raises(InvalidArgument) as raised:
        optional("p" * 300, "pipelineId")
    assert raised.value.reason == "FIELD_INVALID"


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


def test_filters_hash_ignores_argument_order_and_tells_values_apart() -> None:
    assert filters_hash(a="1", b=2) == filters_hash(b=2, a="1")
    assert filters_hash(a="1") != filters_hash(a=1)
    assert filters_hash(a=None) != filters_hash()
    assert filters_hash(tenant="t-a") != filters_hash(tenant="t-b")
