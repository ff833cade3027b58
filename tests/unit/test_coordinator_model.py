"""The domain enums name exactly the values of their proto enums (without the prefix)."""

from __future__ import annotations

from tpf.common.v1 import execution_status_pb2
from tpf.coordinator.v1 import dead_letter_pb2, execution_pb2
from tpf_coordinator.domain.model import ExecutionStatus, HistoryEvent, TerminalReason


def proto_names(names: list[str], prefix: str) -> set[str]:
    return {name.removeprefix(prefix) for name in names} - {"UNSPECIFIED"}


def test_execution_status_matches_the_proto_enum() -> None:
    names = list(execution_status_pb2.ExecutionStatus.keys())
    assert {status.value for status in ExecutionStatus} == proto_names(names, "EXECUTION_STATUS_")
    assert {status.name for status in ExecutionStatus} == {s.value for s in ExecutionStatus}


def test_history_event_matches_the_proto_enum() -> None:
    names = list(execution_pb2.HistoryEvent.keys())
    assert {event.value for event in HistoryEvent} == proto_names(names, "HISTORY_EVENT_")


def test_terminal_reasons_we_write_are_proto_values_in_tpfs_lower_case() -> None:
    names = proto_names(list(dead_letter_pb2.TerminalReason.keys()), "TERMINAL_REASON_")
    dead_letter_reasons = {reason for reason in TerminalReason if reason.name in names}
    # AWAIT_TIMEOUT fails an execution without a dead letter, so it has no proto value.
    assert {reason.name for reason in TerminalReason} - names == {"AWAIT_TIMEOUT"}
    assert all(reason.value == reason.name.lower() for reason in dead_letter_reasons)
