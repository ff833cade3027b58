"""The campaign's clients of the suite, as its users reach it: TPF's REST API on the gateway, the
coordinator's gRPC API, and the SQS bridge's queues. Each call either succeeds or raises
CallFailed naming what went wrong in a few words (counted in the report, never retried here).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import grpc
from aiobotocore.session import get_session
from google.protobuf import json_format

from tests.chaos.orders import Order
from tests.support.dev_suite import PIPELINE_ID, TENANT, DevSuite
from tests.support.restaurant import ORDER_TYPE, TRANSITION
from tpf.common.v1 import payload_pb2
from tpf.coordinator.v1 import execution_pb2, interaction_service_pb2_grpc
from tpf.coordinator.v1 import execution_service_pb2 as epb
from tpf.coordinator.v1 import execution_service_pb2_grpc as epb_grpc
from tpf.coordinator.v1 import interaction_service_pb2 as ipb
from tpf_devserver.local_sqs import CREDENTIALS, REGION
from tpf_devserver.settings import DEMO_TOKEN
from tpf_envelope import encode, to_json_dict
from tpf_rpc.channel import client_channel

CALL_TIMEOUT_S: Final = 10.0
_PAGE_SIZE: Final = 1000
_REASON_HEADER: Final = "X-TPF-Error-Reason"


class CallFailed(Exception):
    """A call the suite did not accept; `kind` is short and stable enough to count."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class PendingAwait:
    interaction_id: str
    key: str
    order_id: str


def _input_envelope(order: Order) -> dict[str, str]:
    return {
        "payloadTypeId": ORDER_TYPE,
        "payloadEncoding": TRANSITION,
        "payload": json.dumps(order.order_request(), separators=(",", ":")),
    }


class SuiteClients:
    """One HTTP session, one gRPC channel and one SQS client, shared by every call."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        channel: grpc.aio.Channel,
        sqs: Any,
        gateway: str,
        queues: dict[str, str],
    ) -> None:
        self._http = http
        self._executions = epb_grpc.ExecutionServiceStub(channel)
        self._interactions = interaction_service_pb2_grpc.InteractionServiceStub(channel)
        self._sqs = sqs
        self._gateway = gateway
        self.queues = queues

    async def submit(self, order: Order) -> None:
        if order.channel == "rest":
            await self._rest(
                "executions",
                {
                    "pipelineId": PIPELINE_ID,
                    "inputShape": "UNI",
                    "inputPayload": _input_envelope(order),
                    "idempotencyKey": order.key,
                },
            )
        elif order.channel == "grpc":
            envelope = _input_envelope(order)
            await self._grpc(
                self._executions.SubmitExecution(
                    epb.SubmitExecutionRequest(
                        tenant_id=TENANT,
                        pipeline_id=PIPELINE_ID,
                        input_shape=execution_pb2.INPUT_SHAPE_UNI,
                        input_payload=payload_pb2.PayloadEnvelope(
                            payload_type_id=envelope["payloadTypeId"],
                            payload_encoding=envelope["payloadEncoding"],
                            payload=envelope["payload"],
                        ),
                        idempotency_key=order.key,
                    ),
                    timeout=CALL_TIMEOUT_S,
                )
            )
        else:
            await self._send(
                "orders-submit",
                {
                    "tenantId": TENANT,
                    "pipelineId": PIPELINE_ID,
                    "inputShape": "UNI",
                    "inputPayload": _input_envelope(order),
                    "idempotencyKey": order.key,
                },
            )

    async def complete(self, order: Order, pending: PendingAwait) -> None:
        decision = order.decision(pending.order_id)
        if order.answer_channel == "rest":
            await self._rest(
                "interactions/complete",
                {
                    "interactionId": pending.interaction_id,
                    "responsePayload": to_json_dict(encode(decision)),
                    "idempotencyKey": f"answer-{order.key}",
                },
            )
        elif order.answer_channel == "grpc":
            envelope = encode(decision)
            await self._grpc(
                self._interactions.CompleteInteraction(
                    ipb.CompleteInteractionRequest(
                        tenant_id=TENANT,
                        interaction_id=pending.interaction_id,
                        response_payload=payload_pb2.PayloadEnvelope(
                            payload_type_id=envelope.payload_type_id,
                            payload_encoding=envelope.payload_encoding,
                            payload=envelope.payload,
                        ),
                        idempotency_key=f"answer-{order.key}",
                    ),
                    timeout=CALL_TIMEOUT_S,
                )
            )
        else:
            await self._send(
                "orders-complete",
                {
                    "tenantId": TENANT,
                    "interactionId": pending.interaction_id,
                    "responsePayload": decision,
                    "idempotencyKey": f"answer-{order.key}",
                },
            )

    async def pending_awaits(self) -> list[PendingAwait]:
        """Every interaction of the tenant still waiting, with the order it belongs to."""
        found: list[PendingAwait] = []
        token = ""
        while True:
            page = await self._grpc(
                self._interactions.ListPendingInteractions(
                    ipb.ListPendingInteractionsRequest(
                        tenant_id=TENANT, page_size=_PAGE_SIZE, page_token=token
                    ),
                    timeout=CALL_TIMEOUT_S,
                )
            )
            for interaction in page.interactions:
                request = json_format.MessageToDict(interaction.request_payload)
                if isinstance(request, dict):
                    found.append(
                        PendingAwait(
                            interaction.interaction_id,
                            str(request.get("customerName", "")),
                            str(request.get("orderId", "")),
                        )
                    )
            token = page.next_page_token
            if not token:
                return found

    async def queue_depth(self, name: str) -> int:
        """Messages on queue `name`, visible or in flight (SQS's approximate counts)."""
        attributes = await self._sqs.get_queue_attributes(
            QueueUrl=self.queues[name],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
        counts = attributes["Attributes"]
        return int(counts["ApproximateNumberOfMessages"]) + int(
            counts["ApproximateNumberOfMessagesNotVisible"]
        )

    async def _rest(self, path: str, body: dict[str, Any]) -> Any:
        url = f"{self._gateway}/tpf/control-plane/tenants/{TENANT}/{path}"
        try:
            async with self._http.post(url, json=body) as response:
                if response.status != 200:
                    reason = response.headers.get(_REASON_HEADER, "no reason")
                    raise CallFailed(f"HTTP {response.status} {reason}")
                return await response.json()
        except (aiohttp.ClientError, TimeoutError) as error:
            raise CallFailed(type(error).__name__) from None

    async def _grpc(self, call: Any) -> Any:
        try:
            return await call
        except grpc.aio.AioRpcError as error:
            raise CallFailed(f"gRPC {error.code().name}") from None

    async def _send(self, queue: str, body: dict[str, Any]) -> None:
        try:
            await self._sqs.send_message(QueueUrl=self.queues[queue], MessageBody=json.dumps(body))
        except Exception as error:  # botocore raises many types; any one means not sent
            raise CallFailed(f"SQS {type(error).__name__}") from None


@asynccontextmanager
async def suite_clients(suite: DevSuite) -> AsyncIterator[SuiteClients]:
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(
            aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {DEMO_TOKEN}"},
                timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT_S),
            )
        )
        channel = client_channel(suite.target("coordinator"), token=DEMO_TOKEN, retries=False)
        stack.push_async_callback(channel.close)
        sqs = await stack.enter_async_context(
            get_session().create_client(
                "sqs",
                endpoint_url=f"http://{suite.target('sqs')}",
                region_name=REGION,
                aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            )
        )
        queues = {
            name: (await sqs.get_queue_url(QueueName=name))["QueueUrl"]
            for name in ("orders-submit", "orders-complete", "bridge-dlq")
        }
        yield SuiteClients(http, channel, sqs, f"http://{suite.target('gateway')}", queues)
