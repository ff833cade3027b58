"""Group commit of submissions: concurrent `submit` calls share one statement.

Each submission used to be its own statement and commit. Under load many arrive together (one
`SubmitExecutions` call, or many `SubmitExecution` calls in flight), and a commit costs the
same for one row as for a hundred. So submissions are queued, and a writer takes whatever is
queued as one `submit_many` statement. Nothing waits on a timer: a submission arriving on a
quiet system is written at once; while `max_writers` statements are in flight, arrivals queue
and go together in the next one ("natural batching").

A statement that fails for a reason other than the database being out of reach is retried one
submission at a time, so that one bad row cannot refuse the others it happened to travel with.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from tpf_coordinator.store.protocol import NewExecution, SubmitOutcome
from tpf_errors import TpfError

log = logging.getLogger(__name__)

MAX_BATCH = 500
MAX_WRITERS = 2


class SubmitWriter(Protocol):
    async def submit_many(self, news: Sequence[NewExecution]) -> list[SubmitOutcome]: ...


class SubmitBatcher:
    def __init__(
        self, store: SubmitWriter, *, max_batch: int = MAX_BATCH, max_writers: int = MAX_WRITERS
    ) -> None:
        self._store = store
        self._max_batch = max_batch
        self._max_writers = max_writers
        self._queue: list[tuple[NewExecution, asyncio.Future[SubmitOutcome]]] = []
        self._writers = 0
        self._tasks: set[asyncio.Task[None]] = set()  # the running writers, kept referenced

    async def submit(self, new: NewExecution) -> SubmitOutcome:
        future: asyncio.Future[SubmitOutcome] = asyncio.get_running_loop().create_future()
        self._queue.append((new, future))
        if self._writers < self._max_writers:
            self._writers += 1
            task = asyncio.create_task(self._write())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _write(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                await self._write_batch(batch)
        finally:
            self._writers -= 1

    async def _write_batch(
        self, batch: list[tuple[NewExecution, asyncio.Future[SubmitOutcome]]]
    ) -> None:
        try:
            outcomes = await self._store.submit_many([new for new, _ in batch])
        except Exception as error:
            if len(batch) == 1 or _is_unavailable(error):
                for _, future in batch:
                    _settle(future, error=error)
                return
            log.warning(
                "a statement of %d submissions failed (%s); writing them one by one",
                len(batch),
                error,
            )
            for item in batch:
                await self._write_batch([item])
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            _settle(future, outcome=outcome)


def _is_unavailable(error: Exception) -> bool:
    return isinstance(error, TpfError) and error.reason == "DATABASE_UNAVAILABLE"


def _settle(
    future: asyncio.Future[SubmitOutcome],
    *,
    outcome: SubmitOutcome | None = None,
    error: Exception | None = None,
) -> None:
    if future.done():  # its caller was cancelled; the outcome is in the database regardless
        return
    if error is not None:
        future.set_exception(error)
    else:
        assert outcome is not None
        future.set_result(outcome)
