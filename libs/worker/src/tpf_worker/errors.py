"""Errors a step raises, the failure classes they travel as, and how a failure is classified.

A step's exception never leaves the worker: the runtime turns it into a FAILED result carrying
a `failureClass` and a message (TPF_WIRE §9.2). What the coordinator then does depends only on
those two strings, so the mapping in both directions lives here, in one place:

- `NonRetryableStepError` travels as TPF's `org.pipelineframework.step.NonRetryableException`, the
  one class a TPF coordinator records as non-retryable (§9.7).
- `InputDecodeError` (the step's input does not decode or bind) travels as
  `INPUT_DECODE_FAILURE_CLASS`; a failed conversion of an await's completion into the await's
  output type travels as TPF's own `java.lang.IllegalStateException` with the message
  `Failed converting await payload to <type>`. Both are permanent input errors: the same input
  fails the same way on every attempt.
- Anything else, `RetryableStepError` included, travels as its Python qualified class name and
  is retryable.

A dispatcher reporting a FAILED result calls `classify_failure(failure_class, message)` and sets
`FailedOutcome.retryable` / `FailedOutcome.permanent_input_error` from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

NON_RETRYABLE_FAILURE_CLASS: Final = "org.pipelineframework.step.NonRetryableException"
"""TPF's non-retryable step failure; a TPF coordinator dead-letters it at once (§9.7)."""

INPUT_DECODE_FAILURE_CLASS: Final = "tpf_worker.errors.InputDecodeError"
"""A step's input does not decode or bind to the step's input type: a permanent input error."""

ILLEGAL_STATE_FAILURE_CLASS: Final = "java.lang.IllegalStateException"
ILLEGAL_ARGUMENT_FAILURE_CLASS: Final = "java.lang.IllegalArgumentException"

AWAIT_CONVERSION_FAILURE_CLASS: Final = ILLEGAL_STATE_FAILURE_CLASS
"""The class TPF reports when an await's stored completion does not convert (§11 incident)."""

AWAIT_CONVERSION_MESSAGE_PREFIX: Final = "Failed converting await payload to "
"""TPF's message for that failure, followed by the await's (transport) output type id."""

IDENTITY_MISMATCH_FAILURE_CLASS: Final = ILLEGAL_ARGUMENT_FAILURE_CLASS
"""What TPF's worker reports for a command aimed at another pipeline, contract or release."""


class StepError(Exception):
    """Base of the errors a step raises on purpose; the message is what the coordinator records.

    `failure_class` overrides the class name reported for a retryable error (for example a Java
    class name a TPF operator expects); non-retryable and input errors keep their fixed classes.
    """

    def __init__(self, message: str, *, failure_class: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.failure_class_override = failure_class


class RetryableStepError(StepError):
    """A failure another attempt may not repeat (a dependency timed out, a row was locked)."""


class NonRetryableStepError(StepError):
    """A failure every attempt would repeat; the execution fails at once and is dead-lettered."""


class InputDecodeError(NonRetryableStepError):
    """The step's input cannot be read as its input type; no attempt can succeed with it."""


@dataclass(frozen=True, slots=True)
class FailureClassification:
    """How a coordinator should treat a FAILED result."""

    retryable: bool
    permanent_input_error: bool


def classify_failure(failure_class: str, message: str | None) -> FailureClassification:
    """Whether a failure may be retried and whether it is a permanent input error.

    The one decision point for FAILED results, from our workers and from TPF's alike: TPF's
    `NonRetryableException` is non-retryable; an input decode failure, or TPF's
    `IllegalStateException` "Failed converting await payload to ..." is a permanent input
    error (not retryable either); everything else is retryable.
    """
    if failure_class == NON_RETRYABLE_FAILURE_CLASS:
        return FailureClassification(retryable=False, permanent_input_error=False)
    if failure_class == INPUT_DECODE_FAILURE_CLASS or is_await_conversion_failure(
        failure_class, message
    ):
        return FailureClassification(retryable=False, permanent_input_error=True)
    return FailureClassification(retryable=True, permanent_input_error=False)


def is_await_conversion_failure(failure_class: str, message: str | None) -> bool:
    """TPF's "Failed converting await payload to <type>" failure."""
    return failure_class == AWAIT_CONVERSION_FAILURE_CLASS and (message or "").startswith(
        AWAIT_CONVERSION_MESSAGE_PREFIX
    )


def await_conversion_message(type_id: str) -> str:
    """TPF's message for an await completion that does not convert to `type_id`."""
    return AWAIT_CONVERSION_MESSAGE_PREFIX + type_id


def failure_of(error: BaseException) -> tuple[str, str | None]:
    """The `(failureClass, message)` a FAILED result reports for `error`.

    The message is None when the exception has no text, as Java's `getMessage()` would be.
    """
    if isinstance(error, InputDecodeError):
        return INPUT_DECODE_FAILURE_CLASS, error.message or None
    if isinstance(error, NonRetryableStepError):
        return NON_RETRYABLE_FAILURE_CLASS, error.message or None
    if isinstance(error, StepError):
        return error.failure_class_override or qualified_name(type(error)), error.message or None
    return qualified_name(type(error)), str(error) or None


def qualified_name(kind: type) -> str:
    """`module.QualName` of a class: the Python counterpart of a Java FQCN."""
    return f"{kind.__module__}.{kind.__qualname__}"
