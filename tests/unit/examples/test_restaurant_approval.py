"""The restaurant-approval example run by the worker runtime, step by step (TPF_WIRE §11)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from restaurant_approval.decision import DecisionError, parse_decision
from restaurant_approval.java_values import JavaInstant, java_uuid
from restaurant_approval.orders import (
    DECISION_TYPE,
    PENDING_APPROVAL_TYPE,
    PLACE_ORDER_TYPE,
    TERMINAL_STATE_TYPE,
    VALIDATED_ORDER_TYPE,
)
from restaurant_approval.pipeline import PIPELINE
from tpf_envelope import (
    Envelope,
    check_submission_input,
    compact_json_text,
    encode,
    input_snapshot,
)
from tpf_envelope.identifiers import name_uuid
from tpf_worker import (
    Command,
    Result,
    WorkerRuntime,
    classify_failure,
    identity_of,
)
from tpf_worker.protocol.result import decode_result, encode_result

TENANT = "restaurant-demo"
EXECUTION = "exec-restaurant-1"
NOW = datetime(2026, 8, 22, 17, 48, 23, 123000, tzinfo=UTC)
INTERACTION_ID = "11111111-2222-4333-8444-555555555555"
UNIT_KEYS = {
    "tenantId",
    "unitId",
    "executionId",
    "stepId",
    "stepIndex",
    "cardinality",
    "version",
    "status",
    "primaryInteractionId",
    "expectedItemCount",
    "completedItemCount",
    "completedItemKeys",
    "dispatchComplete",
    "createdAtEpochMs",
    "updatedAtEpochMs",
    "ttlEpochS",
}
INTERACTION_KEYS = {
    "tenantId",
    "executionId",
    "stepId",
    "stepIndex",
    "outputType",
    "interactionId",
    "correlationId",
    "causationId",
    "idempotencyKey",
    "version",
    "status",
    "requestPayload",
    "responsePayload",
    "unitId",
    "itemIndex",
    "actor",
    "assignee",
    "group",
    "transportType",
    "transportMetadata",
    "deadlineEpochMs",
    "createdAtEpochMs",
    "updatedAtEpochMs",
    "ttlEpochS",
    "transportOutputType",
}


@pytest.fixture(scope="module")
def runtime() -> WorkerRuntime:
    return WorkerRuntime(
        PIPELINE,
        identity_of(PIPELINE),
        clock=lambda: NOW,
        new_interaction_id=lambda: INTERACTION_ID,
    )


def order(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "requestId": str(uuid.uuid4()),
        "customerName": "Ada",
        "restaurantName": "Chez TPF",
        "items": "2x soup",
        "totalAmount": "27.50",
        "currency": "EUR",
    }
    body.update(overrides)
    return body


def order_snapshot(body: dict[str, Any]) -> Envelope:
    """The step-0 input the coordinator stores for a UNI submission of `body`."""
    submitted = Envelope(PLACE_ORDER_TYPE, "application/tpf-transition+json", json.dumps(body))
    decoded = check_submission_input(
        submitted, input_shape="UNI", first_step_input_type_id=PLACE_ORDER_TYPE
    )
    return input_snapshot("UNI", decoded)


def command(step: int, payload: Envelope, *, stop: int | None = None, attempt: int = 0) -> Command:
    identity = identity_of(PIPELINE)
    key = f"{EXECUTION}:{step}:{attempt}"
    return Command(
        tenant_id=TENANT,
        execution_id=EXECUTION,
        pipeline_id=identity.pipeline_id,
        contract_version=identity.contract_version,
        release_version=identity.release_version,
        current_step_index=step,
        stop_before_step_index=step + 1 if stop is None else stop,
        attempt=attempt,
        result_shape="SINGLE",
        execution_version=3,
        transition_key=key,
        trace_id=key,
        payload_type_id=payload.payload_type_id,
        payload_encoding=payload.payload_encoding,
        payload=payload.payload,
    )


def only_output(result: Result) -> tuple[Envelope, dict[str, Any]]:
    assert result.outcome == "COMPLETED", result.failure
    assert len(result.output_payloads) == 1
    output = result.output_payloads[0]
    return output, json.loads(output.payload, parse_float=Decimal)


def completion(decision: dict[str, Any]) -> Envelope:
    """A decision as the demo client posts it: Map envelopes of String envelopes."""
    return encode(decision)


async def pending_order(runtime: WorkerRuntime) -> dict[str, Any]:
    validated, _ = only_output(await runtime.execute(command(0, order_snapshot(order()))))
    _, pending = only_output(await runtime.execute(command(1, validated)))
    return pending


async def test_step_0_validates_the_submitted_order_from_its_input_snapshot(
    runtime: WorkerRuntime,
) -> None:
    body = order()
    envelope, validated = only_output(await runtime.execute(command(0, order_snapshot(body))))
    assert envelope.payload_type_id == VALIDATED_ORDER_TYPE
    assert list(validated) == [
        "id",
        "requestId",
        "customerName",
        "restaurantName",
        "items",
        "totalAmount",
        "currency",
        "validatedAt",
    ]
    assert uuid.UUID(validated["id"])
    assert validated["requestId"] == body["requestId"]
    assert validated["totalAmount"] == Decimal("27.50")
    assert '"totalAmount":27.50' in envelope.payload
    assert JavaInstant.parse(validated["validatedAt"])


async def test_step_1_creates_a_pending_approval_with_a_new_order_id(
    runtime: WorkerRuntime,
) -> None:
    validated, validated_json = only_output(
        await runtime.execute(command(0, order_snapshot(order())))
    )
    envelope, pending = only_output(await runtime.execute(command(1, validated)))
    assert envelope.payload_type_id == PENDING_APPROVAL_TYPE
    assert list(pending)[:2] == ["id", "orderId"]
    assert pending["orderId"] != validated_json["id"]
    assert pending["requestId"] == validated_json["requestId"]
    assert "createdAt" in pending


async def test_step_2_suspends_with_tpf_await_records(runtime: WorkerRuntime) -> None:
    pending = await pending_order(runtime)
    pending_envelope = Envelope(
        PENDING_APPROVAL_TYPE, "application/tpf-transition+json", compact_json_text(pending)
    )
    result = await runtime.execute(command(2, pending_envelope))
    assert result.outcome == "WAITING_EXTERNAL"
    suspension = result.await_suspension
    assert suspension is not None
    assert set(suspension) == {
        "tenantId",
        "executionId",
        "unitId",
        "stepIndex",
        "unit",
        "interactions",
    }
    step_id = "ProcessAwaitRestaurantDecisionService"
    unit_id = name_uuid(f"{TENANT}:{EXECUTION}:{step_id}:2")
    assert suspension["unitId"] == unit_id
    assert suspension["stepIndex"] == 2
    assert set(suspension["unit"]) == UNIT_KEYS
    assert suspension["unit"]["status"] == "WAITING_EXTERNAL"
    [interaction] = suspension["interactions"]
    assert set(interaction) == INTERACTION_KEYS
    key = f"{step_id}:orderId={pending['orderId']}"
    now_ms = int(NOW.timestamp() * 1000)
    assert interaction["idempotencyKey"] == key
    assert interaction["correlationId"] == name_uuid(f"{TENANT}:{EXECUTION}:{step_id}:{key}")
    assert interaction["interactionId"] == INTERACTION_ID
    assert interaction["status"] == "WAITING"
    assert interaction["transportType"] == "interaction-api"
    assert interaction["stepId"] == step_id
    assert interaction["outputType"] == DECISION_TYPE
    assert interaction["deadlineEpochMs"] == now_ms + 30 * 60 * 1000
    assert interaction["ttlEpochS"] == (now_ms + 30 * 60 * 1000) // 1000 + 86_400
    assert interaction["requestPayload"]["orderId"] == pending["orderId"]
    assert interaction["causationId"] == f"{EXECUTION}:2:0"
    # The suspension passes the strict result codec both ways.
    assert decode_result(encode_result(result)).await_suspension is not None


async def test_segment_dispatch_runs_steps_0_to_2_in_one_command_and_stops_at_the_await(
    runtime: WorkerRuntime,
) -> None:
    result = await runtime.execute(command(0, order_snapshot(order()), stop=-1))
    assert result.outcome == "WAITING_EXTERNAL"
    assert result.await_suspension is not None
    assert result.await_suspension["stepIndex"] == 2
    [interaction] = result.await_suspension["interactions"]
    assert uuid.UUID(interaction["requestPayload"]["orderId"])


async def test_an_accepted_decision_approves_the_order(runtime: WorkerRuntime) -> None:
    order_id = str(uuid.uuid4())
    decision = {
        "accepted": {
            "orderId": order_id,
            "decidedAt": "2026-08-22T17:48:23.123456Z",
            "note": "  See you at eight  ",
        }
    }
    envelope, state = only_output(await runtime.execute(command(3, completion(decision))))
    assert envelope.payload_type_id == TERMINAL_STATE_TYPE
    assert list(state) == ["id", "orderId", "outcome", "resolvedAt", "restaurantStatus", "summary"]
    assert state["orderId"] == order_id
    assert state["outcome"] == "APPROVED"
    assert state["restaurantStatus"] == "ACCEPTED"
    assert state["resolvedAt"] == "2026-08-22T17:48:23.123456Z"
    assert state["summary"] == "See you at eight"


async def test_an_accepted_decision_without_a_note_gets_the_default_summary(
    runtime: WorkerRuntime,
) -> None:
    decision = {"type": "accepted", "orderId": str(uuid.uuid4()), "decidedAt": "2026-08-22T17:48Z"}
    with pytest.raises(DecisionError):
        parse_decision(decision)  # Instant.parse needs seconds
    decision["decidedAt"] = "2026-08-22T19:48:00+02:00"
    _, state = only_output(await runtime.execute(command(3, completion(decision))))
    assert state["summary"] == "Restaurant approved the order."
    assert state["resolvedAt"] == "2026-08-22T17:48:00Z"


async def test_a_declined_decision_declines_the_order_with_the_reason(
    runtime: WorkerRuntime,
) -> None:
    decision = {
        "declined": {
            "orderId": str(uuid.uuid4()),
            "decidedAt": "2026-08-22T17:48:23.123456Z",
            "note": "Need more prep time",
            "declineReason": "Kitchen is overloaded tonight",
        }
    }
    _, state = only_output(await runtime.execute(command(3, completion(decision))))
    assert state["outcome"] == "DECLINED"
    assert state["restaurantStatus"] == "DECLINED"
    assert state["summary"] == "Need more prep time (Kitchen is overloaded tonight)"


async def test_a_decline_without_note_or_reason_summarises_as_no_reason_provided(
    runtime: WorkerRuntime,
) -> None:
    decision = {"declineReason": "   ", "orderId": "1-1-1-1-1", "decidedAt": "2026-08-22T17:48:23z"}
    _, state = only_output(await runtime.execute(command(3, completion(decision))))
    assert state["summary"] == "no reason provided"
    assert state["orderId"] == "00000001-0001-0001-0001-000000000001"


async def test_a_decision_with_a_non_uuid_order_id_fails_step_3_as_a_permanent_input_error(
    runtime: WorkerRuntime,
) -> None:
    decision = {
        "accepted": {
            "orderId": "not-a-uuid",
            "decidedAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "note": "This completion is intentionally invalid for the incident demo.",
        }
    }
    result = await runtime.execute(command(3, completion(decision)))
    assert result.outcome == "FAILED"
    assert result.failure is not None
    assert result.failure.failure_class == "java.lang.IllegalStateException"
    assert result.failure.message == f"Failed converting await payload to {DECISION_TYPE}"
    verdict = classify_failure(result.failure.failure_class, result.failure.message)
    assert verdict.permanent_input_error
    assert not verdict.retryable


async def test_an_order_with_an_unknown_field_is_a_permanent_input_error(
    runtime: WorkerRuntime,
) -> None:
    result = await runtime.execute(command(0, order_snapshot(order(tip="5"))))
    assert result.failure is not None
    assert 'Unrecognized field "tip"' in (result.failure.message or "")
    assert classify_failure(result.failure.failure_class, result.failure.message) == (
        classify_failure("tpf_worker.errors.InputDecodeError", None)
    )
    assert classify_failure(result.failure.failure_class, None).permanent_input_error


FIELDS = {"orderId": "1-2-3-4-5", "decidedAt": "2026-01-01T00:00:00Z"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"type": "declined", "declined": FIELDS}, "declined"),
        ({"accepted": None, "declined": FIELDS}, "declined"),
        ({"type": " ", "accepted": FIELDS}, "accepted"),
        ({"declineReason": None, "accepted": FIELDS}, "accepted"),
    ],
)
def test_the_decision_variant_follows_tpf_rules(raw: dict[str, Any], expected: str) -> None:
    assert parse_decision(raw)["type"] == expected


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"orderId": "1-1-1-1-1", "decidedAt": "2026-01-01T00:00:00Z"}, "type: None"),
        ({"type": "maybe"}, "Unsupported RestaurantDecisionDto type: maybe"),
        ({"accepted": {"decidedAt": "2026-01-01T00:00:00Z"}}, "orderId is required"),
        ({"accepted": {"orderId": "1-1-1-1-1"}}, "decidedAt is required"),
        ({"accepted": {"orderId": "1-1-1-1-1", "decidedAt": 1766412345.5}}, "not an instant"),
    ],
)
def test_undecidable_decisions_are_refused(raw: dict[str, Any], fragment: str) -> None:
    with pytest.raises(DecisionError) as caught:
        parse_decision(raw)
    assert fragment in str(caught.value)


def test_java_uuid_and_instant_accept_java_lenient_forms() -> None:
    assert java_uuid("ABCDEF01-2345-6789-ABCD-EF0123456789") == (
        "abcdef01-2345-6789-abcd-ef0123456789"
    )
    assert java_uuid("+1-0-0-0-10") == "00000001-0000-0000-0000-000000000010"
    for bad in ("not-a-uuid", "1-1-1-1", "1-1-1-1-1-1", "1--1-1-1", "g-1-1-1-1"):
        with pytest.raises(ValueError):
            java_uuid(bad)
    assert str(JavaInstant.parse("2026-08-22t17:48:23.5z")) == "2026-08-22T17:48:23.500Z"
    assert str(JavaInstant.parse("2026-08-22T17:48:23.123456789Z")) == (
        "2026-08-22T17:48:23.123456789Z"
    )
    assert str(JavaInstant.parse("2026-08-22T24:00:00Z")) == "2026-08-23T00:00:00Z"
    assert str(JavaInstant.parse("2026-08-22T00:30:00-01:30")) == "2026-08-22T02:00:00Z"
