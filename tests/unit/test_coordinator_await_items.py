"""Pure rules of itemized awaits and interaction expiry: which interactions form one await, in
what order its items are, and when an interaction's record is gone (TPF_WIRE §5.2, §5.3)."""

from __future__ import annotations

import json

import pytest

from tpf_coordinator.domain.interactions import (
    DEFAULT_RECORD_TTL_MS,
    MAX_AWAIT_ITEMS,
    InteractionStatus,
    item_order,
    record_expires_at_ms,
    require_current_item,
    require_unexpired,
)
from tpf_coordinator.work_outcomes import multi_snapshot, terminal_items
from tpf_envelope import INPUT_SNAPSHOT, encode
from tpf_errors import FailedPrecondition, InvalidArgument, NotFound


def test_a_one_to_one_await_has_one_interaction_without_an_item_index() -> None:
    assert item_order([None], expected_item_count=None) == [0]
    assert item_order([None], expected_item_count=1) == [0]


def test_items_are_ordered_by_item_index_whatever_order_they_were_sent_in() -> None:
    assert item_order([2, 0, 1], expected_item_count=3) == [1, 2, 0]
    # Indexes need not be contiguous; only their order counts.
    assert item_order([10, 5], expected_item_count=None) == [1, 0]
    # A one-item itemized await keeps its index (it resumes with a list of one answer).
    assert item_order([0], expected_item_count=1) == [0]


@pytest.mark.parametrize(
    ("indexes", "expected", "field"),
    [
        ([0, None], None, "awaitRequested.interactions.itemIndex"),
        ([None, None], None, "awaitRequested.interactions.itemIndex"),
        ([0, -1], None, "awaitRequested.interactions.itemIndex"),
        ([1, 1], None, "awaitRequested.interactions.itemIndex"),
        ([0, 1], 3, "awaitRequested.unit.expectedItemCount"),
        ([None], 2, "awaitRequested.unit.expectedItemCount"),
    ],
)
def test_interactions_that_do_not_form_one_await_are_refused(
    indexes: list[int | None], expected: int | None, field: str
) -> None:
    with pytest.raises(InvalidArgument) as refused:
        item_order(indexes, expected_item_count=expected)
    assert refused.value.reason == "FIELD_INVALID"
    assert refused.value.metadata["field"] == field


def test_an_await_may_not_exceed_the_item_limit() -> None:
    with pytest.raises(InvalidArgument) as refused:
        item_order(list(range(MAX_AWAIT_ITEMS + 1)), expected_item_count=None)
    assert refused.value.reason == "FIELD_OUT_OF_RANGE"
    assert item_order(list(range(MAX_AWAIT_ITEMS)), expected_item_count=0)[-1] == (
        MAX_AWAIT_ITEMS - 1
    )


def test_an_interaction_of_an_earlier_await_on_the_unit_no_longer_counts() -> None:
    require_current_item(("a", "b"), interaction_id="b", status=InteractionStatus.DISPATCHED)
    with pytest.raises(FailedPrecondition) as refused:
        require_current_item(("a", "b"), interaction_id="c", status=InteractionStatus.DISPATCHED)
    assert refused.value.reason == "INTERACTION_TERMINAL"


def test_an_interaction_record_lives_until_its_deadline_plus_one_day() -> None:
    deadline = 1_000_000
    assert DEFAULT_RECORD_TTL_MS == 86_400_000
    expires = record_expires_at_ms(deadline, DEFAULT_RECORD_TTL_MS)
    for status in InteractionStatus:
        if status is InteractionStatus.EXPIRED:
            continue
        require_unexpired(
            status,
            interaction_id="i",
            deadline_ms=deadline,
            record_ttl_ms=DEFAULT_RECORD_TTL_MS,
            now_ms=expires - 1,
        )
    for status, now_ms in (
        (InteractionStatus.COMPLETED, expires),
        (InteractionStatus.DISPATCHED, expires + 5),
        (InteractionStatus.EXPIRED, deadline - 5),
    ):
        with pytest.raises(NotFound) as gone:
            require_unexpired(
                status,
                interaction_id="i",
                deadline_ms=deadline,
                record_ttl_ms=DEFAULT_RECORD_TTL_MS,
                now_ms=now_ms,
            )
        assert gone.value.reason == "INTERACTION_RECORD_EXPIRED"
        assert gone.value.metadata == {"interactionId": "i", "expiredAtEpochMs": str(expires)}


def test_answers_resume_as_a_multi_snapshot_in_item_order_and_read_back_as_terminal_items() -> None:
    answers = [encode({"n": n}) for n in range(3)]
    snapshot = multi_snapshot(answers)
    assert snapshot.payload_type_id == INPUT_SNAPSHOT
    body = json.loads(snapshot.payload)
    assert body["shape"] == "MULTI" and body["payload"] is None
    assert [item["payload"] for item in body["items"]] == [a.payload for a in answers]
    assert terminal_items(snapshot) == tuple(answers)
    assert terminal_items(answers[0]) == (answers[0],)
