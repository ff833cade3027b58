"""The campaign's orders: one idempotency key each, the channel it is submitted through, the
channel its await is answered through, and the result that answer must lead to.

Each order carries its key as `customerName`, which the restaurant pipeline copies into the
pending approval its await shows, so the answering side knows which order an interaction is
for without asking anyone. Every payload is fixed when the plan is made: a submission retried
after an outage sends the very same input, as a client with an idempotency key must.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Final

CHANNELS: Final = ("rest", "grpc", "sqs")
# Every third order is declined, so a result that went to the wrong execution shows.
DECLINE_EVERY: Final = 3
DECIDED_AT: Final = "2026-11-25T18:00:00.000000Z"


@dataclass(frozen=True, slots=True)
class Order:
    index: int
    key: str
    channel: str
    answer_channel: str
    request_id: str

    @property
    def accepted(self) -> bool:
        return self.index % DECLINE_EVERY != DECLINE_EVERY - 1

    @property
    def note(self) -> str:
        return f"chaos note {self.key}"

    @property
    def decline_reason(self) -> str:
        return f"chaos reason {self.key}"

    def order_request(self) -> dict[str, Any]:
        """PlaceRestaurantOrderRequest, as TPF's REST and SQS clients send it."""
        return {
            "requestId": self.request_id,
            "customerName": self.key,
            "restaurantName": "Chez Chaos",
            "items": f"{1 + self.index % 4}x soup",
            "totalAmount": "27.50",
            "currency": "EUR",
        }

    def decision(self, order_id: str) -> dict[str, Any]:
        """The restaurant's answer to this order's pending approval `order_id`."""
        fields = {"orderId": order_id, "decidedAt": DECIDED_AT, "note": self.note}
        if self.accepted:
            return {"accepted": fields}
        return {"declined": {**fields, "declineReason": self.decline_reason}}

    def expected_result(self, order_id: str) -> dict[str, str]:
        """The TerminalOrderState fields the pipeline's last step must produce."""
        if self.accepted:
            return {"orderId": order_id, "outcome": "APPROVED", "summary": self.note}
        return {
            "orderId": order_id,
            "outcome": "DECLINED",
            "summary": f"{self.note} ({self.decline_reason})",
        }


def plan_orders(count: int, run_id: str | None = None) -> list[Order]:
    """`count` orders spread evenly over the channels; each answered over another channel."""
    run = run_id or uuid.uuid4().hex[:8]
    return [
        Order(
            index=index,
            key=f"chaos-{run}-{index:05d}",
            channel=CHANNELS[index % len(CHANNELS)],
            answer_channel=CHANNELS[(index + 1) % len(CHANNELS)],
            request_id=str(uuid.uuid4()),
        )
        for index in range(count)
    ]
