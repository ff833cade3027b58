"""JSON bodies the bridge sends: replies, rejections, dead letters and terminal events.

TPF's JSON style: camelCase keys, enum values without their prefix, epoch-ms integers. Every
body has a `type`, so one queue may carry several kinds. docs/sqs-bridge.md shows each one.
"""

from __future__ import annotations

import uuid
from typing import Final

from tpf.common.v1 import execution_status_pb2
from tpf.coordinator.v1 import execution_service_pb2 as epb
from tpf.coordinator.v1 import interaction_pb2, terminal_event_pb2
from tpf.coordinator.v1 import interaction_service_pb2 as ipb
from tpf_sqs_bridge.refusals import Refusal
from tpf_sqs_bridge.sqs import ReceivedMessage

JsonBody = dict[str, object]

OPERATION_SUBMIT: Final = "submit"
OPERATION_COMPLETE: Final = "complete"
TERMINAL_EVENT_TYPE: Final = "execution.terminal"
# Fixed forever: consumers dedupe terminal events by this id.
_EVENT_ID_NAMESPACE = uuid.UUID("0d6f3a4e-8c59-4f7e-b1c2-6a3e9d7b5c41")


def status_name(status: execution_status_pb2.ExecutionStatus.ValueType) -> str:
    return execution_status_pb2.ExecutionStatus.Name(status).removeprefix("EXECUTION_STATUS_")


def submitted_reply(
    response: epb.SubmitExecutionResponse,
    *,
    tenant_id: str,
    message: ReceivedMessage,
    client_request_id: str | None,
) -> JsonBody:
    body: JsonBody = {
        "type": "submitted",
        "tenantId": tenant_id,
        "executionId": response.execution_id,
        "duplicate": response.duplicate,
        "statusUrl": response.status_url,
        "submittedAtEpochMs": response.submitted_at_epoch_ms,
        "messageId": message.message_id,
    }
    if client_request_id is not None:
        body["requestId"] = client_request_id
    return body


def completed_reply(
    response: ipb.CompleteInteractionResponse, *, tenant_id: str, message: ReceivedMessage
) -> JsonBody:
    return {
        "type": "completed",
        "tenantId": tenant_id,
        "interactionId": response.interaction_id,
        "executionId": response.execution_id,
        "stepId": response.step_id,
        "status": interaction_pb2.InteractionStatus.Name(response.status).removeprefix(
            "INTERACTION_STATUS_"
        ),
        "duplicate": response.duplicate,
        "messageId": message.message_id,
    }


def rejected_reply(
    refusal: Refusal,
    *,
    operation: str,
    tenant_id: str | None,
    message: ReceivedMessage,
    client_request_id: str | None = None,
) -> JsonBody:
    body: JsonBody = {
        "type": "rejected",
        "operation": operation,
        "reason": refusal.reason,
        "message": refusal.message,
        "metadata": refusal.metadata,
        "messageId": message.message_id,
    }
    if tenant_id is not None:
        body["tenantId"] = tenant_id
    if client_request_id is not None:
        body["requestId"] = client_request_id
    return body


def dead_letter(
    refusal: Refusal,
    *,
    operation: str,
    message: ReceivedMessage,
    cause: str,
    dead_lettered_at_ms: int,
) -> JsonBody:
    """What the bridge DLQ keeps: why, and the original body verbatim for a redrive."""
    return {
        "type": "bridge.dead_letter",
        "operation": operation,
        "cause": cause,
        "reason": refusal.reason,
        "message": refusal.message,
        "grpcCode": refusal.code,
        "metadata": refusal.metadata,
        "sourceQueueUrl": message.queue_url,
        "messageId": message.message_id,
        "receiveCount": message.receive_count,
        "deadLetteredAtEpochMs": dead_lettered_at_ms,
        "body": message.body,
    }


def terminal_event(event: terminal_event_pb2.TerminalEvent) -> JsonBody:
    """An execution's terminal state; `eventId` is the same for every publication of it."""
    body: JsonBody = {
        "type": TERMINAL_EVENT_TYPE,
        "eventId": str(
            uuid.uuid5(
                _EVENT_ID_NAMESPACE,
                f"{event.tenant_id}:{event.execution_id}:{event.version}",
            )
        ),
        "tenantId": event.tenant_id,
        "executionId": event.execution_id,
        "pipelineId": event.pipeline_id,
        "releaseVersion": event.release_version,
        "status": status_name(event.status),
        "version": event.version,
        "updatedAtEpochMs": event.updated_at_epoch_ms,
        "errorCode": event.error_code if event.HasField("error_code") else None,
        "errorMessage": event.error_message if event.HasField("error_message") else None,
    }
    if event.terminal_reason:
        body["deadLetterReason"] = event.terminal_reason
    return body
