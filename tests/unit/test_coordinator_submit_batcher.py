"""SubmitBatcher: concurrent submissions share statements without waiting on a timer, and a
statement that fails is retried one submission at a time.

The writer here records what it is asked to write; the statement itself (SUBMIT_EXECUTIONS
against Postgres) is exercised in tests/e2e/test_coordinator_batch_submit.py."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

import pytest

from tpf_coordinator.store.protocol import NewExecution, SubmitOutcome
from tpf_coordinator.store.records import ExecutionRecord, StoredText
from tpf_coordinator.submit_batcher import SubmitBatcher
from tpf_envelope import Envelope
from tpf_errors import Unavailable

BASE = NewExecution(
    tenant_id="t",
    execution_id="e",
    pipeline_id="p",
    contract_version="c",
    release_version="r",
    input_shape="UNI",
    result_shape="UNI",
    idempotency_key="k",
    input_fingerprint="f",
    payload=Envelope("x.Type", "application/tpf-transition+json", "{}"),
    payload_text=StoredText(inline="{}", ref=None),
    now_ms=1,
    actor="a",
)


def new(i: int) -> NewExecution:
    return replace(BASE, execution_id=f"e{i}", idempotency_key=f"k{i}")


class RecordingWriter:
    """Answers each submission with a record of its own id; `refuse` fails any statement that
    holds that execution id, `unavailable` fails every statement as the database would."""

    def __init__(self, refuse: str = "", unavailable: bool = False) -> None:
        self.statements: list[list[str]] = []
        self._refuse = refuse
        self._unavailable = unavailable
        self.gate = asyncio.Event()
        self.gate.set()

    async def submit_many(self, news: Sequence[NewExecution]) -> list[SubmitOutcome]:
        ids = [n.execution_id for n in news]
        self.statements.append(ids)
        await self.gate.wait()
        if self._unavailable:
            raise Unavailable("DATABASE_UNAVAILABLE", "down")
        if self._refuse in ids:
            raise ValueError(f"row {self._refuse} violates a constraint")
        return [SubmitOutcome(record_of(n), created=True) for n in news]


def record_of(new: NewExecution) -> ExecutionRecord:
    return ExecutionRecord.__new__(ExecutionRecord)  # identity is all the batcher passes on


async def test_a_lone_submission_is_written_at_once() -> None:
    writer = RecordingWriter()
    outcome = await asyncio.wait_for(SubmitBatcher(writer).submit(new(0)), 1)
    assert outcome.created
    assert writer.statements == [["e0"]]


async def test_submissions_arriving_while_writers_are_busy_go_together() -> None:
    writer = RecordingWriter()
    writer.gate.clear()
    batcher = SubmitBatcher(writer, max_writers=1)
    tasks = [asyncio.create_task(batcher.submit(new(i))) for i in range(10)]
    await asyncio.sleep(0)  # every task queued; the one writer took what was there
    await asyncio.sleep(0)
    later = [asyncio.create_task(batcher.submit(new(i))) for i in range(10, 15)]
    await asyncio.sleep(0)
    writer.gate.set()
    await asyncio.gather(*tasks, *later)
    assert writer.statements == [[f"e{i}" for i in range(10)], [f"e{i}" for i in range(10, 15)]]


async def test_batches_are_cut_at_max_batch() -> None:
    writer = RecordingWriter()
    batcher = SubmitBatcher(writer, max_batch=4, max_writers=1)
    await asyncio.gather(*(batcher.submit(new(i)) for i in range(10)))
    assert [len(s) for s in writer.statements] == [4, 4, 2]


async def test_a_failed_statement_is_retried_one_by_one() -> None:
    writer = RecordingWriter(refuse="e3")
    batcher = SubmitBatcher(writer, max_writers=1)
    results = await asyncio.gather(
        *(batcher.submit(new(i)) for i in range(5)), return_exceptions=True
    )
    assert [isinstance(r, ValueError) for r in results] == [False, False, False, True, False]
    assert writer.statements[0] == ["e0", "e1", "e2", "e3", "e4"]
    assert writer.statements[1:] == [["e0"], ["e1"], ["e2"], ["e3"], ["e4"]]


async def test_an_unreachable_database_fails_the_batch_without_retrying_each() -> None:
    writer = RecordingWriter(unavailable=True)
    batcher = SubmitBatcher(writer, max_writers=1)
    results = await asyncio.gather(
        *(batcher.submit(new(i)) for i in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, Unavailable) for r in results)
    assert writer.statements == [["e0", "e1", "e2"]]


async def test_a_cancelled_caller_does_not_stop_the_others() -> None:
    writer = RecordingWriter()
    writer.gate.clear()
    batcher = SubmitBatcher(writer, max_writers=1)
    first = asyncio.create_task(batcher.submit(new(0)))
    second = asyncio.create_task(batcher.submit(new(1)))
    await asyncio.sleep(0)
    first.cancel()
    writer.gate.set()
    assert (await second).created
    with pytest.raises(asyncio.CancelledError):
        await first
