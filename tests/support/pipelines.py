"""Small Python pipelines the dispatcher tests host in-process (`TPF_LOCAL_PIPELINES`).

Built with the tpf_worker authoring API, so they run exactly as any user pipeline would. Type ids
live under `org.pipelineframework.` because that is the coordinator's default payload allow-list.

- `CHAIN`: three plain steps; an order with `"fail": "always"` fails every attempt (retries,
  then FAILED and a dead letter); `"slow_s": n` makes the first step take n seconds.
- `APPROVAL`: check, await a decision (keyed by `orderId`), finish with the decision.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from tpf_worker import Pipeline, RetryableStepError, StepContext

_TYPES = "org.pipelineframework.dispatchertest"
ORDER_TYPE = f"{_TYPES}.Order"
CHECKED_TYPE = f"{_TYPES}.CheckedOrder"
DECISION_TYPE = f"{_TYPES}.Decision"
RECEIPT_TYPE = f"{_TYPES}.Receipt"

CHAIN = Pipeline("org.pipelineframework.dispatchertest.chain")


@CHAIN.step(
    "Check Order", service="CheckOrderService", input_type=ORDER_TYPE, output_type=CHECKED_TYPE
)
async def check_order(value: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    if value.get("fail") == "always":
        raise RetryableStepError(f"order {value.get('orderId')} is cursed (attempt {ctx.attempt})")
    slow_s = float(value.get("slow_s", 0))
    if slow_s:
        await asyncio.sleep(slow_s)
    return {**value, "checked": True, "checkedBy": ctx.idempotency_key}


@CHAIN.step(
    "Price Order", service="PriceOrderService", input_type=CHECKED_TYPE, output_type=CHECKED_TYPE
)
def price_order(value: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    return {**value, "price": len(str(value.get("items", ""))) * 3}


@CHAIN.step(
    "Write Receipt",
    service="WriteReceiptService",
    input_type=CHECKED_TYPE,
    output_type=RECEIPT_TYPE,
)
def write_receipt(value: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    return {
        "orderId": value.get("orderId"),
        "price": value.get("price"),
        "steps": ctx.step_index + 1,
    }


APPROVAL = Pipeline("org.pipelineframework.dispatchertest.approval")


@APPROVAL.step(
    "Check Request", service="CheckRequestService", input_type=ORDER_TYPE, output_type=CHECKED_TYPE
)
def check_request(value: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    return {**value, "checked": True}


APPROVAL.await_step(
    "Await Decision",
    service="AwaitDecisionService",
    input_type=CHECKED_TYPE,
    output_type=DECISION_TYPE,
    timeout=timedelta(minutes=30),
    idempotency_key_fields=("orderId",),
)


@APPROVAL.step(
    "Record Decision",
    service="RecordDecisionService",
    input_type=DECISION_TYPE,
    output_type=RECEIPT_TYPE,
)
def record_decision(value: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    return {"decision": value, "recorded": True}
