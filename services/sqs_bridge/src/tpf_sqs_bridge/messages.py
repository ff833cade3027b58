"""SQS message bodies → coordinator requests: the edge where untrusted JSON is validated.

A submit body mirrors `SubmitExecutionRequest` in TPF's JSON style (TPF_WIRE §3.1); a
completion body mirrors `CompleteInteractionRequest` (TPF_WIRE §3.5, §9.6). Unknown keys are
ignored, as Quarkus ignores them in TPF's REST bodies. Every refusal is an `InvalidArgument`
(FIELD_REQUIRED or FIELD_INVALID) naming the field; docs/sqs-bridge.md lists the shapes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from google.protobuf.message import Message

from tpf.common.v1 import payload_pb2
from tpf.coordinator.v1 import execution_pb2
from tpf.coordinator.v1 import execution_service_pb2 as epb
from tpf.coordinator.v1 import interaction_service_pb2 as ipb
from tpf_errors import InvalidArgument, field_invalid, field_required
from tpf_sqs_bridge.plain_payload import PlainPayloadError, wrap_plain_json

RequestT = TypeVar("RequestT", bound=Message)

INPUT_SHAPES: Mapping[str, execution_pb2.InputShape.ValueType] = {
    "UNI": execution_pb2.INPUT_SHAPE_UNI,
    "MULTI": execution_pb2.INPUT_SHAPE_MULTI,
    "RAW": execution_pb2.INPUT_SHAPE_RAW,
}
_ENVELOPE_KEYS = ("payloadTypeId", "payloadEncoding", "payload")
# Fixed forever: request ids derived from message ids must not change across releases.
_REQUEST_ID_NAMESPACE = uuid.UUID("5f0c7c1e-3d1b-4b8e-9a57-3b0b5b7f2a10")


@dataclass(frozen=True, slots=True)
class ParsedMessage(Generic[RequestT]):
    """A valid message: the request to send and where the reply goes (None: default queue)."""

    request: RequestT
    tenant_id: str
    reply_queue_url: str | None
    # The client's own correlation id (submit `requestId`), echoed in replies; None if absent.
    client_request_id: str | None = None


class MessageBody:
    """A body read as a JSON object; `reply_queue_url` is readable even if the rest is bad."""

    def __init__(self, text: str) -> None:
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            raise field_invalid("body", "the message body is not valid JSON") from None
        if not isinstance(parsed, dict):
            raise field_invalid("body", "the message body must be a JSON object")
        self._fields: dict[str, object] = parsed

    @staticmethod
    def reply_queue_url_of(text: str) -> str | None:
        """The body's `replyQueueUrl` if it has a usable one, whatever else is wrong with it."""
        try:
            return MessageBody(text).optional_text("replyQueueUrl")
        except InvalidArgument:
            return None

    def required_text(self, name: str) -> str:
        value = self.optional_text(name)
        if value is None:
            raise field_required(name)
        return value

    def optional_text(self, name: str) -> str | None:
        """A string field, trimmed; absent, null or blank mean None."""
        value = self._fields.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise field_invalid(name, "it must be a string")
        return value.strip() or None

    def optional_bool(self, name: str) -> bool:
        value = self._fields.get(name)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise field_invalid(name, "it must be true or false")
        return value

    def raw(self, name: str) -> object:
        return self._fields.get(name)


def envelope_of(value: object, name: str) -> payload_pb2.PayloadEnvelope:
    """A TPF envelope object: exactly the three string fields (TPF_WIRE §2)."""
    if not isinstance(value, dict):
        raise field_invalid(
            name, "it must be an envelope {payloadTypeId, payloadEncoding, payload}"
        )
    for key in _ENVELOPE_KEYS:
        if not isinstance(value.get(key), str):
            raise field_invalid(name, f"{key} must be a string")
    return payload_pb2.PayloadEnvelope(
        payload_type_id=value["payloadTypeId"],
        payload_encoding=value["payloadEncoding"],
        payload=value["payload"],
    )


def is_envelope(value: object) -> bool:
    """Whether a JSON value is an envelope rather than a plain object to wrap."""
    return (
        isinstance(value, dict)
        and set(value) == set(_ENVELOPE_KEYS)
        and all(isinstance(value[key], str) for key in _ENVELOPE_KEYS)
    )


def request_id_for_message(message_id: str) -> str:
    """A UUID4-shaped request id derived from the SQS MessageId.

    A redelivered message keeps its MessageId, so every delivery of it sends the same request
    id (AIP-155) and the coordinator answers the repeat instead of acting twice. uuid5 gives
    determinism; the version bits are then set to 4 because the proto documents UUID4.
    """
    derived = uuid.uuid5(_REQUEST_ID_NAMESPACE, f"submit:{message_id}")
    return str(uuid.UUID(bytes=derived.bytes, version=4))


def parse_submit(text: str, *, message_id: str) -> ParsedMessage[epb.SubmitExecutionRequest]:
    """A submit body → SubmitExecutionRequest; raises InvalidArgument naming the field."""
    body = MessageBody(text)
    reply_queue_url = body.optional_text("replyQueueUrl")
    tenant_id = body.required_text("tenantId")
    pipeline_id = body.required_text("pipelineId")
    shape_name = body.required_text("inputShape")
    shape = INPUT_SHAPES.get(shape_name)
    if shape is None:
        raise field_invalid("inputShape", "use UNI, MULTI or RAW")
    if body.raw("inputPayload") is None:
        raise field_required("inputPayload")
    payload = envelope_of(body.raw("inputPayload"), "inputPayload")
    client_request_id = body.optional_text("requestId")
    if client_request_id is not None:
        try:
            uuid.UUID(client_request_id)
        except ValueError:
            raise field_invalid("requestId", "it must be a UUID") from None
    request = epb.SubmitExecutionRequest(
        tenant_id=tenant_id,
        pipeline_id=pipeline_id,
        input_shape=shape,
        input_payload=payload,
        idempotency_key=body.optional_text("idempotencyKey") or "",
        output_streaming=body.optional_bool("outputStreaming"),
        request_id=client_request_id or request_id_for_message(message_id),
    )
    return ParsedMessage(request, tenant_id, reply_queue_url, client_request_id)


def parse_completion(text: str) -> ParsedMessage[ipb.CompleteInteractionRequest]:
    """A completion body → CompleteInteractionRequest; raises InvalidArgument naming the field.

    `responsePayload` is an envelope object, or any other non-null JSON value, which is wrapped
    as TPF's SQS adapter wraps plain JSON (an object becomes a `java.util.Map` envelope).
    """
    body = MessageBody(text)
    reply_queue_url = body.optional_text("replyQueueUrl")
    tenant_id = body.required_text("tenantId")
    handles = {
        "interaction_id": body.optional_text("interactionId"),
        "correlation_id": body.optional_text("correlationId"),
        "resume_token": body.optional_text("resumeToken"),
    }
    if not any(handles.values()):
        raise InvalidArgument(
            "FIELD_REQUIRED",
            "Set interactionId, correlationId or resumeToken; one of them is required.",
            field="interactionId",
        )
    response = body.raw("responsePayload")
    if response is None:
        raise field_required("responsePayload")
    if is_envelope(response):
        payload = envelope_of(response, "responsePayload")
    else:
        try:
            payload = wrap_plain_json(response)
        except PlainPayloadError as error:
            raise field_invalid("responsePayload", str(error)) from None
    request = ipb.CompleteInteractionRequest(
        tenant_id=tenant_id,
        response_payload=payload,
        idempotency_key=body.optional_text("idempotencyKey") or "",
        actor=body.optional_text("actor") or "",
        **{field: value for field, value in handles.items() if value is not None},
    )
    return ParsedMessage(request, tenant_id, reply_queue_url)
