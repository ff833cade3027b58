"""Pure rules of await completions and redrives: statuses, admission order, TPF's texts."""

from __future__ import annotations

import re
import uuid
from importlib import resources

import pytest

from tpf.coordinator.v1 import interaction_pb2
from tpf_coordinator.domain.dead_letters import (
    dead_letter_id,
    redrive_log_line,
    redrive_reason,
)
from tpf_coordinator.domain.interactions import (
    PENDING_INTERACTION_STATUSES,
    Admission,
    AwaitUnitStatus,
    InteractionStatus,
    admit_completion,
    require_waiting_on,
)
from tpf_coordinator.domain.model import ExecutionState, ExecutionStatus
from tpf_errors import FailedPrecondition

SCHEMA = (resources.files("tpf_coordinator") / "migrations" / "0001_coordinator.sql").read_text()


def check_values(table: str) -> set[str]:
    """The names a table's `status` CHECK allows, read from the migration."""
    body = SCHEMA.split(f"CREATE TABLE {table} (", 1)[1].split(");", 1)[0]
    allowed = re.search(r"status\s+text\s+NOT NULL CHECK \(status IN \(([^)]*)\)\)", body)
    assert allowed is not None, table
    return set(re.findall(r"'([A-Z_]+)'", allowed.group(1)))


def proto_names(names: list[str], prefix: str) -> set[str]:
    return {name.removeprefix(prefix) for name in names} - {"UNSPECIFIED"}


def test_interaction_statuses_match_the_proto_enum_and_the_sql_check() -> None:
    values = {status.value for status in InteractionStatus}
    assert values == proto_names(
        list(interaction_pb2.InteractionStatus.keys()), "INTERACTION_STATUS_"
    )
    assert values == check_values("interactions")
    assert {s for s in InteractionStatus if not s.is_terminal} == set(PENDING_INTERACTION_STATUSES)


def test_await_unit_statuses_match_the_proto_enum_and_the_sql_check() -> None:
    values = {status.value for status in AwaitUnitStatus}
    assert values == proto_names(list(interaction_pb2.AwaitUnitStatus.keys()), "AWAIT_UNIT_STATUS_")
    assert values == check_values("await_units")


@pytest.mark.parametrize("status", PENDING_INTERACTION_STATUSES)
def test_a_pending_interaction_before_its_deadline_may_complete(
    status: InteractionStatus,
) -> None:
    admitted = admit_completion(status, interaction_id="i", deadline_ms=1001, now_ms=1000)
    assert admitted is Admission.COMPLETE


def test_a_completed_interaction_is_a_duplicate_even_after_its_deadline() -> None:
    admitted = admit_completion(
        InteractionStatus.COMPLETED, interaction_id="i", deadline_ms=1, now_ms=1000
    )
    assert admitted is Admission.DUPLICATE


@pytest.mark.parametrize(
    "status",
    [
        InteractionStatus.FAILED,
        InteractionStatus.TIMED_OUT,
        InteractionStatus.CANCELLED,
        InteractionStatus.EXPIRED,
    ],
)
def test_other_terminal_interactions_are_refused_before_the_deadline_is_looked_at(
    status: InteractionStatus,
) -> None:
    with pytest.raises(FailedPrecondition) as refused:
        admit_completion(status, interaction_id="i-1", deadline_ms=1, now_ms=1000)
    assert refused.value.reason == "INTERACTION_TERMINAL"
    assert refused.value.metadata == {"interactionId": "i-1", "status": status.value}


@pytest.mark.parametrize("now_ms", [1000, 1001])
def test_a_deadline_at_or_before_now_is_expired(now_ms: int) -> None:
    with pytest.raises(FailedPrecondition) as refused:
        admit_completion(
            InteractionStatus.DISPATCHED, interaction_id="i-1", deadline_ms=1000, now_ms=now_ms
        )
    assert refused.value.reason == "INTERACTION_EXPIRED"
    assert refused.value.metadata["interactionId"] == "i-1"


def _state(status: ExecutionStatus, unit_id: str) -> ExecutionState:
    return ExecutionState(
        status=status,
        step_index=2,
        attempt=0,
        version=2,
        next_due_at_ms=0,
        updated_at_ms=0,
        await_unit_id=unit_id,
    )


def test_the_execution_must_still_wait_on_the_interactions_unit() -> None:
    require_waiting_on(
        _state(ExecutionStatus.WAITING_EXTERNAL, "u-1"), unit_id="u-1", interaction_id="i"
    )
    for state in (
        _state(ExecutionStatus.WAITING_EXTERNAL, "u-2"),
        _state(ExecutionStatus.FAILED, "u-1"),
        _state(ExecutionStatus.CANCELLED, "u-1"),
    ):
        with pytest.raises(FailedPrecondition) as refused:
            require_waiting_on(state, unit_id="u-1", interaction_id="i")
        assert refused.value.reason == "INTERACTION_TERMINAL"


def test_redrive_reasons_are_trimmed_cut_to_80_and_default_to_operator() -> None:
    assert redrive_reason(None) == "operator"
    assert redrive_reason("   ") == "operator"
    assert redrive_reason("  disk full  ") == "disk full"
    assert redrive_reason(" " + "r" * 100) == "r" * 80


def test_redrive_log_line_is_tpfs() -> None:
    line = redrive_log_line(
        tenant_id="t", execution_id="e", previous_status="FAILED", step_index=3, attempt=1
    )
    assert (
        line
        == "Re-drove execution tenant=t executionId=e previousStatus=FAILED stepIndex=3 attempt=1"
    )


def test_dead_letter_ids_are_stable_uuids_per_failure() -> None:
    first = dead_letter_id("t", "e", 2)
    assert uuid.UUID(first).version == 3
    assert first == dead_letter_id("t", "e", 2)
    assert first != dead_letter_id("t", "e", 6)
