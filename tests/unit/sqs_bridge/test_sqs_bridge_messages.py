"""Submit and completion bodies → coordinator requests, and the refusals of bad bodies."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tpf.coordinator.v1 import execution_pb2
from tpf_errors import InvalidArgument
from tpf_sqs_bridge.messages import (
    MessageBody,
    parse_completion,
    parse_submit,
    request_id_for_message,
)

ENVELOPE = {
    "payloadTypeId": "org.pipelineframework.Order",
    "payloadEncoding": "application/tpf-transition+json",
    "payload": '{"id":1}',
}


def submit(**changes: Any) -> str:
    body: dict[str, Any] = {
        "tenantId": "t1",
        "pipelineId": "p1",
        "inputShape": "UNI",
        "inputPayload": ENVELOPE,
        "idempotencyKey": "k1",
        "replyQueueUrl": "http://sqs/q/replies",
        "someFutureField": 1,
    }
    body.update(changes)
    return json.dumps({k: v for k, v in body.items() if v is not ...})


def refusal(call: Any) -> tuple[str, str]:
    with pytest.raises(InvalidArgument) as raised:
        call()
    return raised.value.reason, raised.value.metadata.get("field", "")


def test_a_submit_body_becomes_a_submit_request_with_a_request_id_from_the_message_id() -> None:
    parsed = parse_submit(submit(), message_id="m-1")
    request = parsed.request
    assert (request.tenant_id, request.pipeline_id) == ("t1", "p1")
    assert request.input_shape == execution_pb2.INPUT_SHAPE_UNI
    assert request.input_payload.payload == '{"id":1}'
    assert request.idempotency_key == "k1"
    assert request.request_id == request_id_for_message("m-1")
    assert parsed.reply_queue_url == "http://sqs/q/replies"
    assert parsed.client_request_id is None


def test_a_client_request_id_is_used_and_echoed() -> None:
    rid = str(uuid.uuid4())
    parsed = parse_submit(submit(requestId=rid), message_id="m-1")
    assert parsed.request.request_id == rid and parsed.client_request_id == rid


def test_request_ids_are_deterministic_uuid4_shaped_and_distinct_per_message() -> None:
    first = request_id_for_message("m-1")
    assert first == request_id_for_message("m-1")
    assert first != request_id_for_message("m-2")
    parsed = uuid.UUID(first)
    assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and len(first) == 36


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{oops", ("FIELD_INVALID", "body")),
        ("[1, 2]", ("FIELD_INVALID", "body")),
        (submit(tenantId=...), ("FIELD_REQUIRED", "tenantId")),
        (submit(tenantId="  "), ("FIELD_REQUIRED", "tenantId")),
        (submit(pipelineId=7), ("FIELD_INVALID", "pipelineId")),
        (submit(inputShape="BOTH"), ("FIELD_INVALID", "inputShape")),
        (submit(inputPayload=...), ("FIELD_REQUIRED", "inputPayload")),
        (submit(inputPayload={"payload": "1"}), ("FIELD_INVALID", "inputPayload")),
        (submit(requestId="not-a-uuid"), ("FIELD_INVALID", "requestId")),
        (submit(outputStreaming="yes"), ("FIELD_INVALID", "outputStreaming")),
    ],
)
def test_bad_submit_bodies_are_refused_naming_the_field(
    text: str, expected: tuple[str, str]
) -> None:
    assert refusal(lambda: parse_submit(text, message_id="m")) == expected


def test_the_reply_queue_of_a_bad_body_is_still_found() -> None:
    assert MessageBody.reply_queue_url_of(submit(inputShape="BOTH")) == "http://sqs/q/replies"
    assert MessageBody.reply_queue_url_of("{oops") is None


def test_a_completion_with_an_envelope_is_passed_through() -> None:
    parsed = parse_completion(
        json.dumps(
            {
                "tenantId": "t1",
                "correlationId": "c-1",
                "responsePayload": ENVELOPE,
                "actor": "alice",
                "idempotencyKey": "d-1",
            }
        )
    )
    request = parsed.request
    assert request.correlation_id == "c-1" and not request.interaction_id
    assert request.response_payload.payload_type_id == ENVELOPE["payloadTypeId"]
    assert (request.actor, request.idempotency_key) == ("alice", "d-1")
    assert parsed.reply_queue_url is None


def test_a_completion_with_plain_json_is_wrapped_as_a_map_envelope() -> None:
    parsed = parse_completion(
        json.dumps(
            {"tenantId": "t1", "interactionId": "i-1", "responsePayload": {"accepted": True}}
        )
    )
    payload = parsed.request.response_payload
    assert payload.payload_type_id == "java.util.Map"
    assert json.loads(payload.payload)["items"]["accepted"]["payloadTypeId"] == "java.lang.Boolean"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"interactionId": "i", "responsePayload": {}}, ("FIELD_REQUIRED", "tenantId")),
        ({"tenantId": "t", "responsePayload": {}}, ("FIELD_REQUIRED", "interactionId")),
        ({"tenantId": "t", "resumeToken": " "}, ("FIELD_REQUIRED", "interactionId")),
        ({"tenantId": "t", "interactionId": "i"}, ("FIELD_REQUIRED", "responsePayload")),
        (
            {"tenantId": "t", "interactionId": "i", "responsePayload": {" ": 1}},
            ("FIELD_INVALID", "responsePayload"),
        ),
    ],
)
def test_bad_completion_bodies_are_refused_naming_the_field(
    body: dict[str, Any], expected: tuple[str, str]
) -> None:
    assert refusal(lambda: parse_completion(json.dumps(body))) == expected
