"""What the campaign checks, read from the coordinator's tables (never through its API):

- one execution per idempotency key, none missing;
- every one SUCCEEDED, its result the TerminalOrderState its answer leads to (outcome, summary
  and the orderId of the approval its await showed);
- its history versions 0..version without a gap or a repeat;
- one committed outcome per step: SUBMITTED once, one STEP_COMPLETED for each of the two steps
  before the await, one AWAIT_REQUESTED and one INTERACTION_COMPLETED for the await, one
  SUCCEEDED for the last step, and nothing else that commits (no FAILED, no REDRIVEN); claims,
  expired leases and scheduled retries may come any number of times;
- one completed interaction per execution, and no dead letter.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import psycopg

from tests.chaos.orders import Order
from tests.support.dev_suite import PIPELINE_ID, TENANT

# The restaurant pipeline: steps 0 and 1 run, 2 is the await, 3 runs last. A history entry
# carries the step index the execution is at after it, so the committed outcomes of a
# successful order are, as (event, step index) -> count:
EXPECTED_OUTCOMES: Final = {
    ("SUBMITTED", 0): 1,
    ("STEP_COMPLETED", 1): 1,  # step 0 done
    ("STEP_COMPLETED", 2): 1,  # step 1 done, the await is next
    ("AWAIT_REQUESTED", 2): 1,  # the await parked
    ("INTERACTION_COMPLETED", 3): 1,  # the answer committed, the last step is next
    ("SUCCEEDED", 3): 1,  # the last step done
}
OUTCOME_EVENTS: Final = frozenset(
    {"SUBMITTED", "STEP_COMPLETED", "AWAIT_REQUESTED", "INTERACTION_COMPLETED", "SUCCEEDED"}
    | {"FAILED", "CANCELLED", "AWAIT_TIMED_OUT", "REDRIVEN"}
)
TERMINAL: Final = ("SUCCEEDED", "FAILED", "DLQ", "CANCELLED")
_SHOWN_PROBLEMS: Final = 20


@dataclass
class Verification:
    executions: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    history_events: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0

    def problem(self, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < _SHOWN_PROBLEMS:
            self.problems.append(text)

    @property
    def ok(self) -> bool:
        return self.problem_count == 0


def terminal_count(database_url: str, orders: Sequence[Order]) -> int | None:
    """How many of the orders' executions have ended; None while the database is away."""
    try:
        with psycopg.connect(database_url, connect_timeout=3) as conn:
            row = conn.execute(
                "SELECT count(*) FROM executions WHERE tenant_id = %s AND pipeline_id = %s"
                " AND idempotency_key = ANY(%s) AND status = ANY(%s)",
                (TENANT, PIPELINE_ID, [o.key for o in orders], list(TERMINAL)),
            ).fetchone()
    except psycopg.OperationalError:
        return None
    return None if row is None else int(row[0])


def verify(database_url: str, orders: Sequence[Order]) -> Verification:
    found = Verification()
    keys = [order.key for order in orders]
    with psycopg.connect(database_url) as conn:
        executions = conn.execute(
            "SELECT idempotency_key, execution_id, status, version, result, result_ref,"
            " error_code, error_message FROM executions"
            " WHERE tenant_id = %s AND pipeline_id = %s AND idempotency_key = ANY(%s)",
            (TENANT, PIPELINE_ID, keys),
        ).fetchall()
        ids = [row[1] for row in executions]
        history = conn.execute(
            "SELECT execution_id, version, event, step_index FROM execution_history"
            " WHERE tenant_id = %s AND execution_id = ANY(%s) ORDER BY execution_id, version",
            (TENANT, ids),
        ).fetchall()
        interactions = conn.execute(
            "SELECT execution_id, status, request_payload->>'orderId' FROM interactions"
            " WHERE tenant_id = %s AND execution_id = ANY(%s)",
            (TENANT, ids),
        ).fetchall()
        dead_letters = conn.execute(
            "SELECT execution_id FROM dead_letters WHERE tenant_id = %s AND execution_id = ANY(%s)",
            (TENANT, ids),
        ).fetchall()

    by_key: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for row in executions:
        by_key[row[0]].append(row)
    events: dict[str, list[tuple[int, str, int]]] = defaultdict(list)
    for execution_id, version, event, step_index in history:
        events[execution_id].append((version, event, step_index))
        found.history_events[event] += 1
    asked: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for execution_id, status, order_id in interactions:
        asked[execution_id].append((status, order_id))
    for (execution_id,) in dead_letters:
        found.problem(f"{execution_id}: dead-lettered")

    found.executions = len(executions)
    for order in orders:
        rows = by_key.get(order.key, [])
        if len(rows) != 1:
            found.problem(f"{order.key} ({order.channel}): {len(rows)} executions, expected 1")
            continue
        _check_execution(found, order, rows[0], events[rows[0][1]], asked[rows[0][1]])
    return found


def _check_execution(
    found: Verification,
    order: Order,
    row: tuple[Any, ...],
    events: list[tuple[int, str, int]],
    asked: list[tuple[str, str]],
) -> None:
    _key, execution_id, status, version, result, result_ref, error_code, error_message = row
    name = f"{order.key} ({execution_id}, {order.channel})"
    found.statuses[status] += 1
    if status != "SUCCEEDED":
        found.problem(f"{name}: {status} {error_code or ''} {error_message or ''}".rstrip())
        return
    versions = [v for v, _, _ in events]
    if versions != list(range(version + 1)):
        found.problem(f"{name}: history versions {versions}, execution at version {version}")
    outcomes = Counter((event, step) for _, event, step in events if event in OUTCOME_EVENTS)
    if outcomes != Counter(EXPECTED_OUTCOMES):
        found.problem(f"{name}: committed outcomes {dict(outcomes)}")
    if [status for status, _ in asked] != ["COMPLETED"]:
        found.problem(f"{name}: interactions {asked}")
        return
    order_id = asked[0][1]
    if result is None:
        found.problem(f"{name}: no inline result (result_ref {result_ref!r})")
        return
    envelopes = json.loads(result)
    terminal = json.loads(envelopes[0]["payload"]) if len(envelopes) == 1 else None
    expected = order.expected_result(order_id)
    if terminal is None or {k: terminal.get(k) for k in expected} != expected:
        found.problem(f"{name}: result {terminal}, expected {expected}")
