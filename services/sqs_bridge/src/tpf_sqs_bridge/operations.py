"""The two things a message can ask for: submit an execution, complete an interaction.

Each operation parses a body into its coordinator request and makes the call; the consumer
does everything around it (visibility, replies, dead letters, deletion), the same for both.
"""

from __future__ import annotations

from typing import Any, Protocol

from tpf.coordinator.v1 import execution_service_pb2 as epb
from tpf.coordinator.v1 import execution_service_pb2_grpc, interaction_service_pb2_grpc
from tpf.coordinator.v1 import interaction_service_pb2 as ipb
from tpf_sqs_bridge.bodies import (
    OPERATION_COMPLETE,
    OPERATION_SUBMIT,
    JsonBody,
    completed_reply,
    submitted_reply,
)
from tpf_sqs_bridge.messages import ParsedMessage, parse_completion, parse_submit
from tpf_sqs_bridge.sqs import ReceivedMessage


class Operation(Protocol):
    """One kind of message. `parse` raises TpfError (InvalidArgument) for a bad body; `call`
    raises grpc.aio.AioRpcError when the coordinator refuses or cannot be reached."""

    @property
    def name(self) -> str: ...

    def parse(self, message: ReceivedMessage) -> ParsedMessage[Any]: ...

    async def call(self, parsed: ParsedMessage[Any], message: ReceivedMessage) -> JsonBody: ...


class SubmitOperation:
    def __init__(
        self,
        stub: execution_service_pb2_grpc.ExecutionServiceAsyncStub,
        *,
        timeout_s: float,
    ) -> None:
        self._stub = stub
        self._timeout_s = timeout_s

    @property
    def name(self) -> str:
        return OPERATION_SUBMIT

    def parse(self, message: ReceivedMessage) -> ParsedMessage[epb.SubmitExecutionRequest]:
        return parse_submit(message.body, message_id=message.message_id)

    async def call(self, parsed: ParsedMessage[Any], message: ReceivedMessage) -> JsonBody:
        request: epb.SubmitExecutionRequest = parsed.request
        response: epb.SubmitExecutionResponse = await self._stub.SubmitExecution(
            request, timeout=self._timeout_s
        )
        return submitted_reply(
            response,
            tenant_id=parsed.tenant_id,
            message=message,
            client_request_id=parsed.client_request_id,
        )


class CompleteOperation:
    def __init__(
        self,
        stub: interaction_service_pb2_grpc.InteractionServiceAsyncStub,
        *,
        timeout_s: float,
    ) -> None:
        self._stub = stub
        self._timeout_s = timeout_s

    @property
    def name(self) -> str:
        return OPERATION_COMPLETE

    def parse(self, message: ReceivedMessage) -> ParsedMessage[ipb.CompleteInteractionRequest]:
        return parse_completion(message.body)

    async def call(self, parsed: ParsedMessage[Any], message: ReceivedMessage) -> JsonBody:
        request: ipb.CompleteInteractionRequest = parsed.request
        response: ipb.CompleteInteractionResponse = await self._stub.CompleteInteraction(
            request, timeout=self._timeout_s
        )
        return completed_reply(response, tenant_id=parsed.tenant_id, message=message)
