"""TPF's SQS request/reply worker protocol (TPF_WIRE §9.6), on aiobotocore.

`SqsWorkerServer` polls the request queue (1 message per poll, 1 s wait), drops unauthenticated
or malformed requests, runs the command and replies on the response queue. Unlike TPF, whose
coordinator assumes a response queue of its own, replies here are demultiplexed by `requestId`:
one `SqsReplyRouter` long-polls a response queue and hands each reply to the
`SqsWorkerClient.execute` call waiting for it, and gives a reply nobody here waits for back to the
queue (visibility 0) so another dispatcher sharing the queue can take it.
"""

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from aiobotocore.session import get_session

from tpf_telemetry import context_of_sqs_message, sqs_attribute_names, sqs_message_attributes
from tpf_worker.nonces import NonceCache
from tpf_worker.protocol.capability import Capability
from tpf_worker.protocol.command import Command, decode_command, encode_command
from tpf_worker.protocol.malformed import MalformedEnvelope
from tpf_worker.protocol.result import Result, decode_result, encode_result
from tpf_worker.signing import SignatureRejected, Verifier
from tpf_worker.tracing import consumer_span
from tpf_worker.transports import WORKER_FAILURE, CommandHandler, TransportFailure
from tpf_worker.transports.sqs_messages import (
    SqsReply,
    decode_reply,
    decode_request,
    encode_reply,
    encode_request,
)

__all__ = ["SqsConfig", "SqsReplyRouter", "SqsWorkerClient", "SqsWorkerServer"]

logger = logging.getLogger(__name__)

_SERVER_MESSAGES_PER_POLL: Final = 1
_ROUTER_MESSAGES_PER_POLL: Final = 10
_WAIT_TIME_S: Final = 1
_ERROR_POLL_DELAY_S: Final = 0.5
_DEFAULT_TIMEOUT_S: Final = 30.0


@dataclass(frozen=True)
class SqsConfig:
    """Where SQS is and how to sign requests to it; None means botocore's own default chain."""

    region: str = "us-east-1"
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None


class _SqsConnection:
    """One aiobotocore SQS client, opened by `open` and closed by `close`."""

    def __init__(self, config: SqsConfig) -> None:
        self._config = config
        self._stack = contextlib.AsyncExitStack()
        self.client: Any = None

    async def open(self) -> None:
        kwargs: dict[str, str] = {"region_name": self._config.region}
        if self._config.endpoint_url:
            kwargs["endpoint_url"] = self._config.endpoint_url
        if self._config.access_key_id and self._config.secret_access_key:
            kwargs["aws_access_key_id"] = self._config.access_key_id
            kwargs["aws_secret_access_key"] = self._config.secret_access_key
        self.client = await self._stack.enter_async_context(
            get_session().create_client("sqs", **kwargs)
        )

    async def close(self) -> None:
        await self._stack.aclose()
        self.client = None


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
        request_timeout_s: float = _DEFAULT_TIMEOUT_S,
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
        self._sqs = _SqsConnection(config)
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
                async with asyncio.timeout(_WAIT_TIME_S + grace_s):
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
                    MaxNumberOfMessages=_SERVER_MESSAGES_PER_POLL,
                    WaitTimeSeconds=_WAIT_TIME_S,
                    VisibilityTimeout=self._visibility_timeout_s,
                    MessageAttributeNames=sqs_attribute_names(),
                )
            except Exception:  # keep polling through SQS outages, as TPF's poller does
                self._slots.release()
                logger.exception("SQS worker poll failed")
                await asyncio.sleep(_ERROR_POLL_DELAY_S)
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
        with consumer_span(
            "execute command",
            context_of_sqs_message(message),
            {"tpf.execution_id": command.execution_id, "messaging.system": "aws_sqs"},
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


class SqsReplyRouter:
    """Long-polls one response queue and routes replies to the calls waiting for them."""

    def __init__(
        self,
        response_queue_url: str,
        config: SqsConfig,
        *,
        shared_secret: str,
        tolerance: timedelta = timedelta(minutes=2),
        request_timeout_s: float = _DEFAULT_TIMEOUT_S,
        visibility_timeout_s: int = 30,
    ) -> None:
        self.response_queue_url = response_queue_url
        self.config = config
        # Unlike TPF's coordinator, replies go through a nonce cache too: a replayed reply must
        # not complete a second call.
        self._verifier = Verifier(shared_secret, tolerance=tolerance)
        self._request_timeout_s = request_timeout_s
        self._visibility_timeout_s = max(1, visibility_timeout_s)
        self._sqs = _SqsConnection(config)
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
                    MaxNumberOfMessages=_ROUTER_MESSAGES_PER_POLL,
                    WaitTimeSeconds=_WAIT_TIME_S,
                    VisibilityTimeout=self._visibility_timeout_s,
                    MessageSystemAttributeNames=["SentTimestamp"],
                )
                for message in response.get("Messages", []):
                    await self._route(message)
            except asyncio.CancelledError:
                raise
            except Exception:  # keep routing through SQS outages; waiting calls time out
                logger.exception("SQS reply router poll failed")
                await asyncio.sleep(_ERROR_POLL_DELAY_S)

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


class SqsWorkerClient:
    """Sends commands to an SQS request queue; the router delivers the replies."""

    def __init__(
        self,
        request_queue_url: str,
        router: SqsReplyRouter,
        config: SqsConfig,
        *,
        shared_secret: str,
    ) -> None:
        self._request_queue_url = request_queue_url
        self._router = router
        self._secret = shared_secret
        self._sqs = _SqsConnection(config)
        self._opened = False

    async def execute(self, command: Command, *, timeout_s: float) -> Result:
        execution_id = command.execution_id
        send_failed = f"Failed sending SQS transition worker request for execution {execution_id}"
        timed_out = (
            f"Timed out waiting for SQS transition worker response for execution {execution_id}"
        )
        request_id = str(uuid.uuid4())
        body = encode_request(self._secret, request_id, encode_command(command).decode("utf-8"))
        try:
            async with asyncio.timeout(timeout_s):
                await self._router.start()
                if not self._opened:
                    await self._sqs.open()
                    self._opened = True
                reply = self._router.expect(request_id, execution_id)
                try:
                    # The context rides in message attributes: the body stays exactly TPF's.
                    await self._sqs.client.send_message(
                        QueueUrl=self._request_queue_url,
                        MessageBody=body,
                        MessageAttributes=sqs_message_attributes(),
                    )
                except Exception as error:  # any SQS/botocore failure, mapped per §9.7
                    logger.warning("SQS worker request send failed: %s", error)
                    raise TransportFailure(WORKER_FAILURE, send_failed) from None
                return await reply
        except TimeoutError:
            raise TransportFailure(WORKER_FAILURE, timed_out) from None
        finally:
            self._router.forget(request_id)

    async def capabilities(self, *, timeout_s: float) -> Capability:
        # TPF's SQS protocol has no capability exchange.
        raise TransportFailure(
            WORKER_FAILURE, "SQS transition workers do not answer capability requests"
        )

    async def close(self) -> None:
        if self._opened:
            await self._sqs.close()
            self._opened = False
