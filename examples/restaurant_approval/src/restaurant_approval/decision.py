"""The restaurant's decision: reading it the way TPF's DTO deserializer does, and its outcome.

TPF_WIRE §11. A decision is `accepted` (`orderId`, `decidedAt`, `note`) or `declined` (also
`declineReason`). The variant comes from a non-blank `type`, else a non-null `accepted` or
`declined` key, else `declined` when a top-level `declineReason` is present; the variant's fields
are read from the nested object if its key is present, else from the top level. `orderId` must
parse as a UUID and `decidedAt` as an instant (Java's lenient forms included), both required;
`note` and `declineReason` are trimmed, a null note reads `""`, a null or blank reason
`no reason provided`. The decision's `orderId` is not compared with the pending order's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from restaurant_approval.java_values import (
    JavaInstant,
    jackson_text,
    java_is_blank,
    java_trim,
    java_uuid,
)

ACCEPTED: Final = "accepted"
DECLINED: Final = "declined"
NO_REASON: Final = "no reason provided"
APPROVED_SUMMARY: Final = "Restaurant approved the order."


class DecisionError(ValueError):
    """The payload is not a restaurant decision; the message says why (Jackson's words)."""


def parse_decision(raw: Any) -> dict[str, Any]:
    """The decision as TPF serializes it: `{"type": ..., "<type>": {...}}`."""
    node: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    variant = _variant(node)
    if variant not in (ACCEPTED, DECLINED):
        raise DecisionError(f"Unsupported RestaurantDecisionDto type: {variant}")
    nested = node.get(variant, node)
    fields: Mapping[str, Any] = nested if isinstance(nested, Mapping) else {}
    decision: dict[str, Any] = {
        "orderId": _order_id(fields),
        "decidedAt": str(_decided_at(fields)),
        "note": java_trim(_text(fields, "note") or ""),
    }
    if variant == DECLINED:
        reason = java_trim(_text(fields, "declineReason") or "")
        decision["declineReason"] = NO_REASON if java_is_blank(reason) else reason
    return {"type": variant, variant: decision}


def terminal_state(decision: Mapping[str, Any], *, state_id: str) -> dict[str, Any]:
    """The TerminalOrderState a decision resolves to (the outcome rule of §11)."""
    parsed = parse_decision(decision)
    variant = parsed["type"]
    fields = parsed[variant]
    note = fields["note"]
    if variant == ACCEPTED:
        outcome, status = "APPROVED", "ACCEPTED"
        summary = APPROVED_SUMMARY if java_is_blank(note) else note
    else:
        outcome, status = "DECLINED", "DECLINED"
        reason = fields["declineReason"]
        summary = reason if java_is_blank(note) else f"{note} ({reason})"
    return {
        "id": state_id,
        "orderId": fields["orderId"],
        "outcome": outcome,
        "resolvedAt": fields["decidedAt"],
        "restaurantStatus": status,
        "summary": summary,
    }


def _variant(node: Mapping[str, Any]) -> str | None:
    declared = _text(node, "type")
    if declared is not None and not java_is_blank(declared):
        return declared
    for variant in (ACCEPTED, DECLINED):
        if node.get(variant) is not None:
            return variant
    if node.get("declineReason") is not None:
        return DECLINED
    return None


def _order_id(fields: Mapping[str, Any]) -> str:
    text = _text(fields, "orderId")
    if text is None or java_is_blank(text):
        raise DecisionError("orderId is required")
    try:
        return java_uuid(text)
    except ValueError as error:
        raise DecisionError(f"orderId {text!r} is not a UUID: {error}") from None


def _decided_at(fields: Mapping[str, Any]) -> JavaInstant:
    text = _text(fields, "decidedAt")
    if text is None or java_is_blank(text):
        raise DecisionError("decidedAt is required")
    try:
        return JavaInstant.parse(text)
    except ValueError as error:
        raise DecisionError(f"decidedAt is not an instant: {error}") from None


def _text(fields: Mapping[str, Any], name: str) -> str | None:
    return jackson_text(fields.get(name))
