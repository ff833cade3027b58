"""What a failed step records, and how a dead letter is announced, exactly as TPF spells them.

Worker failures become an execution's `errorCode` / `errorMessage` by TPF_WIRE §9.7; a terminal
failure is announced with TPF's dead-letter envelope and its one-line log form (TPF_WIRE §9.6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tpf_coordinator.domain.model import StepFailure

MAX_ERROR_MESSAGE_CHARS = 512

NON_RETRYABLE_EXCEPTION_CLASS = "org.pipelineframework.step.NonRetryableException"
DEFAULT_NON_RETRYABLE_CLASSES = frozenset({NON_RETRYABLE_EXCEPTION_CLASS})

# Simple class names TPF records as `errorCode`.
TRANSITION_WORKER_FAILURE = "TransitionWorkerFailureException"
NON_RETRYABLE = "NonRetryableException"

DEAD_LETTER_RESOURCE_TYPE = "tpf.orchestrator.execution"
DEAD_LETTER_RESOURCE_NAME = "OrchestratorService/Run"
DEAD_LETTER_TERMINAL_STATUS = "FAILED"
UNKNOWN_LABEL = "UNKNOWN"


def truncate_message(text: str, limit: int = MAX_ERROR_MESSAGE_CHARS) -> str:
    """The first `limit` characters of `text`.

    TPF cuts Java (UTF-16) chars; we cut code points, which only differs for text outside the
    Basic Multilingual Plane and never splits a surrogate pair.
    """
    return text[:limit]


def _is_blank(text: str | None) -> bool:
    return text is None or not text.strip()


def worker_failure(
    failure_class: str,
    message: str | None,
    *,
    non_retryable_classes: frozenset[str] = DEFAULT_NON_RETRYABLE_CLASSES,
) -> StepFailure:
    """A worker's FAILED result (`failureClass`, `message`) as TPF classifies it.

    TPF also treats loadable subclasses of `NonRetryableException` as non-retryable; we cannot
    load Java classes, so callers name such subclasses in `non_retryable_classes`.
    """
    if failure_class in non_retryable_classes:
        text = failure_class if _is_blank(message) else str(message)
        return StepFailure(NON_RETRYABLE, truncate_message(text), retryable=False)
    text = failure_class if _is_blank(message) else f"{failure_class}: {message}"
    return StepFailure(TRANSITION_WORKER_FAILURE, truncate_message(text), retryable=True)


def transport_failure(error_code: str, message: str | None) -> StepFailure:
    """A worker that could not be reached or answered badly: always retryable (TPF_WIRE §9.7)."""
    return StepFailure(error_code, truncate_message(message or ""), retryable=True)


def grpc_worker_failure(execution_id: str) -> StepFailure:
    """Any gRPC worker failure without a more specific decode message."""
    return transport_failure(
        TRANSITION_WORKER_FAILURE, f"gRPC transition worker failed for execution {execution_id}"
    )


def sqs_worker_timeout(execution_id: str) -> StepFailure:
    """No SQS worker reply within the request timeout."""
    return transport_failure(
        TRANSITION_WORKER_FAILURE,
        f"Timed out waiting for SQS transition worker response for execution {execution_id}",
    )


def transition_key(execution_id: str, step_index: int, attempt: int) -> str:
    """The per-attempt idempotency key handed to workers and written in dead letters."""
    return f"{execution_id}:{step_index}:{attempt}"


def platform_label(value: str | None) -> str:
    """TPF's `transport` / `platform` label: trimmed upper case, `UNKNOWN` when unset."""
    return UNKNOWN_LABEL if _is_blank(value) else str(value).strip().upper()


def _java_text(value: object) -> str:
    # Java's `%s` formatting: null → "null", booleans in lower case.
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def dlq_log_line(
    *,
    tenant_id: str,
    execution_id: str,
    transition_key: str,
    terminal_reason: str,
    error_message: str | None,
    retryable: bool,
    retries_observed: int,
    transport: str | None = None,
    platform: str | None = None,
) -> str:
    """TPF's ERROR line for a dead letter (`dlq-provider=log`), byte for byte."""
    return (
        f"Execution moved to DLQ: tenant={tenant_id} execution={execution_id} "
        f"transition={transition_key} status={DEAD_LETTER_TERMINAL_STATUS} "
        f"reason={terminal_reason} error={_java_text(error_message)} "
        f"retryable={_java_text(retryable)} retriesObserved={retries_observed} "
        f"transport={platform_label(transport)} platform={platform_label(platform)}"
    )


@dataclass(frozen=True, slots=True)
class DeadLetterEnvelope:
    """TPF's dead-letter envelope (`DeadLetterEnvelope`), the body of the SQS DLQ message.

    `retries_observed` is the execution's attempt when it failed; `terminal_reason` is TPF's
    lower-case spelling (`retry_exhausted`, `non_retryable`, ...).
    """

    tenant_id: str
    execution_id: str
    execution_key: str
    correlation_id: str
    transition_key: str
    terminal_reason: str
    error_code: str
    error_message: str | None
    retryable: bool
    retries_observed: int
    created_at_epoch_ms: int
    transport: str | None = None
    platform: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON object, keys in TPF's order."""
        return {
            "tenantId": self.tenant_id,
            "executionId": self.execution_id,
            "executionKey": self.execution_key,
            "correlationId": self.correlation_id,
            "transitionKey": self.transition_key,
            "resourceType": DEAD_LETTER_RESOURCE_TYPE,
            "resourceName": DEAD_LETTER_RESOURCE_NAME,
            "transport": platform_label(self.transport),
            "platform": platform_label(self.platform),
            "terminalStatus": DEAD_LETTER_TERMINAL_STATUS,
            "terminalReason": str(self.terminal_reason),
            "errorCode": self.error_code,
            "errorMessage": self.error_message,
            "retryable": self.retryable,
            "retriesObserved": self.retries_observed,
            "createdAtEpochMs": self.created_at_epoch_ms,
        }

    def log_line(self) -> str:
        return dlq_log_line(
            tenant_id=self.tenant_id,
            execution_id=self.execution_id,
            transition_key=self.transition_key,
            terminal_reason=str(self.terminal_reason),
            error_message=self.error_message,
            retryable=self.retryable,
            retries_observed=self.retries_observed,
            transport=self.transport,
            platform=self.platform,
        )
