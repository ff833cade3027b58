"""What the dispatcher reports for a work item: a worker's Result, or why there was none, as a
coordinator WorkOutcome (TPF_WIRE §9.2, §9.7). Pure functions; no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tpf.common.v1 import payload_pb2
from tpf.coordinator.v1 import work_service_pb2 as wpb
from tpf_dispatcher.awaits import InvalidAwaitSuspension, await_requested
from tpf_envelope import Envelope
from tpf_worker.errors import classify_failure
from tpf_worker.protocol.result import Result
from tpf_worker.transports import TransportFailure

# Error codes of failures the dispatcher itself reports (the coordinator records them as given).
NO_WORKER_AVAILABLE = "NoWorkerAvailable"
MALFORMED_WORKER_RESULT = "MalformedWorkerResult"
WORKER_IDENTITY_MISMATCH = "WorkerIdentityMismatch"
REGISTRY_UNAVAILABLE = "RegistryUnavailable"
# The failure class recorded with those codes: the failure is the dispatcher's, not a step's.
DISPATCHER_FAILURE_CLASS = "tpf_dispatcher.DispatchFailure"


@dataclass(frozen=True, slots=True)
class FailureClasses:
    """Failure classes classified beyond the SDK's `classify_failure` (TPF_WIRE §9.7).

    TPF also treats loadable subclasses of NonRetryableException as non-retryable; we cannot
    load Java classes, so operators list such subclasses in `extra_non_retryable`.
    """

    extra_non_retryable: frozenset[str] = frozenset()


def _outcome(item: wpb.WorkItem, worker_id: str) -> wpb.WorkOutcome:
    return wpb.WorkOutcome(
        execution_id=item.execution_id,
        tenant_id=item.identity.tenant_id,
        fencing_token=item.fencing_token,
        worker_id=worker_id,
    )


def _payloads(outputs: Sequence[Envelope]) -> list[payload_pb2.PayloadEnvelope]:
    return [
        payload_pb2.PayloadEnvelope(
            payload_type_id=e.payload_type_id,
            payload_encoding=e.payload_encoding,
            payload=e.payload,
        )
        for e in outputs
    ]


def failed(
    item: wpb.WorkItem,
    *,
    failure_class: str,
    message: str,
    retryable: bool,
    error_code: str | None = None,
    permanent_input_error: bool = False,
    worker_id: str = "",
) -> wpb.WorkOutcome:
    """A failed outcome; `error_code` None lets the coordinator derive TPF's code and message."""
    outcome = _outcome(item, worker_id)
    outcome.failed.CopyFrom(
        wpb.FailedOutcome(
            failure_class=failure_class,
            message=message,
            retryable=retryable,
            permanent_input_error=permanent_input_error,
        )
    )
    if error_code is not None:
        outcome.failed.error_code = error_code
    return outcome


def dispatch_failed(
    item: wpb.WorkItem, error_code: str, message: str, *, worker_id: str = ""
) -> wpb.WorkOutcome:
    """A retryable failure the dispatcher reports itself (no worker, bad reply, ...)."""
    return failed(
        item,
        failure_class=DISPATCHER_FAILURE_CLASS,
        message=message,
        retryable=True,
        error_code=error_code,
        worker_id=worker_id,
    )


def transport_failed(
    item: wpb.WorkItem, failure: TransportFailure, *, worker_id: str
) -> wpb.WorkOutcome:
    """A worker call that failed in transport: code and message as the transport mapped them."""
    return failed(
        item,
        failure_class=failure.error_code,
        message=failure.message,
        retryable=True,
        error_code=failure.error_code,
        worker_id=worker_id,
    )


def no_worker(item: wpb.WorkItem, reason: str) -> wpb.WorkOutcome:
    identity = item.identity
    return dispatch_failed(
        item,
        NO_WORKER_AVAILABLE,
        f"No reachable worker for tenant {identity.tenant_id}, pipeline "
        f"{identity.pipeline_id}, release {identity.release_version}: {reason}",
    )


def outcome_for_result(
    item: wpb.WorkItem,
    result: Result,
    *,
    step_count: int | None,
    classes: FailureClasses,
    worker_id: str,
    fallback_deadline_epoch_ms: int,
) -> wpb.WorkOutcome:
    """The outcome to report for the worker's `result` to `item`.

    COMPLETED runs stopped at `stop_before_step_index` (or, when it is negative, ran to the end
    of the pipeline, `step_count` steps); reaching the end completes the pipeline. `step_count`
    None (a release without a contract) trusts the stop index alone.
    """
    if result.outcome == "COMPLETED":
        return _completed(item, result, step_count=step_count, worker_id=worker_id)
    if result.outcome == "WAITING_EXTERNAL":
        if result.await_suspension is None:
            return dispatch_failed(
                item,
                MALFORMED_WORKER_RESULT,
                f"Worker {worker_id} returned WAITING_EXTERNAL without an awaitSuspension for "
                f"execution {item.execution_id}",
                worker_id=worker_id,
            )
        try:
            awaited = await_requested(
                result.await_suspension, fallback_deadline_epoch_ms=fallback_deadline_epoch_ms
            )
        except InvalidAwaitSuspension as error:
            return dispatch_failed(
                item,
                MALFORMED_WORKER_RESULT,
                f"Worker {worker_id} returned an unusable awaitSuspension for execution "
                f"{item.execution_id}: {error}",
                worker_id=worker_id,
            )
        outcome = _outcome(item, worker_id)
        outcome.await_requested.CopyFrom(awaited)
        return outcome
    if result.outcome == "FAILED" and result.failure is not None:
        failure = result.failure
        classified = classify_failure(failure.failure_class, failure.message)
        return failed(
            item,
            failure_class=failure.failure_class,
            message=failure.message or "",
            retryable=classified.retryable
            and failure.failure_class not in classes.extra_non_retryable,
            permanent_input_error=classified.permanent_input_error,
            worker_id=worker_id,
        )
    return dispatch_failed(
        item,
        MALFORMED_WORKER_RESULT,
        f"Worker {worker_id} returned outcome {result.outcome!r} without the fields it needs "
        f"for execution {item.execution_id}",
        worker_id=worker_id,
    )


def _completed(
    item: wpb.WorkItem, result: Result, *, step_count: int | None, worker_id: str
) -> wpb.WorkOutcome:
    outcome = _outcome(item, worker_id)
    if result.terminal_input_passthrough:
        outcome.pipeline_completed.output_payloads.append(item.input_payload)
        return outcome
    outputs = _payloads(result.output_payloads)
    stop = item.stop_before_step_index
    ran_to_end = stop < 0 if step_count is None else stop < 0 or stop >= step_count
    if ran_to_end:
        outcome.pipeline_completed.output_payloads.extend(outputs)
    else:
        outcome.step_completed.next_step_index = stop
        outcome.step_completed.output_payloads.extend(outputs)
    return outcome
