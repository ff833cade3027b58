"""The terminal-event feed's pure rules: positions, where a reader goes on, the event's state."""

from __future__ import annotations

import re
from dataclasses import replace
from importlib import resources

import pytest

from tpf_coordinator.domain.event_feed import (
    FeedPosition,
    TenantSet,
    TerminalHistoryRow,
    next_position,
    terminal_event_of,
)
from tpf_coordinator.domain.model import ExecutionStatus, HistoryEvent
from tpf_errors import InvalidArgument

MIGRATION = (
    resources.files("tpf_coordinator") / "migrations" / "0004_terminal_event_feed.sql"
).read_text()

ROW = TerminalHistoryRow(
    position=FeedPosition(900, 42),
    tenant_id="t1",
    execution_id="e-1",
    version=2,
    event=HistoryEvent.FAILED,
    to_status=ExecutionStatus.FAILED,
    error_code="NonRetryableException",
    error_message="bad",
    release_version="sha256:ab",
    occurred_at_ms=1_000,
    pipeline_id="p1",
    current_version=2,
    current_error_code="NonRetryableException",
    current_error_message="bad",
    current_terminal_reason="non_retryable",
    dead_letter_reason="non_retryable",
)


def test_positions_round_trip_and_order_by_transaction_then_row() -> None:
    position = FeedPosition(18_446_744_073_709_551_615, 7)
    assert FeedPosition.parse(str(position), field="p") == position
    assert FeedPosition(5, 100) < FeedPosition(6, 1) < FeedPosition(6, 2)
    assert FeedPosition.start() < FeedPosition(0, 1)


@pytest.mark.parametrize("text", ["", "12", "a:1", "1:-2", "1:2:3", "1 :2"])
def test_a_malformed_position_is_refused(text: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        FeedPosition.parse(text, field="afterPosition")
    assert refused.value.reason == "FIELD_INVALID"
    assert refused.value.metadata["field"] == "afterPosition"


def test_a_full_page_goes_on_after_its_last_event() -> None:
    events = [
        terminal_event_of(ROW),
        terminal_event_of(replace(ROW, position=FeedPosition(901, 3))),
    ]
    assert next_position(FeedPosition(1, 1), events, full=True, horizon_xact_id=5_000) == (
        FeedPosition(901, 3)
    )


def test_a_short_page_skips_to_the_horizon_but_never_back() -> None:
    events = [terminal_event_of(ROW)]
    assert next_position(FeedPosition(1, 1), events, full=False, horizon_xact_id=950) == (
        FeedPosition(950, 0)
    )
    assert next_position(FeedPosition(1, 1), [], full=False, horizon_xact_id=950) == (
        FeedPosition(950, 0)
    )
    # A position already beyond the horizon (a cursor just created) stays where it is.
    assert next_position(FeedPosition(990, 0), [], full=False, horizon_xact_id=950) == (
        FeedPosition(990, 0)
    )


def test_an_event_shows_the_execution_row_while_it_is_at_that_version() -> None:
    cancelled = replace(
        ROW,
        event=HistoryEvent.CANCELLED,
        to_status=ExecutionStatus.CANCELLED,
        error_code=None,
        error_message=None,
        # Cancelled from WAIT_RETRY: the row keeps the last retry's error, as GetExecution shows.
        current_error_code="Flaky",
        current_error_message="try again",
        current_terminal_reason="",
        dead_letter_reason=None,
    )
    event = terminal_event_of(cancelled)
    assert (event.status, event.error_code, event.error_message) == (
        ExecutionStatus.CANCELLED,
        "Flaky",
        "try again",
    )
    assert event.terminal_reason == ""


def test_a_failure_redriven_since_is_rebuilt_from_its_history_and_dead_letter() -> None:
    redriven = replace(
        ROW,
        current_version=3,
        current_error_code=None,
        current_error_message=None,
        current_terminal_reason="",
    )
    event = terminal_event_of(redriven)
    assert (event.error_code, event.error_message, event.terminal_reason) == (
        "NonRetryableException",
        "bad",
        "non_retryable",
    )
    timed_out = replace(
        redriven,
        event=HistoryEvent.AWAIT_TIMED_OUT,
        error_code="AWAIT_TIMEOUT",
        dead_letter_reason=None,
    )
    assert terminal_event_of(timed_out).terminal_reason == "await_timeout"


def test_tenant_sets_are_sorted_and_empty_means_every_tenant() -> None:
    assert TenantSet.of(("b", "a", "b")).tenant_ids == ("a", "b")
    assert TenantSet(()).everything and not TenantSet.of(("a",)).everything


def test_the_feed_index_holds_exactly_the_terminal_statuses() -> None:
    listed = re.search(r"to_status IN \(([^)]*)\)", MIGRATION)
    assert listed is not None
    names = {name.strip().strip("'") for name in listed[1].split(",")}
    assert names == {status.value for status in ExecutionStatus if status.is_terminal}
