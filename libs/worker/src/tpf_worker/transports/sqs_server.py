"""The worker side of TPF's SQS protocol (TPF_WIRE §9.6): the request queue's receive loop.

`SqsWorkerServer` polls the request queue (1 message per poll, 1 s wait), drops unauthenticated
or malformed requests, runs the command and replies on the response queue.
"""

import asyncio
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final

from tpf_telemetry import context_of_sqs_message, sqs_attribute_names
from tpf_worker.nonces import NonceCache
from tpf_worker.protocol.capability import Capability
from tpf_worker.protocol.command import Command, decode_command
from tpf_worker.protocol.malformed import MalformedEnvelope
from tpf_worker.protocol.result import Result, encode_result
from tpf_worker.signing import SignatureRejected, Verifier
from tpf_worker.tracing import consumer_span, transport_span
from tpf_worker.transports import CommandHandler
from tpf_worker.transports.sqs_connection import SqsConnection
from tpf_worker.transports.sqs_messages import decode_request, encode_reply
from tpf_worker.transports.sqs_settings import (
    DEFAULT_TIMEOUT_S,
    ERROR_POLL_DELAY_S,
    WAIT_TIME_S,
    SqsConfig,
)

__all__ = ["SqsWorkerServer"]

# The name the SQS transport logged under before it was split, so log filters keep matching.
logger = logging.getLogger("tpf_worker.transports.sqs")

_MESSAGES_PER_POLL: Final = 1


def _failure_class(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "java.util.concurrent.TimeoutException"
    return f"{type(error).__module__}.{type(error).__qualname__}"


class SqsWorkerServer:
    """Serves one worker from an SQS request queue, replying on `response_queue_url`."""

    def __init__(
        self,
        handler: CommandHandler,
        capability: Capability,
        *,
        shared_secret: str,
        request_queue_url: str,
        config: SqsConfig,
        response_queue_url: str,
        tolerance: timedelta = timedelta(minutes=2),
        request_timeout_s: float = DEFAULT_TIMEOUT_S,
        visibility_timeout_s: int = 30,
        max_concurrency: int = 4,
        nonces: NonceCache | None = None,
    ) -> None:
        if not shared_secret:
            raise ValueError("SQS transition worker shared secret is unavailable")
        self._handler = handler
        self._capability = capability
        self._secret = shared_secret
        self._verifier = Verifier(shared_secret, tolerance=tolerance, nonces=nonces)
        self._request_queue_url = request_queue_url
        self._response_queue_url = response_queue_url
        self._request_timeout_s = request_timeout_s
        self._visibility_timeout_s = max(1, visibility_timeout_s)
        self._slots = asyncio.Semaphore(max_concurrency)
        self._sqs = SqsConnection(config)
        self._poller: asyncio.Task[None] | None = None
        self._running = False
        self._in_flight: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self._sqs.open()
        self._running = True
        self._poller = asyncio.create_task(self._poll(), name="sqs-worker-poller")

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop polling, let running commands reply within `grace_s`, then close the client."""
        self._running = False
        if self._poller is not None:
            # The loop notices the flag after its current (at most 1 s) receive.
            try:
                async with asyncio.timeout(WAIT_TIME_S + grace_s):
                    await asyncio.shield(self._poller)
            except TimeoutError:
                self._poller.cancel()
            self._poller = None
        if self._in_flight:
            _done, pending = await asyncio.wait(self._in_flight, timeout=grace_s)
            for task in pending:
                task.cancel()
            if pending:
                logger.warning("SQS worker stopped with %d requests still running", len(pending))
        await self._sqs.close()

    async def _poll(self) -> None:
        while self._running:
            await self._slots.acquire()
            if not self._running:
                self._slots.release()
                break
            try:
                response = await self._sqs.client.receive_message(
                    QueueUrl=self._request_queue_url,
                    MaxNumberOfMessages=_MESSAGES_PER_POLL,
                    WaitTimeSeconds=WAIT_TIME_S,
                    VisibilityTimeout=self._visibility_timeout_s,
                    MessageAttributeNames=sqs_attribute_names(),
                )
            except Exception:  # keep polling through SQS outages, as TPF's poller does
                self._slots.release()
                logger.exception("SQS worker poll failed")
                await asyncio.sleep(ERROR_POLL_DELAY_S)
                continue
            messages = response.get("Messages", [])
            if not messages:
                self._slots.release()
                continue
            task = asyncio.create_task(self._handle_released(messages[0]))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _handle_released(self, message: Mapping[str, Any]) -> None:
        try:
            await self._handle(message)
        except Exception:  # SQS errors while replying: the request reappears after visibility
            logger.exception("SQS worker failed handling message %s", message.get("MessageId"))
        finally:
            self._slots.release()

    async def _drop(self, message: Mapping[str, Any], why: str) -> None:
        logger.warning("Dropping SQS worker request %s: %s", message.get("MessageId"), why)
        await self._delete(message)

    async def _delete(self, message: Mapping[str, Any]) -> None:
        await self._sqs.client.delete_message(
            QueueUrl=self._request_queue_url, ReceiptHandle=message["ReceiptHandle"]
        )

    async def _handle(self, message: Mapping[str, Any]) -> None:
        try:
            request = decode_request(message.get("Body", ""))
        except MalformedEnvelope as error:
            await self._drop(message, str(error))
            return
        if not request.is_supported():
            await self._drop(message, "unsupported protocol envelope")
            return
        try:
            await request.verify(self._verifier, record_nonce=False)
        except SignatureRejected as rejected:
            await self._drop(message, f"unauthenticated ({rejected.reason})")
            return
        try:
            command = decode_command(request.command_envelope or "")
        except MalformedEnvelope as error:
            await self._drop(message, str(error))
            return
        with (
            consumer_span(
                "execute command", context_of_sqs_message(message), {"messaging.system": "aws_sqs"}
            ),
            transport_span(command),
        ):
            result = await self._run(command)
        request_id = request.request_id or ""
        body = encode_reply(self._secret, request_id, encode_result(result).decode("utf-8"))
        await self._sqs.client.send_message(QueueUrl=self._response_queue_url, MessageBody=body)
        # TPF records the nonce only once the reply is out, so a request whose reply failed
        # can be delivered again.
        if request.nonce and request.timestamp:
            await self._verifier.record_nonce(request.nonce, request.timestamp)
        await self._delete(message)

    async def _run(self, command: Command) -> Result:
        try:
            async with asyncio.timeout(self._request_timeout_s):
                return await self._handler(command)
        except Exception as error:  # replied as a FAILED result, as TPF's poller does
            logger.exception("SQS worker command failed for execution %s", command.execution_id)
            message = str(error) or f"timed out after {self._request_timeout_s:g} s"
            return Result.failed(_failure_class(error), message)
