"""The campaign's checks (tests/chaos/verify.py) can fail: rows breaking a rule are reported.

Each case writes, into the coordinator's migrated tables, the rows a successful restaurant order
leaves (as the campaign saw them), with one thing wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest

from tests.chaos.orders import Order, plan_orders
from tests.chaos.verify import verify
from tests.support.dev_suite import PIPELINE_ID, TENANT

# The history of a successful order: (version, event, step index after it).
CLEAN_HISTORY = [
    (0, "SUBMITTED", 0),
    (1, "CLAIMED", 0),
    (2, "STEP_COMPLETED", 1),
    (3, "CLAIMED", 1),
    (4, "STEP_COMPLETED", 2),
    (5, "CLAIMED", 2),
    (6, "AWAIT_REQUESTED", 2),
    (7, "INTERACTION_COMPLETED", 3),
    (8, "CLAIMED", 3),
    (9, "SUCCEEDED", 3),
]
ORDER_ID = "3d8e5a4e-2b8f-4b8e-9d0a-5c1f6f1b2a33"


@dataclass
class Rows:
    """What one order left in the database; a case changes one part."""

    status: str = "SUCCEEDED"
    history: list[tuple[int, str, int]] = field(default_factory=lambda: list(CLEAN_HISTORY))
    interaction_status: str = "COMPLETED"
    result: dict[str, Any] | None = None
    written: bool = True


def _write(conn: psycopg.Connection[Any], order: Order, rows: Rows) -> None:
    if not rows.written:
        return
    execution_id = f"execution-{order.index}"
    result = rows.result if rows.result is not None else order.expected_result(ORDER_ID)
    envelope = {"payloadTypeId": "t", "payloadEncoding": "e", "payload": json.dumps(result)}
    conn.execute(
        "INSERT INTO executions (tenant_id, execution_id, pipeline_id, contract_version,"
        " release_version, status, version, input_shape, result_shape, idempotency_key,"
        " input_fingerprint, next_due_at_ms, result, created_at_ms, updated_at_ms)"
        " VALUES (%s, %s, %s, 'c', 'r', %s, %s, 'UNI', 'SINGLE', %s, 'f', 0, %s, 0, 0)",
        (
            TENANT,
            execution_id,
            PIPELINE_ID,
            rows.status,
            max(version for version, _, _ in rows.history),
            order.key,
            json.dumps([envelope]),
        ),
    )
    for version, event, step_index in rows.history:
        conn.execute(
            "INSERT INTO execution_history (tenant_id, execution_id, version, event, to_status,"
            " step_index, attempt, actor, release_version, occurred_at_ms)"
            " VALUES (%s, %s, %s, %s, 'RUNNING', %s, 0, 'test', 'r', 0)",
            (TENANT, execution_id, version, event, step_index),
        )
    conn.execute(
        "INSERT INTO await_units (tenant_id, unit_id, execution_id, step_id, step_index, status,"
        " deadline_ms, created_at_ms, updated_at_ms)"
        " VALUES (%s, %s, %s, 'await', 2, 'COMPLETED', 0, 0, 0)",
        (TENANT, f"unit-{order.index}", execution_id),
    )
    conn.execute(
        "INSERT INTO interactions (tenant_id, interaction_id, unit_id, execution_id, step_id,"
        " step_index, correlation_id, idempotency_key, status, request_payload, deadline_ms,"
        " created_at_ms, updated_at_ms)"
        " VALUES (%s, %s, %s, %s, 'await', 2, %s, 'k', %s, %s, 0, 0, 0)",
        (
            TENANT,
            f"interaction-{order.index}",
            f"unit-{order.index}",
            execution_id,
            f"correlation-{order.index}",
            rows.interaction_status,
            json.dumps({"orderId": ORDER_ID, "customerName": order.key}),
        ),
    )


def _double_commit(rows: Rows) -> None:
    rows.history.append((10, "STEP_COMPLETED", 2))


def _gap(rows: Rows) -> None:
    rows.history.remove((5, "CLAIMED", 2))


def _failed(rows: Rows) -> None:
    rows.status = "FAILED"


def _lost(rows: Rows) -> None:
    rows.written = False


def _wrong_result(rows: Rows) -> None:
    rows.result = {"orderId": ORDER_ID, "outcome": "APPROVED", "summary": "someone else's note"}


def _unanswered(rows: Rows) -> None:
    rows.interaction_status = "WAITING"


@pytest.mark.parametrize(
    ("spoil", "expected"),
    [
        (_double_commit, "committed outcomes"),
        (_gap, "history versions"),
        (_failed, "FAILED"),
        (_lost, "0 executions, expected 1"),
        (_wrong_result, "result"),
        (_unanswered, "interactions"),
    ],
)
async def test_an_order_breaking_a_rule_is_reported(
    database: str, spoil: Callable[[Rows], None], expected: str
) -> None:
    clean, spoiled = plan_orders(2)
    rows = Rows()
    spoil(rows)
    with psycopg.connect(database) as conn:
        _write(conn, clean, Rows())
        _write(conn, spoiled, rows)

    found = verify(database, [clean, spoiled])

    assert found.problem_count == 1, found.problems
    assert spoiled.key in found.problems[0] and expected in found.problems[0], found.problems


async def test_orders_as_the_campaign_saw_them_pass(database: str) -> None:
    orders = plan_orders(3)  # the third is declined
    with psycopg.connect(database) as conn:
        for order in orders:
            _write(conn, order, Rows())

    found = verify(database, orders)

    assert found.ok, found.problems
    assert found.statuses == {"SUCCEEDED": 3}
