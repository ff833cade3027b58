"""Natural batching: single items in, batches out, with no timer.

Callers hand in one item each and await its own result. With fewer than `max_in_flight`
batches being sent, an item goes at once (alone on a quiet system); otherwise it waits, and
whatever waited goes together (up to `max_batch`) as soon as a sender is free. Used on both
sides of submission: the coordinator writes concurrent submissions in one statement, and a
producer sends its waiting submissions in one SubmitExecutions call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")

# Sends one batch; answers one result, or the exception to raise to its caller, per item, in
# order. If it raises, every caller of the batch gets that exception.
SendBatch = Callable[[list[ItemT]], Awaitable[Sequence[ResultT | BaseException]]]


class NaturalBatcher(Generic[ItemT, ResultT]):
    def __init__(
        self, send: SendBatch[ItemT, ResultT], *, max_batch: int, max_in_flight: int
    ) -> None:
        self._send = send
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._queue: list[tuple[ItemT, asyncio.Future[ResultT]]] = []
        self._senders = 0
        self._tasks: set[asyncio.Task[None]] = set()  # the running senders, kept referenced

    async def submit(self, item: ItemT) -> ResultT:
        future: asyncio.Future[ResultT] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._senders < self._max_in_flight:
            self._senders += 1
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                try:
                    results: Sequence[ResultT | BaseException] = await self._send(
                        [item for item, _ in batch]
                    )
                except Exception as error:
                    results = [error] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():  # its caller was cancelled
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._senders -= 1
