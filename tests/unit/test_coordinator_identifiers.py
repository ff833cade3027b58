"""Identifiers TPF derives (TPF_WIRE §5.3): v3 name UUIDs, interaction keys, correlation ids."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest

from tpf_envelope.identifiers import (
    await_unit_id,
    correlation_id,
    interaction_idempotency_key,
    java_double_text,
    name_uuid,
)

ORDER_ID = "3f8e2a51-4b7c-4d0e-9a12-6c5b8f9d0e1a"
STEP = "ProcessAwaitRestaurantDecisionService"


def java_name_uuid(text: str) -> str:
    """Java's UUID.nameUUIDFromBytes, spelled out from its definition: MD5, then set the version
    nibble to 3 and the variant bits to IETF."""
    digest = bytearray(hashlib.md5(text.encode("utf-8")).digest())
    digest[6] = (digest[6] & 0x0F) | 0x30
    digest[8] = (digest[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(digest)))


@pytest.mark.parametrize("text", ["", "a", "tenant:exec:step:3", "ünïcødé ✓ 🍕"])
def test_name_uuid_is_a_java_name_uuid(text: str) -> None:
    derived = name_uuid(text)
    assert derived == java_name_uuid(text)
    assert uuid.UUID(derived).version == 3


def test_name_uuid_known_value() -> None:
    # MD5("") = d41d8cd98f00b204e9800998ecf8427e; Java prints d41d8cd9-8f00-3204-a980-0998ecf8427e.
    assert name_uuid("") == "d41d8cd9-8f00-3204-a980-0998ecf8427e"


def test_await_unit_id_hashes_tenant_execution_step_and_index() -> None:
    assert await_unit_id("restaurant-demo", "e-1", STEP, 3) == java_name_uuid(
        f"restaurant-demo:e-1:{STEP}:3"
    )


def test_key_without_key_fields_is_execution_and_step() -> None:
    assert interaction_idempotency_key("e-1", STEP, [], {"orderId": ORDER_ID}, None) == (
        f"e-1:{STEP}"
    )


def test_key_with_key_fields_is_step_and_field_values() -> None:
    key = interaction_idempotency_key("e-1", STEP, ["orderId"], {"orderId": ORDER_ID}, None)
    assert key == f"{STEP}:orderId={ORDER_ID}"


def test_item_interactions_append_the_item_index() -> None:
    assert interaction_idempotency_key("e-1", STEP, [], None, 4) == f"e-1:{STEP}:item=4"
    assert interaction_idempotency_key("e-1", STEP, ["a"], {"a": 1}, 0) == f"{STEP}:a=1:item=0"


@pytest.mark.parametrize(
    ("payload", "text"),
    [
        ({}, "<null>"),
        ({"v": None}, "<null>"),
        (None, "<null>"),
        ({"v": "text"}, "text"),
        ({"v": ""}, ""),
        ({"v": 42}, "42"),
        ({"v": True}, "true"),
        ({"v": False}, "false"),
        ({"v": 12.5}, "12.5"),
        ({"v": 1766412345.123}, "1.766412345123E9"),
        ({"v": {"nested": 1}}, ""),
        ({"v": [1, 2]}, ""),
    ],
)
def test_field_values_use_jacksons_text_form(payload: dict[str, Any] | None, text: str) -> None:
    assert interaction_idempotency_key("e", "S", ["v"], payload, None) == f"S:v={text}"


def test_several_key_fields_are_joined_in_contract_order() -> None:
    payload = {"orderId": ORDER_ID, "customerId": "c-9"}
    key = interaction_idempotency_key(
        "e", STEP, ["customerId", "orderId", "missing"], payload, None
    )
    assert key == f"{STEP}:customerId=c-9:orderId={ORDER_ID}:missing=<null>"


def test_key_with_key_fields_holds_no_execution_id() -> None:
    # TPF's quirk, kept in the key text: two executions with one orderId share the key. The
    # coordinator scopes its lookups by execution as well, so they never share an interaction.
    first = interaction_idempotency_key("e-1", STEP, ["orderId"], {"orderId": ORDER_ID}, None)
    second = interaction_idempotency_key("e-2", STEP, ["orderId"], {"orderId": ORDER_ID}, None)
    assert first == second


@pytest.mark.parametrize("strategy", ["interactionId", "signedResumeToken"])
def test_correlation_id_for_default_strategies_has_no_prefix(strategy: str) -> None:
    key = f"{STEP}:orderId={ORDER_ID}"
    assert correlation_id(strategy, "t", "e-1", STEP, key) == java_name_uuid(f"t:e-1:{STEP}:{key}")


def test_correlation_id_for_other_strategies_is_prefixed_with_the_strategy() -> None:
    assert correlation_id("businessKey", "t", "e-1", STEP, "k") == java_name_uuid(
        f"businessKey:t:e-1:{STEP}:k"
    )
    assert correlation_id("businessKey", "t", "e-1", STEP, "k") != correlation_id(
        "interactionId", "t", "e-1", STEP, "k"
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1.0"),
        (0.1, "0.1"),
        (100.0, "100.0"),
        (0.001, "0.001"),
        (0.0001, "1.0E-4"),
        (1.5e-5, "1.5E-5"),
        (9_999_999.0, "9999999.0"),
        (1e7, "1.0E7"),
        (1.2345e20, "1.2345E20"),
        (-2.5, "-2.5"),
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
    ],
)
def test_java_double_text(value: float, text: str) -> None:
    assert java_double_text(value) == text
