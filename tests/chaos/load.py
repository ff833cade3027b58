"""The campaign's load: orders submitted at a steady pace, each retried with its own key until
the suite takes it; and a loop answering every pending await of the campaign's orders.

Both keep going through outages, as a patient client would: a failed call is counted and tried
again after a short pause. Answers are not deduplicated on the client side beyond a resend
pause; the suite must (a second completion answers `duplicate`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from tests.chaos.clients import CallFailed, PendingAwait, SuiteClients
from tests.chaos.orders import Order

# A pending await answered this long ago without effect is answered again (an SQS answer the
# bridge had in hand when it was killed comes back only after the queue's visibility timeout).
RESEND_AFTER_S: Final = 20.0
POLL_S: Final = 0.5
_MAX_RETRY_PAUSE_S: Final = 2.0


@dataclass
class Tally:
    """What the clients saw; failures are keyed `<channel> <what failed>`."""

    submit_attempts: Counter[str] = field(default_factory=Counter)
    submit_failures: Counter[str] = field(default_factory=Counter)
    answers_sent: Counter[str] = field(default_factory=Counter)
    answer_failures: Counter[str] = field(default_factory=Counter)
    listing_failures: Counter[str] = field(default_factory=Counter)


class Load:
    def __init__(self, clients: SuiteClients, orders: Sequence[Order]) -> None:
        self._clients = clients
        self._orders = list(orders)
        self._by_key = {order.key: order for order in orders}
        self.tally = Tally()
        # Orders whose submission has begun, and those the suite (or SQS) took.
        self.started = 0
        self.submitted: set[str] = set()
        self.abandoned: set[str] = set()
        self._answered_at: dict[str, float] = {}
        self._answering: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._progress = asyncio.Condition()

    async def wait_started(self, count: int) -> None:
        """Until `count` submissions have begun."""
        async with self._progress:
            await self._progress.wait_for(lambda: self.started >= count)

    async def submit_all(self, rate_per_s: float, give_up_at: float) -> None:
        """Start one submission every 1/rate seconds; return once each was taken or given up."""
        began = time.monotonic()
        submissions = []
        for index, order in enumerate(self._orders):
            await asyncio.sleep(max(0.0, began + index / rate_per_s - time.monotonic()))
            async with self._progress:
                self.started += 1
                self._progress.notify_all()
            submissions.append(asyncio.create_task(self._submit(order, give_up_at)))
        await asyncio.gather(*submissions)

    async def answer_awaits(self, stop: asyncio.Event) -> None:
        """Until `stop`: list the pending awaits and answer each of the campaign's orders."""
        while not stop.is_set():
            try:
                pending = await self._clients.pending_awaits()
            except CallFailed as failure:
                self.tally.listing_failures[f"grpc {failure.kind}"] += 1
                pending = []
            now = time.monotonic()
            for waiting in pending:
                order = self._by_key.get(waiting.key)
                if order is None or waiting.interaction_id in self._answering:
                    continue
                answered_at = self._answered_at.get(waiting.interaction_id)
                if answered_at is not None and now - answered_at < RESEND_AFTER_S:
                    continue
                self._answering.add(waiting.interaction_id)
                self._spawn(self._answer(order, waiting))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), POLL_S)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _submit(self, order: Order, give_up_at: float) -> None:
        attempt = 0
        while True:
            attempt += 1
            self.tally.submit_attempts[order.channel] += 1
            try:
                await self._clients.submit(order)
            except CallFailed as failure:
                self.tally.submit_failures[f"{order.channel} {failure.kind}"] += 1
            else:
                self.submitted.add(order.key)
                return
            if time.monotonic() > give_up_at:
                self.abandoned.add(order.key)
                return
            await asyncio.sleep(_pause_s(attempt))

    async def _answer(self, order: Order, waiting: PendingAwait) -> None:
        try:
            await self._clients.complete(order, waiting)
        except CallFailed as failure:
            self.tally.answer_failures[f"{order.answer_channel} {failure.kind}"] += 1
        else:
            self.tally.answers_sent[order.answer_channel] += 1
            self._answered_at[waiting.interaction_id] = time.monotonic()
        finally:
            self._answering.discard(waiting.interaction_id)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _pause_s(attempt: int) -> float:
    """0.2 s, 0.4 s, 0.8 s, ... up to 2 s, jittered so retries do not arrive in step."""
    return float(min(_MAX_RETRY_PAUSE_S, 0.2 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0))
