"""Submission rules that need no database: idempotency-key policies, input types, result shape."""

from __future__ import annotations

from typing import Any

import pytest

from tpf_coordinator.domain.retry import RetrySettings
from tpf_coordinator.executions import (
    POLICY_OPTIONAL,
    POLICY_REQUIRED,
    POLICY_SERVER_ONLY,
    Executions,
    Submission,
    derived_key,
    expected_input_type,
)
from tpf_coordinator.release_catalog import ReleaseInfo, StepInfo, step_id_of
from tpf_envelope import TRANSITION_ENCODING, Envelope
from tpf_errors import FailedPrecondition

PAYLOAD = Envelope("java.util.Map", TRANSITION_ENCODING, '{"items":{}}')


def executions(policy: str) -> Executions:
    unused: Any = None
    return Executions(
        store=unused,
        catalog=unused,
        now_ms=lambda: 0,
        idempotency_policy=policy,
        allowed_prefixes=("org.pipelineframework.",),
        max_payload_bytes=1 << 20,
        payloads=unused,
    )


def submission(key: str) -> Submission:
    return Submission("t", "p", "UNI", PAYLOAD, key, output_streaming=False)


def test_optional_policy_uses_the_key_or_derives_one() -> None:
    rules = executions(POLICY_OPTIONAL)
    assert rules._idempotency_key(submission(" order-1 ")) == "order-1"
    assert rules._idempotency_key(submission("")) == derived_key("t", PAYLOAD)


def test_required_policy_refuses_a_missing_key_as_tpf_words_it() -> None:
    with pytest.raises(FailedPrecondition) as caught:
        executions(POLICY_REQUIRED)._idempotency_key(submission(" "))
    assert caught.value.reason == "IDEMPOTENCY_KEY_REQUIRED"
    assert caught.value.message == "Idempotency-Key header is required."


def test_server_only_policy_ignores_the_client_key() -> None:
    assert executions(POLICY_SERVER_ONLY)._idempotency_key(submission("k")) == derived_key(
        "t", PAYLOAD
    )


def test_dto_and_domain_type_of_one_step_are_the_same_input() -> None:
    domain = "org.pipelineframework.restaurantapproval.domain.PlaceRestaurantOrderRequest"
    dto = "org.pipelineframework.restaurantapproval.common.dto.PlaceRestaurantOrderRequestDto"
    assert expected_input_type(dto, domain) is None
    assert expected_input_type(domain, domain) is None
    assert expected_input_type("org.pipelineframework.x.Other", domain) == domain
    assert expected_input_type(dto, "") is None


def _step(index: int, cardinality: str) -> StepInfo:
    return StepInfo(
        index,
        f"S{index}",
        f"ProcessS{index}Service",
        "internal",
        cardinality,
        "",
        "",
        "",
        RetrySettings(),
    )


def _release(*cardinalities: str) -> ReleaseInfo:
    steps = tuple(_step(i, c) for i, c in enumerate(cardinalities))
    return ReleaseInfo("t", "p", "c", "r", steps, False, "a", "d")


def test_result_shape_follows_tpf_cardinality_rule() -> None:
    assert _release("ONE_TO_ONE", "ONE_TO_ONE").result_shape == "SINGLE"
    assert _release("ONE_TO_MANY", "ONE_TO_ONE").result_shape == "MATERIALIZED_MULTI"
    assert _release("ONE_TO_MANY", "MANY_TO_ONE").result_shape == "SINGLE"


def test_step_ids_are_tpf_generated_service_names() -> None:
    assert step_id_of("Await Restaurant Decision") == "ProcessAwaitRestaurantDecisionService"
    assert step_id_of("validate order-request") == "ProcessValidateOrderRequestService"
