"""The SQS calls the bridge makes, over one aiobotocore client.

Transport retries (throttling, connection resets) are botocore's own `standard` retry mode,
configured where the client is built; this module adds none. Bodies are JSON text, and no
message attributes are used, as in TPF's SQS protocols (TPF_WIRE §9.6).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from tpf_telemetry import sqs_attribute_names, sqs_message_attributes

# ReceiveMessage attribute holding how many times the message was received, this time included.
_RECEIVE_COUNT = "ApproximateReceiveCount"
# Error codes meaning the destination queue itself is wrong: resending cannot succeed.
_UNUSABLE_QUEUE_CODES = frozenset(
    {
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "InvalidAddress",
        "AccessDenied",
        "InvalidParameterValue",
    }
)


class UnusableQueue(Exception):
    """A send was refused because of the queue URL itself (missing queue, no access)."""


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    queue_url: str
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    # The message's attributes: a sender's trace context rides there (W3C `traceparent`).
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SqsEndpoint:
    """Where SQS is; None fields fall back to the AWS chain (AWS_ENDPOINT_URL, AWS_REGION, ...)."""

    endpoint_url: str | None
    region: str | None
    credentials: tuple[str, str] | None
    # The client's read timeout must outlast a long poll.
    read_timeout_s: float


@asynccontextmanager
async def sqs_client(endpoint: SqsEndpoint) -> AsyncIterator[Any]:
    """An aiobotocore SQS client (untyped: aiobotocore ships no stubs)."""
    credentials: dict[str, str] = {}
    if endpoint.credentials is not None:
        credentials = {
            "aws_access_key_id": endpoint.credentials[0],
            "aws_secret_access_key": endpoint.credentials[1],
        }
    config = AioConfig(
        retries={"mode": "standard", "max_attempts": 5},
        read_timeout=endpoint.read_timeout_s,
        connect_timeout=5,
    )
    async with get_session().create_client(
        "sqs",
        endpoint_url=endpoint.endpoint_url,
        region_name=endpoint.region,
        config=config,
        **credentials,
    ) as client:
        yield client


class SqsQueues:
    """Receive, delete, hide and send on any queue URL, through one client."""

    def __init__(self, client: Any) -> None:
        self._client = client

    async def receive(
        self, queue_url: str, *, max_messages: int, wait_time_s: int, visibility_timeout_s: int
    ) -> list[ReceivedMessage]:
        response = await self._client.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_time_s,
            VisibilityTimeout=visibility_timeout_s,
            MessageSystemAttributeNames=[_RECEIVE_COUNT],
            MessageAttributeNames=sqs_attribute_names(),
        )
        return [
            ReceivedMessage(
                queue_url=queue_url,
                message_id=message["MessageId"],
                receipt_handle=message["ReceiptHandle"],
                body=message.get("Body", ""),
                receive_count=int(message.get("Attributes", {}).get(_RECEIVE_COUNT, "1")),
                attributes=message.get("MessageAttributes", {}),
            )
            for message in response.get("Messages", [])
        ]

    async def delete(self, message: ReceivedMessage) -> None:
        await self._client.delete_message(
            QueueUrl=message.queue_url, ReceiptHandle=message.receipt_handle
        )

    async def hide(self, message: ReceivedMessage, *, seconds: int) -> None:
        """Make the message invisible for `seconds` from now (ChangeMessageVisibility)."""
        await self._client.change_message_visibility(
            QueueUrl=message.queue_url,
            ReceiptHandle=message.receipt_handle,
            VisibilityTimeout=seconds,
        )

    async def send_json(self, queue_url: str, body: Mapping[str, object]) -> None:
        """Send one JSON body; raises UnusableQueue if the queue URL itself is the problem."""
        try:
            # The reply carries the trace it was made in, beside the body.
            await self._client.send_message(
                QueueUrl=queue_url,
                MessageBody=_json_text(body),
                MessageAttributes=sqs_message_attributes(),
            )
        except ClientError as error:
            unusable = _unusable_queue(error, queue_url)
            if unusable is None:
                raise
            raise unusable from error

    async def send_json_batch(
        self, queue_url: str, bodies: Sequence[Mapping[str, object]]
    ) -> list[int]:
        """Send up to 10 JSON bodies in one call, in order; the indexes of those SQS did not
        accept (send them again). Raises UnusableQueue if the queue URL itself is the problem."""
        entries = [
            {"Id": str(index), "MessageBody": _json_text(body)} for index, body in enumerate(bodies)
        ]
        try:
            response = await self._client.send_message_batch(QueueUrl=queue_url, Entries=entries)
        except ClientError as error:
            unusable = _unusable_queue(error, queue_url)
            if unusable is None:
                raise
            raise unusable from error
        return sorted(int(failed["Id"]) for failed in response.get("Failed", []))


def _json_text(body: Mapping[str, object]) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def _unusable_queue(error: ClientError, queue_url: str) -> UnusableQueue | None:
    """UnusableQueue when the error names the queue URL itself as the problem."""
    code = error.response.get("Error", {}).get("Code", "")
    return UnusableQueue(f"{queue_url}: {code}") if code in _UNUSABLE_QUEUE_CODES else None
