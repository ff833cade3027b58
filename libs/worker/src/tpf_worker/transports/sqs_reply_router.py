"""The dispatcher's reply loop of TPF's SQS protocol (TPF_WIRE §9.6).

Unlike TPF, whose coordinator assumes a response queue of its own, replies here are demultiplexed
by `requestId`: one `SqsReplyRouter` long-polls a response queue and hands each reply to the
`SqsWorkerClient.execute` call waiting for it, and gives a reply nobody here waits for back to the
queue (visibility 0) so another dispatcher sharing the queue can take it.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final

from tpf_worker.protocol.malformed import MalformedEnvelope
from tpf_worker.protocol.result import Result, decode_result
from tpf_worker.signing import SignatureRejected, Verifier
from tpf_worker.transports import WORKER_FAILURE, TransportFailure
from tpf_worker.transports.sqs_connection import SqsConnection
from tpf_worker.transports.sqs_messages import SqsReply, decode_reply
from tpf_worker.transports.sqs_settings import (
    DEFAULT_TIMEOUT_S,
    ERROR_POLL_DELAY_S,
    WAIT_TIME_S,
    SqsConfig,
)

__all__ = ["SqsReplyRouter"]

# The name the SQS transport logged under before it was split, so log filters keep matching.
logger = logging.getLogger("tpf_worker.transports.sqs")

_MESSAGES_PER_POLL: Final = 10


class SqsReplyRouter:
    """Long-polls one response queue and routes replies to the calls waiting for them."""

    def __init__(
        self,
        response_queue_url: str,
        config: SqsConfig,
        *,
        shared_secret: str,
        tolerance: timedelta = timedelta(minutes=2),
        request_timeout_s: float = DEFAULT_TIMEOUT_S,
        visibility_timeout_s: int = 30,
    ) -> None:
        self.response_queue_url = response_queue_url
        self.config = config
        # Unlike TPF's coordinator, replies go through a nonce cache too: a replayed reply must
        # not complete a second call.
        self._verifier = Verifier(shared_secret, tolerance=tolerance)
        self._request_timeout_s = request_timeout_s
        self._visibility_timeout_s = max(1, visibility_timeout_s)
        self._sqs = SqsConnection(config)
        self._waiting: dict[str, tuple[str, asyncio.Future[Result]]] = {}
        self._poller: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Start polling; calling it again while running does nothing."""
        async with self._lock:
            if self._poller is not None:
                return
            await self._sqs.open()
            self._poller = asyncio.create_task(self._poll(), name="sqs-reply-router")

    async def stop(self) -> None:
        async with self._lock:
            if self._poller is None:
                return
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
            await self._sqs.close()

    def expect(self, request_id: str, execution_id: str) -> asyncio.Future[Result]:
        """Register a call waiting for `request_id`; resolve or fail it when the reply comes."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = (execution_id, future)
        return future

    def forget(self, request_id: str) -> None:
        self._waiting.pop(request_id, None)

    async def _poll(self) -> None:
        while True:
            try:
                response = await self._sqs.client.receive_message(
                    QueueUrl=self.response_queue_url,
                    MaxNumberOfMessages=_MESSAGES_PER_POLL,
                    WaitTimeSeconds=WAIT_TIME_S,
                    VisibilityTimeout=self._visibility_timeout_s,
                    MessageSystemAttributeNames=["SentTimestamp"],
                )
                for message in response.get("Messages", []):
                    await self._route(message)
            except asyncio.CancelledError:
                raise
            except Exception:  # keep routing through SQS outages; waiting calls time out
                logger.exception("SQS reply router poll failed")
                await asyncio.sleep(ERROR_POLL_DELAY_S)

    async def _delete(self, message: Mapping[str, Any]) -> None:
        await self._sqs.client.delete_message(
            QueueUrl=self.response_queue_url, ReceiptHandle=message["ReceiptHandle"]
        )

    def _is_expired(self, message: Mapping[str, Any]) -> bool:
        sent_ms = message.get("Attributes", {}).get("SentTimestamp")
        if sent_ms is None:
            return False
        return time.time() * 1000 - int(sent_ms) > self._request_timeout_s * 1000

    async def _route(self, message: Mapping[str, Any]) -> None:
        try:
            reply = decode_reply(message.get("Body", ""))
        except MalformedEnvelope as error:
            logger.warning(
                "Dropping malformed SQS worker reply %s: %s", message["MessageId"], error
            )
            await self._delete(message)
            return
        waiting = self._waiting.pop(reply.request_id or "", None)
        if waiting is None:
            if self._is_expired(message):
                await self._delete(message)
            else:  # most likely another dispatcher's reply: give it back at once
                await self._sqs.client.change_message_visibility(
                    QueueUrl=self.response_queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=0,
                )
            return
        execution_id, future = waiting
        await self._delete(message)
        try:
            outcome = await self._result_of(reply, execution_id)
        except TransportFailure as failure:
            if not future.done():
                future.set_exception(failure)
            return
        if not future.done():
            future.set_result(outcome)

    async def _result_of(self, reply: SqsReply, execution_id: str) -> Result:
        """The reply's result, or TPF's failure for a bad protocol, signature or envelope."""
        if not reply.is_supported():
            raise TransportFailure(
                WORKER_FAILURE,
                "SQS transition worker returned unsupported protocol envelope for execution "
                f"{execution_id}",
            )
        try:
            await reply.verify(self._verifier)
        except SignatureRejected as rejected:
            raise TransportFailure(
                WORKER_FAILURE, _rejection_message(rejected.reason, execution_id)
            ) from None
        try:
            return decode_result(reply.result_envelope or "")
        except MalformedEnvelope:
            raise TransportFailure(
                WORKER_FAILURE,
                "SQS transition worker returned malformed result envelope for execution "
                f"{execution_id}",
            ) from None


def _rejection_message(reason: str, execution_id: str) -> str:
    prefix = "SQS transition worker response"
    if reason in ("missing", "timestamp"):
        return f"{prefix} has invalid signature timestamp for execution {execution_id}"
    if reason == "stale":
        return f"{prefix} signature timestamp is outside tolerance for execution {execution_id}"
    if reason == "replayed":
        return f"{prefix} nonce was already used for execution {execution_id}"
    return f"{prefix} signature mismatch for execution {execution_id}"
