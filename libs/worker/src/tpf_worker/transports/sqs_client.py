"""The dispatcher's sender of TPF's SQS protocol (TPF_WIRE §9.6): a command goes out as a
signed request; the `SqsReplyRouter` delivers its reply."""

import asyncio
import logging
import uuid

from tpf_telemetry import sqs_message_attributes
from tpf_worker.protocol.capability import Capability
from tpf_worker.protocol.command import Command, encode_command
from tpf_worker.protocol.result import Result
from tpf_worker.transports import WORKER_FAILURE, TransportFailure
from tpf_worker.transports.sqs_connection import SqsConnection
from tpf_worker.transports.sqs_messages import encode_request
from tpf_worker.transports.sqs_reply_router import SqsReplyRouter
from tpf_worker.transports.sqs_settings import SqsConfig

__all__ = ["SqsWorkerClient"]

# The name the SQS transport logged under before it was split, so log filters keep matching.
logger = logging.getLogger("tpf_worker.transports.sqs")


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
        self._sqs = SqsConnection(config)
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
