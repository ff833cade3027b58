"""Worker failures → errorCode / errorMessage (TPF_WIRE §9.7) and the dead-letter line (§9.6)."""

from __future__ import annotations

import json

import pytest

from tpf_coordinator.domain.failures import (
    DeadLetterEnvelope,
    dlq_log_line,
    grpc_worker_failure,
    sqs_worker_timeout,
    transition_key,
    transport_failure,
    truncate_message,
    worker_failure,
)
from tpf_coordinator.domain.model import StepFailure, TerminalReason

NON_RETRYABLE_CLASS = "org.pipelineframework.step.NonRetryableException"


@pytest.mark.parametrize(
    ("failure_class", "message", "expected"),
    [
        (
            "java.lang.IllegalStateException",
            "inventory service down",
            StepFailure(
                "TransitionWorkerFailureException",
                "java.lang.IllegalStateException: inventory service down",
                retryable=True,
            ),
        ),
        (
            "java.lang.IllegalStateException",
            None,
            StepFailure(
                "TransitionWorkerFailureException", "java.lang.IllegalStateException", True
            ),
        ),
        (
            "ValueError",
            "   ",
            StepFailure("TransitionWorkerFailureException", "ValueError", retryable=True),
        ),
        (
            NON_RETRYABLE_CLASS,
            "order was rejected",
            StepFailure("NonRetryableException", "order was rejected", retryable=False),
        ),
        (
            NON_RETRYABLE_CLASS,
            "",
            StepFailure("NonRetryableException", NON_RETRYABLE_CLASS, retryable=False),
        ),
    ],
    ids=["message", "null-message", "blank-message", "non-retryable", "non-retryable-no-message"],
)
def test_worker_failed_results_map_as_tpf(
    failure_class: str, message: str | None, expected: StepFailure
) -> None:
    assert worker_failure(failure_class, message) == expected


def test_known_subclasses_of_non_retryable_are_non_retryable_when_named() -> None:
    subclass = "com.example.OrderRejectedException"
    assert worker_failure(subclass, "no").retryable is True
    named = worker_failure(
        subclass, "no", non_retryable_classes=frozenset({NON_RETRYABLE_CLASS, subclass})
    )
    assert named == StepFailure("NonRetryableException", "no", retryable=False)


def test_worker_failure_messages_are_cut_to_512_characters() -> None:
    failure = worker_failure("X", "y" * 1_000)
    assert failure.error_message == "X: " + "y" * 509
    assert len(failure.error_message) == 512


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (
            transport_failure("HttpTimeoutException", "request timed out"),
            StepFailure("HttpTimeoutException", "request timed out", retryable=True),
        ),
        (
            transport_failure("ConnectException", None),
            StepFailure("ConnectException", "", retryable=True),
        ),
        (
            grpc_worker_failure("e-1"),
            StepFailure(
                "TransitionWorkerFailureException",
                "gRPC transition worker failed for execution e-1",
                retryable=True,
            ),
        ),
        (
            sqs_worker_timeout("e-1"),
            StepFailure(
                "TransitionWorkerFailureException",
                "Timed out waiting for SQS transition worker response for execution e-1",
                retryable=True,
            ),
        ),
    ],
    ids=["rest-timeout", "rest-connect-no-message", "grpc", "sqs-timeout"],
)
def test_transport_failures_are_retryable(failure: StepFailure, expected: StepFailure) -> None:
    assert failure == expected


def test_truncate_message_keeps_short_text_and_cuts_long_text() -> None:
    assert truncate_message("short") == "short"
    assert truncate_message("é" * 600) == "é" * 512
    assert truncate_message("abcdef", 3) == "abc"


def test_transition_key_is_execution_step_attempt() -> None:
    assert transition_key("e-1", 2, 0) == "e-1:2:0"


def test_dlq_log_line_is_tpfs_exactly() -> None:
    line = dlq_log_line(
        tenant_id="restaurant-demo",
        execution_id="e-1",
        transition_key="e-1:0:3",
        terminal_reason=TerminalReason.RETRY_EXHAUSTED,
        error_message="java.lang.IllegalStateException: boom",
        retryable=True,
        retries_observed=3,
        transport="grpc",
        platform=" compute ",
    )
    assert line == (
        "Execution moved to DLQ: tenant=restaurant-demo execution=e-1 transition=e-1:0:3 "
        "status=FAILED reason=retry_exhausted error=java.lang.IllegalStateException: boom "
        "retryable=true retriesObserved=3 transport=GRPC platform=COMPUTE"
    )


def test_dlq_log_line_spells_missing_values_as_java_does() -> None:
    line = dlq_log_line(
        tenant_id="t",
        execution_id="e",
        transition_key="e:1:0",
        terminal_reason="non_retryable",
        error_message=None,
        retryable=False,
        retries_observed=0,
    )
    assert line.endswith(
        "reason=non_retryable error=null retryable=false retriesObserved=0 "
        "transport=UNKNOWN platform=UNKNOWN"
    )


def test_dead_letter_envelope_json_has_tpfs_keys_in_order() -> None:
    envelope = DeadLetterEnvelope(
        tenant_id="t",
        execution_id="e",
        execution_key="k",
        correlation_id="k",
        transition_key="e:0:1",
        terminal_reason=TerminalReason.NON_RETRYABLE,
        error_code="NonRetryableException",
        error_message="bad",
        retryable=False,
        retries_observed=1,
        created_at_epoch_ms=5,
        transport="sqs",
    )
    body = json.dumps(envelope.to_json(), separators=(",", ":"))
    assert body == (
        '{"tenantId":"t","executionId":"e","executionKey":"k","correlationId":"k",'
        '"transitionKey":"e:0:1","resourceType":"tpf.orchestrator.execution",'
        '"resourceName":"OrchestratorService/Run","transport":"SQS","platform":"UNKNOWN",'
        '"terminalStatus":"FAILED","terminalReason":"non_retryable",'
        '"errorCode":"NonRetryableException","errorMessage":"bad","retryable":false,'
        '"retriesObserved":1,"createdAtEpochMs":5}'
    )
    assert envelope.log_line() == (
        "Execution moved to DLQ: tenant=t execution=e transition=e:0:1 status=FAILED "
        "reason=non_retryable error=bad retryable=false retriesObserved=1 transport=SQS "
        "platform=UNKNOWN"
    )
