"""A Python pipeline with an itemized await, hosted in-process by the dispatcher in tests.

`Plan Approvals` turns an order into one approval request per approver, `Await Approvals` asks
each approver (one interaction per request), and `Decide` receives every answer, in the order of
the requests, as one list.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tpf_worker import Pipeline, StepContext

_TYPES = "org.pipelineframework.itemizedtest"
ORDER_TYPE = f"{_TYPES}.Order"
REQUESTS_TYPE = f"{_TYPES}.ApprovalRequests"
APPROVALS_TYPE = f"{_TYPES}.Approvals"
DECISION_TYPE = f"{_TYPES}.Decision"

ITEMIZED = Pipeline("org.pipelineframework.itemizedtest.approvals")


@ITEMIZED.step(
    "Plan Approvals",
    service="PlanApprovalsService",
    input_type=ORDER_TYPE,
    output_type=REQUESTS_TYPE,
)
def plan_approvals(order: dict[str, Any], ctx: StepContext) -> list[dict[str, Any]]:
    return [{"orderId": order["orderId"], "approver": name} for name in order["approvers"]]


ITEMIZED.await_step(
    "Await Approvals",
    service="AwaitApprovalsService",
    input_type=REQUESTS_TYPE,
    output_type=APPROVALS_TYPE,
    timeout=timedelta(minutes=30),
    idempotency_key_fields=("orderId",),
    itemized=True,
)


@ITEMIZED.step(
    "Decide", service="DecideService", input_type=APPROVALS_TYPE, output_type=DECISION_TYPE
)
def decide(approvals: list[dict[str, Any]], ctx: StepContext) -> dict[str, Any]:
    return {
        "approved": all(a["approved"] for a in approvals),
        "approvers": [a["approver"] for a in approvals],
    }
