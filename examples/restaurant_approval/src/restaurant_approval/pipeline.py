"""TPF's restaurant-approval pipeline (TPF_WIRE §11), written with the tpf_worker SDK.

    0 Validate Order Request        PlaceRestaurantOrderRequest -> ValidatedRestaurantOrderRequest
    1 Create Pending Approval       ValidatedRestaurantOrderRequest -> PendingRestaurantApproval
    2 Await Restaurant Decision     PendingRestaurantApproval -> RestaurantDecision (await)
    3 Finalize Restaurant Decision  RestaurantDecision -> TerminalOrderState

The await parks the order for up to 30 minutes on the `interaction-api` transport, one open
interaction per `orderId`. Its completion is read as TPF's DTO deserializer reads it; a
completion that does not read (say `orderId: "not-a-uuid"`) fails step 3 with TPF's
`Failed converting await payload to ...RestaurantDecisionDto`, a permanent input error.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, Final

from restaurant_approval.decision import parse_decision, terminal_state
from restaurant_approval.java_values import JavaInstant
from restaurant_approval.orders import (
    DECISION_TYPE,
    PENDING_APPROVAL_TYPE,
    PIPELINE_ID,
    PLACE_ORDER_TYPE,
    TERMINAL_STATE_TYPE,
    VALIDATED_ORDER_TYPE,
    bind_order_request,
    pending_approval,
    validated_order,
)
from tpf_worker import Pipeline, StepContext

ARTIFACT_ID: Final = "restaurant-approval-python-worker"

PIPELINE = Pipeline(
    PIPELINE_ID,
    dispatch_mode="step",
    artifact_id=ARTIFACT_ID,
    transport="REST",
    runtime_layout="MONOLITH",
)


@PIPELINE.step(
    "Validate Order Request",
    service="ProcessValidateOrderRequestService",
    input_type=PLACE_ORDER_TYPE,
    output_type=VALIDATED_ORDER_TYPE,
)
async def validate_order_request(value: Any, ctx: StepContext) -> dict[str, Any]:
    return validated_order(bind_order_request(value), validated_at=JavaInstant.now())


@PIPELINE.step(
    "Create Pending Approval",
    service="ProcessCreatePendingApprovalService",
    input_type=VALIDATED_ORDER_TYPE,
    output_type=PENDING_APPROVAL_TYPE,
)
async def create_pending_approval(value: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    return pending_approval(value, created_at=JavaInstant.now())


PIPELINE.await_step(
    "Await Restaurant Decision",
    service="ProcessAwaitRestaurantDecisionService",
    input_type=PENDING_APPROVAL_TYPE,
    output_type=DECISION_TYPE,
    timeout=timedelta(minutes=30),
    idempotency_key_fields=("orderId",),
    transport_type="interaction-api",
    correlation_strategy="interactionId",
    convert=parse_decision,
)


@PIPELINE.step(
    "Finalize Restaurant Decision",
    service="ProcessFinalizeRestaurantDecisionService",
    input_type=DECISION_TYPE,
    output_type=TERMINAL_STATE_TYPE,
)
async def finalize_restaurant_decision(value: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    return terminal_state(value, state_id=str(uuid.uuid4()))
