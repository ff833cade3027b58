"""One queue's receive loop: at-least-once delivery of each message to one operation.

A message is deleted only after (a) the coordinator accepted the call and the reply was sent,
or (b) the bridge gave up on it: a permanent refusal, or a transient failure on its
`max_receives`-th receive. An outage (the coordinator, its database or the registry is down)
is not the message's fault and never makes the bridge give up: the message is redelivered
until the outage ends. Giving up means a `rejected` reply (when a reply queue is known) and
an entry in the bridge's dead-letter queue holding the reason and the original body. Anything
else (a transient failure, a crash, a kill -9) leaves the message on its queue, and SQS
delivers it again once its visibility timeout runs out. Repeats are harmless: a submit carries
the client's idempotency key and a request id derived from the SQS MessageId, and completing a
completed interaction answers `duplicate`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import grpc
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from tpf_errors import TpfError, field_invalid
from tpf_sqs_bridge.bodies import JsonBody, dead_letter, rejected_reply
from tpf_sqs_bridge.messages import MessageBody
from tpf_sqs_bridge.metrics import (
    OUTCOME_DEAD_LETTERED,
    OUTCOME_ERROR,
    OUTCOME_HANDLED,
    OUTCOME_RETRIED,
    BridgeMetrics,
)
from tpf_sqs_bridge.operations import Operation
from tpf_sqs_bridge.refusals import Refusal, refusal_of_invalid_message, refusal_of_rpc_error
from tpf_sqs_bridge.sqs import ReceivedMessage, SqsQueues, UnusableQueue
from tpf_telemetry import context_of_sqs_message, log_context

log = logging.getLogger(__name__)
# A proxy: it uses whichever provider the service configured (none set: no spans).
_tracer = trace.get_tracer(__name__)

CAUSE_PERMANENT = "permanent"
CAUSE_RECEIVES_EXHAUSTED = "receives_exhausted"
CAUSE_REPLY_UNDELIVERABLE = "reply_undeliverable"


@dataclass(frozen=True, slots=True)
class ConsumerPolicy:
    """How one queue is read; see BridgeSettings for each value's meaning and default."""

    batch_size: int
    wait_time_s: int
    visibility_timeout_s: int
    visibility_heartbeat_s: float
    max_receives: int


@dataclass(frozen=True, slots=True)
class Destinations:
    """Where the bridge writes: the default reply queue (optional) and its dead-letter queue."""

    default_reply_queue_url: str | None
    dead_letter_queue_url: str


class QueueConsumer:
    def __init__(
        self,
        *,
        queue_url: str,
        operation: Operation,
        queues: SqsQueues,
        policy: ConsumerPolicy,
        destinations: Destinations,
        now_ms: Callable[[], int],
        metrics: BridgeMetrics | None = None,
    ) -> None:
        self._metrics = metrics if metrics is not None else BridgeMetrics()
        self._queue_url = queue_url
        self._operation = operation
        self._queues = queues
        self._policy = policy
        self._destinations = destinations
        self._now_ms = now_ms

    async def run(self, stop: asyncio.Event) -> None:
        """Receive and handle batches until `stop` is set; the batch in hand is finished first.

        A long poll in progress when `stop` is set is abandoned: messages it would have
        returned stay on the queue (at worst invisible until their visibility timeout).
        """
        log.info(
            "consuming %s messages from %s",
            self._operation.name,
            self._queue_url,
            extra={"queue_url": self._queue_url},
        )
        while not stop.is_set():
            batch = await self._receive_unless_stopped(stop)
            if batch:
                await asyncio.gather(*(self._handle_safely(message) for message in batch))

    async def _receive_unless_stopped(self, stop: asyncio.Event) -> list[ReceivedMessage]:
        receive = asyncio.create_task(
            self._queues.receive(
                self._queue_url,
                max_messages=self._policy.batch_size,
                wait_time_s=self._policy.wait_time_s,
                visibility_timeout_s=self._policy.visibility_timeout_s,
            )
        )
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({receive, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not receive.done():
                receive.cancel()
                # Until the cancellation is processed the task is neither cancelled nor done.
                await asyncio.wait({receive})
        if receive.cancelled():
            return []
        try:
            return receive.result()
        except Exception:
            # SQS unreachable or refusing: nothing was received, so nothing is at risk. botocore
            # has already retried; pause one poll interval so a dead endpoint is not spun on.
            log.exception("receiving from %s failed", self._queue_url)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(1, self._policy.wait_time_s))
            return []

    async def _handle_safely(self, message: ReceivedMessage) -> None:
        with (
            # Continues the sender's trace when its message attributes carry one.
            _tracer.start_as_current_span(
                f"{self._operation.name} process",
                context=context_of_sqs_message({"MessageAttributes": message.attributes}),
                kind=SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "aws_sqs",
                    "messaging.destination.name": self._queue_url,
                    "messaging.message.id": message.message_id,
                },
            ),
            log_context(sqs_message_id=message.message_id),
        ):
            try:
                await self._handle(message)
            except Exception:
                self._count(OUTCOME_ERROR)
                # Not deleted, so SQS redelivers it; the receive limit bounds the repeats.
                log.exception(
                    "message %s left for redelivery after an unexpected error",
                    message.message_id,
                    extra={"receive_count": message.receive_count},
                )

    async def _handle(self, message: ReceivedMessage) -> None:
        try:
            parsed = self._operation.parse(message)
        except TpfError as error:
            await self._give_up(
                message,
                refusal_of_invalid_message(error),
                cause=CAUSE_PERMANENT,
                reply_queue_url=MessageBody.reply_queue_url_of(message.body),
                tenant_id=None,
            )
            return
        with log_context(tenant=parsed.tenant_id):
            try:
                async with self._kept_invisible(message):
                    reply = await self._operation.call(parsed, message)
            except grpc.aio.AioRpcError as error:
                await self._refused(
                    message,
                    refusal_of_rpc_error(error),
                    reply_queue_url=parsed.reply_queue_url,
                    tenant_id=parsed.tenant_id,
                    client_request_id=parsed.client_request_id,
                )
                return
            try:
                await self._send_reply(parsed.reply_queue_url, reply)
            except UnusableQueue as error:
                # The call succeeded, but its answer cannot be delivered where the message asked.
                refusal = refusal_of_invalid_message(
                    field_invalid("replyQueueUrl", f"the reply could not be sent ({error})")
                )
                await self._send_dead_letter(message, refusal, CAUSE_REPLY_UNDELIVERABLE)
            await self._queues.delete(message)
            self._count(OUTCOME_HANDLED)

    async def _refused(
        self,
        message: ReceivedMessage,
        refusal: Refusal,
        *,
        reply_queue_url: str | None,
        tenant_id: str,
        client_request_id: str | None,
    ) -> None:
        receives_exhausted = (
            message.receive_count >= self._policy.max_receives and not refusal.is_outage
        )
        if refusal.is_permanent or receives_exhausted:
            cause = CAUSE_PERMANENT if refusal.is_permanent else CAUSE_RECEIVES_EXHAUSTED
            await self._give_up(
                message,
                refusal,
                cause=cause,
                reply_queue_url=reply_queue_url,
                tenant_id=tenant_id,
                client_request_id=client_request_id,
            )
            return
        # Retry sooner than a full visibility timeout, backing off with each receive.
        delay_s = min(self._policy.visibility_timeout_s, 2**message.receive_count)
        log.warning(
            "coordinator call failed (%s %s: %s); message %s retried in %d s",
            refusal.code,
            refusal.reason,
            refusal.message,
            message.message_id,
            delay_s,
            extra={"receive_count": message.receive_count, "outage": refusal.is_outage},
        )
        await self._queues.hide(message, seconds=delay_s)
        self._count(OUTCOME_RETRIED)

    async def _give_up(
        self,
        message: ReceivedMessage,
        refusal: Refusal,
        *,
        cause: str,
        reply_queue_url: str | None,
        tenant_id: str | None,
        client_request_id: str | None = None,
    ) -> None:
        log.warning(
            "message %s dead-lettered (%s): %s %s",
            message.message_id,
            cause,
            refusal.reason,
            refusal.message,
            extra={"receive_count": message.receive_count},
        )
        reply = rejected_reply(
            refusal,
            operation=self._operation.name,
            tenant_id=tenant_id,
            message=message,
            client_request_id=client_request_id,
        )
        try:
            await self._send_reply(reply_queue_url, reply)
        except UnusableQueue as error:
            log.warning("rejection of %s not delivered: %s", message.message_id, error)
        await self._send_dead_letter(message, refusal, cause)
        await self._queues.delete(message)
        self._count(OUTCOME_DEAD_LETTERED)

    async def _send_reply(self, reply_queue_url: str | None, body: JsonBody) -> None:
        destination = reply_queue_url or self._destinations.default_reply_queue_url
        if destination is None:
            return
        await self._queues.send_json(destination, body)

    async def _send_dead_letter(
        self, message: ReceivedMessage, refusal: Refusal, cause: str
    ) -> None:
        await self._queues.send_json(
            self._destinations.dead_letter_queue_url,
            dead_letter(
                refusal,
                operation=self._operation.name,
                message=message,
                cause=cause,
                dead_lettered_at_ms=self._now_ms(),
            ),
        )
        self._metrics.poison.labels(self._operation.name, cause).inc()

    def _count(self, outcome: str) -> None:
        self._metrics.messages.labels(self._operation.name, outcome).inc()

    @contextlib.asynccontextmanager
    async def _kept_invisible(self, message: ReceivedMessage) -> AsyncIterator[None]:
        """Extend the message's visibility while the block runs, so a slow call is not
        handed to another consumer meanwhile."""
        heartbeat = asyncio.create_task(self._extend_visibility(message))
        try:
            yield
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def _extend_visibility(self, message: ReceivedMessage) -> None:
        while True:
            await asyncio.sleep(self._policy.visibility_heartbeat_s)
            try:
                await self._queues.hide(message, seconds=self._policy.visibility_timeout_s)
            except Exception:
                # The call goes on; at worst the message is delivered again and deduplicated.
                log.warning("extending visibility of %s failed", message.message_id, exc_info=True)
                return
            log.debug("visibility of %s extended", message.message_id)
