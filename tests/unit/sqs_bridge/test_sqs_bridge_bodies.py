"""Terminal events and dead-letter bodies."""

from __future__ import annotations

from tpf.common.v1 import execution_status_pb2 as st
from tpf.coordinator.v1 import terminal_event_pb2
from tpf_sqs_bridge.bodies import dead_letter, terminal_event
from tpf_sqs_bridge.refusals import Refusal
from tpf_sqs_bridge.sqs import ReceivedMessage


def execution(**fields: object) -> terminal_event_pb2.TerminalEvent:
    """A terminal event as the coordinator's feed hands it out."""
    return terminal_event_pb2.TerminalEvent(
        position="1:2",
        tenant_id="t1",
        execution_id="e-1",
        pipeline_id="p1",
        release_version="sha256:ab",
        version=5,
        updated_at_epoch_ms=1_766_412_349_999,
        **fields,  # type: ignore[arg-type]  # test values for the proto's keyword fields
    )


def test_a_failed_execution_carries_its_error_and_dead_letter_reason() -> None:
    event = terminal_event(
        execution(
            status=st.EXECUTION_STATUS_FAILED,
            error_code="NonRetryableException",
            error_message="bad",
            terminal_reason="non_retryable",
        )
    )
    assert event["type"] == "execution.terminal" and event["status"] == "FAILED"
    assert (event["errorCode"], event["errorMessage"]) == ("NonRetryableException", "bad")
    assert event["deadLetterReason"] == "non_retryable"
    assert (event["tenantId"], event["executionId"], event["version"]) == ("t1", "e-1", 5)
    assert (event["pipelineId"], event["releaseVersion"]) == ("p1", "sha256:ab")
    assert event["updatedAtEpochMs"] == 1_766_412_349_999


def test_the_event_body_keeps_the_shape_consumers_know() -> None:
    """docs/sqs-bridge.md shows these keys; the feed's position is not one of them."""
    event = terminal_event(execution(status=st.EXECUTION_STATUS_FAILED, terminal_reason="x"))
    assert list(event) == [
        "type",
        "eventId",
        "tenantId",
        "executionId",
        "pipelineId",
        "releaseVersion",
        "status",
        "version",
        "updatedAtEpochMs",
        "errorCode",
        "errorMessage",
        "deadLetterReason",
    ]


def test_a_succeeded_execution_has_null_errors_and_no_dead_letter_reason() -> None:
    event = terminal_event(execution(status=st.EXECUTION_STATUS_SUCCEEDED))
    assert event["status"] == "SUCCEEDED"
    assert event["errorCode"] is None and event["errorMessage"] is None
    assert "deadLetterReason" not in event


def test_event_ids_are_stable_per_execution_version() -> None:
    first = terminal_event(execution(status=st.EXECUTION_STATUS_CANCELLED))
    assert (
        first["eventId"]
        == terminal_event(execution(status=st.EXECUTION_STATUS_CANCELLED))["eventId"]
    )
    other = execution(status=st.EXECUTION_STATUS_CANCELLED)
    other.version = 6
    assert terminal_event(other)["eventId"] != first["eventId"]


def test_a_dead_letter_keeps_the_original_body_and_why() -> None:
    message = ReceivedMessage("http://sqs/q", "m-1", "rh", "{not json", 3)
    body = dead_letter(
        Refusal("FIELD_INVALID", "Fix body", "INVALID_ARGUMENT", True, {"field": "body"}),
        operation="submit",
        message=message,
        cause="permanent",
        dead_lettered_at_ms=42,
    )
    assert body["body"] == "{not json" and body["reason"] == "FIELD_INVALID"
    assert (body["sourceQueueUrl"], body["messageId"], body["receiveCount"]) == (
        "http://sqs/q",
        "m-1",
        3,
    )
    assert (body["cause"], body["operation"], body["deadLetteredAtEpochMs"]) == (
        "permanent",
        "submit",
        42,
    )
