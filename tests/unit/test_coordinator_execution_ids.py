"""Execution ids are canonical UUIDv7 strings that sort by creation time."""

from __future__ import annotations

import time
import uuid

from tpf_coordinator.execution_ids import new_execution_id


def test_ids_are_canonical_version_7_uuids_carrying_the_time() -> None:
    before = time.time_ns() // 1_000_000
    value = new_execution_id()
    after = time.time_ns() // 1_000_000
    parsed = uuid.UUID(value)
    assert str(parsed) == value and len(value) == 36
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert before <= parsed.int >> 80 <= after


def test_ids_from_later_milliseconds_sort_after_and_never_repeat() -> None:
    first = new_execution_id()
    time.sleep(0.002)
    later = [new_execution_id() for _ in range(1000)]
    assert all(first < other for other in later)
    assert len(set(later)) == len(later)
