"""Terminal events: the coordinator's terminal-event feed, published on the events queue.

The bridge reads the feed (`TerminalEventService.PollTerminalEvents`) after a durable cursor the
coordinator keeps in Postgres (`OpenEventCursor`, `AdvanceEventCursor`), sends each page to the
events queue in feed order, and advances the cursor only once SQS has accepted every event of
the page. So an execution that ended while no bridge ran is announced when one starts, and no
stream is held per execution. A crash between sending and advancing sends those events again
(with the same `eventId`): delivery is at least once. Bridges sharing a cursor (same cursor name
and tenants) each publish what they read, so an event may be published once per bridge; none is
lost, because the cursor only moves forward and only past what some bridge had published.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import TypeVar

import grpc

from tpf.coordinator.v1 import terminal_event_pb2, terminal_event_service_pb2_grpc
from tpf.coordinator.v1 import terminal_event_service_pb2 as tpb
from tpf_sqs_bridge.bodies import terminal_event
from tpf_sqs_bridge.metrics import BridgeMetrics
from tpf_sqs_bridge.refusals import refusal_of_rpc_error
from tpf_sqs_bridge.sqs import SqsQueues

log = logging.getLogger(__name__)

T = TypeVar("T")

# A long poll of the feed; the call's deadline adds the usual call timeout on top.
POLL_WAIT_S = 10
# SendMessageBatch takes at most 10 entries.
_SQS_BATCH = 10
_FIRST_PAUSE_S = 0.2
_MAX_PAUSE_S = 5.0


class _Backoff:
    """Jittered exponential pauses between attempts of one step of the feed loop.

    A gRPC retry policy repeats one call a few times; the feed must outlast a coordinator or
    SQS outage of any length without losing its place, hence a loop of its own.
    """

    def __init__(self) -> None:
        self._pause_s = _FIRST_PAUSE_S

    async def pause(self, stop: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), self._pause_s * (0.5 + random.random()))
        self._pause_s = min(self._pause_s * 2, _MAX_PAUSE_S)


class TerminalEventPublisher:
    def __init__(
        self,
        *,
        stub: terminal_event_service_pb2_grpc.TerminalEventServiceAsyncStub,
        queues: SqsQueues,
        events_queue_url: str,
        cursor_name: str,
        tenant_ids: tuple[str, ...],
        batch_size: int,
        call_timeout_s: float,
        metrics: BridgeMetrics | None = None,
    ) -> None:
        self._metrics = metrics if metrics is not None else BridgeMetrics()
        self._stub = stub
        self._queues = queues
        self._events_queue_url = events_queue_url
        self._cursor_name = cursor_name
        self._tenant_ids = tenant_ids
        self._batch_size = batch_size
        self._call_timeout_s = call_timeout_s

    async def run(self, stop: asyncio.Event) -> None:
        """Publish the feed from the cursor until `stop` is set.

        A poll in progress is abandoned at once; a page being published is finished (and the
        cursor advanced) unless SQS or the coordinator fails meanwhile.
        """
        opened = await self._retried(stop, "opening the event cursor", self._open_cursor)
        if opened is None:
            return
        position = opened.cursor.position
        log.info(
            "publishing terminal events from cursor %s",
            self._cursor_name,
            extra={"position": position, "cursor_created": opened.created},
        )
        while not stop.is_set():
            page = await _unless_stopped(
                self._retried(stop, "polling terminal events", partial(self._poll, position)),
                stop,
            )
            if page is None:
                return
            if page.events and not await self._publish(page.events, stop):
                return
            if page.next_position == position:
                continue
            advanced = await self._retried(
                stop, "advancing the event cursor", partial(self._advance, page.next_position)
            )
            if advanced is None:
                return
            # Ahead of us when another bridge sharing the cursor got further: what lies between
            # was published by it, so go on from there.
            position = advanced.cursor.position

    async def _open_cursor(self) -> tpb.OpenEventCursorResponse:
        request = tpb.OpenEventCursorRequest(
            consumer_id=self._cursor_name, tenant_ids=self._tenant_ids
        )
        response: tpb.OpenEventCursorResponse = await self._stub.OpenEventCursor(
            request, timeout=self._call_timeout_s
        )
        return response

    async def _poll(self, position: str) -> tpb.PollTerminalEventsResponse:
        request = tpb.PollTerminalEventsRequest(
            tenant_ids=self._tenant_ids, after_position=position, max_events=self._batch_size
        )
        request.wait.FromSeconds(POLL_WAIT_S)
        response: tpb.PollTerminalEventsResponse = await self._stub.PollTerminalEvents(
            request, timeout=POLL_WAIT_S + self._call_timeout_s
        )
        return response

    async def _advance(self, position: str) -> tpb.AdvanceEventCursorResponse:
        request = tpb.AdvanceEventCursorRequest(
            consumer_id=self._cursor_name, tenant_ids=self._tenant_ids, position=position
        )
        response: tpb.AdvanceEventCursorResponse = await self._stub.AdvanceEventCursor(
            request, timeout=self._call_timeout_s
        )
        return response

    async def _retried(
        self, stop: asyncio.Event, what: str, call: Callable[[], Awaitable[T]]
    ) -> T | None:
        """The call's response, trying again after failures; None once `stop` is set."""
        backoff = _Backoff()
        while True:
            try:
                return await call()
            except grpc.aio.AioRpcError as error:
                refusal = refusal_of_rpc_error(error)
                # Permanent refusals are configuration mistakes (the token's tenants, a cursor
                # name too long): said loudly, and tried again so that fixing them is enough.
                log.log(
                    logging.ERROR if refusal.is_permanent else logging.WARNING,
                    "%s failed (%s %s): %s; trying again",
                    what,
                    refusal.code,
                    refusal.reason,
                    refusal.message,
                )
            if stop.is_set():
                return None
            await backoff.pause(stop)
            if stop.is_set():
                return None

    async def _publish(
        self, events: Sequence[terminal_event_pb2.TerminalEvent], stop: asyncio.Event
    ) -> bool:
        """Send every event, in order, until SQS accepted all; False if stopped before."""
        for start in range(0, len(events), _SQS_BATCH):
            pending = [terminal_event(event) for event in events[start : start + _SQS_BATCH]]
            backoff = _Backoff()
            while pending:
                try:
                    refused = await self._queues.send_json_batch(self._events_queue_url, pending)
                except Exception:
                    # botocore already retried; keep the events until SQS takes them or we stop.
                    log.exception("publishing %d terminal events failed", len(pending))
                    refused = list(range(len(pending)))
                if refused and len(refused) < len(pending):
                    log.warning("SQS refused %d of %d terminal events", len(refused), len(pending))
                self._metrics.terminal_events.inc(len(pending) - len(refused))
                pending = [pending[index] for index in refused]
                if pending:
                    if stop.is_set():
                        return False
                    await backoff.pause(stop)
        log.info(
            "published %d terminal events",
            len(events),
            extra={"position": events[-1].position},
        )
        return True


async def _unless_stopped(awaitable: Awaitable[T], stop: asyncio.Event) -> T | None:
    """The awaitable's result, or None if `stop` is set first (the awaitable is cancelled)."""
    task = asyncio.ensure_future(awaitable)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
            # Until the cancellation is processed the task is neither cancelled nor done; wait
            # for it without swallowing a cancellation of our own (that would leave us reading
            # the result of an unfinished task: InvalidStateError).
            await asyncio.wait({task})
    return None if task.cancelled() else task.result()
