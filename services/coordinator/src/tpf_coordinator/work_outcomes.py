"""What flows through the work protocol: claimed items and the outcomes dispatchers report.

Also TPF's mapping of a failed worker result to errorCode/errorMessage, and how step outputs
become the next step's input.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from tpf_coordinator.domain.failures import truncate_message
from tpf_coordinator.domain.model import StepFailure, Transition
from tpf_coordinator.release_catalog import ReleaseInfo, StepInfo
from tpf_coordinator.store.protocol import NewAwait
from tpf_coordinator.store.records import ExecutionRecord, encode_result
from tpf_envelope import (
    INPUT_SNAPSHOT,
    TRANSITION_ENCODING,
    Envelope,
    from_json_dict,
    to_json_dict,
)
from tpf_errors import TpfError

NON_RETRYABLE_CODE = "NonRetryableException"
WORKER_FAILURE_CODE = "TransitionWorkerFailureException"


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claimed execution with the release step it must run."""

    record: ExecutionRecord
    release: ReleaseInfo
    step: StepInfo
    stop_before_step_index: int


@dataclass(frozen=True, slots=True)
class StepDone:
    next_step_index: int
    outputs: tuple[Envelope, ...]
    continue_claim: bool


@dataclass(frozen=True, slots=True)
class PipelineDone:
    outputs: tuple[Envelope, ...]


@dataclass(frozen=True, slots=True)
class AwaitAsked:
    await_step_index: int
    new_await: NewAwait


@dataclass(frozen=True, slots=True)
class Failed:
    failure_class: str
    message: str
    retryable: bool
    permanent_input_error: bool
    error_code: str | None


Outcome = StepDone | PipelineDone | AwaitAsked | Failed


@dataclass(frozen=True, slots=True)
class Completion:
    tenant_id: str
    execution_id: str
    fencing_token: int
    worker_id: str
    outcome: Outcome


@dataclass
class CompletionResult:
    tenant_id: str
    execution_id: str
    accepted: bool
    error: TpfError | None = None
    record: ExecutionRecord | None = None
    next_work: Claimed | None = None
    # What the item wrote (counted once the batch commits, and only if it was accepted).
    transition: Transition | None = None
    log_lines: list[str] = field(default_factory=list)


def failure_of(outcome: Failed) -> StepFailure:
    """TPF's mapping of a failed worker result to errorCode/errorMessage (TPF_WIRE §9.7)."""
    if outcome.error_code:
        return StepFailure(
            outcome.error_code,
            truncate_message(outcome.message, 512),
            outcome.retryable,
            outcome.permanent_input_error,
        )
    if not outcome.retryable:
        message = outcome.message or outcome.failure_class
        return StepFailure(
            NON_RETRYABLE_CODE, truncate_message(message, 512), False, outcome.permanent_input_error
        )
    message = (
        f"{outcome.failure_class}: {outcome.message}" if outcome.message else outcome.failure_class
    )
    return StepFailure(
        WORKER_FAILURE_CODE, truncate_message(message, 512), True, outcome.permanent_input_error
    )


def next_input(outputs: tuple[Envelope, ...]) -> Envelope:
    """One output is the next step's input as is; several become a MULTI input snapshot."""
    if len(outputs) == 1:
        return outputs[0]
    return multi_snapshot(outputs)


def stored_texts(completions: Iterable[Completion]) -> Iterator[str]:
    """What committing `completions` writes into rows: each next step's input text and each
    pipeline's result, so the large ones can be offloaded before the rows are locked."""
    for completion in completions:
        outcome = completion.outcome
        if isinstance(outcome, StepDone) and outcome.outputs:
            yield next_input(outcome.outputs).payload
        elif isinstance(outcome, PipelineDone):
            yield encode_result(outcome.outputs)


def multi_snapshot(items: Sequence[Envelope]) -> Envelope:
    """A MULTI `ExecutionInputSnapshot` of `items`, in order, each envelope embedded as is (so
    nested type ids survive): several inputs for the next step, one per item."""
    nested = [to_json_dict(e) for e in items]
    text = json.dumps(
        {"shape": "MULTI", "payload": None, "items": nested},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return Envelope(INPUT_SNAPSHOT, TRANSITION_ENCODING, text)


def terminal_items(payload: Envelope) -> tuple[Envelope, ...]:
    """A stored step input read as terminal items: the items of a MULTI snapshot (an itemized
    await's answers, several outputs), else the one envelope."""
    if payload.payload_type_id != INPUT_SNAPSHOT:
        return (payload,)
    snapshot = json.loads(payload.payload)
    if snapshot.get("shape") != "MULTI":
        return (payload,)
    return tuple(from_json_dict(item) for item in snapshot.get("items") or ())
