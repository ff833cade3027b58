"""Status sets as SQL literal lists, rendered from the domain enums.

A condition that is a partial index's predicate must name its statuses in the query text: the
planner uses a partial index only when it can prove the predicate from the query, which it
cannot do for a bound parameter of a generic prepared plan. So these sets are literals, but
written from the enums here, in the order of the indexes' predicates in the migrations
(tests/integration/test_coordinator_status_sets.py compares them with the migrated indexes).
Single statuses a statement writes or matches outside an index predicate are bound parameters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum

from tpf_coordinator.domain.interactions import PENDING_INTERACTION_STATUSES, InteractionStatus
from tpf_coordinator.domain.model import ExecutionStatus
from tpf_coordinator.domain.release_drift import NON_TERMINAL_STATUSES

_NAME = re.compile(r"^[A-Z_]+$")


def literals(statuses: Iterable[StrEnum]) -> str:
    """`'A', 'B'`: the statuses as SQL string literals, for `status IN (...)`."""
    values = [status.value for status in statuses]
    # Enum values are upper-case names; anything else would need quoting rules, not this.
    if not values or not all(_NAME.match(value) for value in values):
        raise ValueError(f"not a list of status names: {values}")
    return ", ".join(f"'{value}'" for value in values)


# executions: claimable once due (`executions_runnable`).
RUNNABLE = literals(status for status in ExecutionStatus if status.is_runnable)
# executions: holding a lease (`executions_running_leases`).
RUNNING = literals([ExecutionStatus.RUNNING])
# executions: not ended (`executions_pinned_non_terminal`).
NON_TERMINAL = literals(NON_TERMINAL_STATUSES)
# execution_history.to_status: ended (`execution_history_terminal_feed`).
TERMINAL = literals(status for status in ExecutionStatus if status.is_terminal)
# interactions: open for a completion (`interactions_pending`).
PENDING_INTERACTIONS = literals(PENDING_INTERACTION_STATUSES)
# interactions: ended, not yet expired (`interactions_expirable`).
EXPIRABLE_INTERACTIONS = literals(
    status
    for status in InteractionStatus
    if status.is_terminal and status is not InteractionStatus.EXPIRED
)
