"""Spans about one execution, in the trace of the call that submitted it.

Claims and completions come in batches over many executions, so their RPC spans cannot be
the parent of each execution's step. Each claimed item and each applied completion gets a
span of its own, child of the submit's stored `traceparent` and linked to the batch call
(tpf_telemetry.continue_trace). Resuming after a human's answer gets one too.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.trace import Span

from tpf_coordinator.store.records import ExecutionRecord
from tpf_coordinator.work_outcomes import AwaitAsked, Claimed, Outcome, PipelineDone, StepDone
from tpf_telemetry import continue_trace

# A proxy: it uses whichever provider the service configured (none set: no spans).
_tracer = trace.get_tracer("tpf_coordinator")


def _attributes(record: ExecutionRecord) -> dict[str, str | int]:
    """The execution's identity, on its spans made once per claim or await."""
    state = record.state
    return {
        "tpf.tenant_id": record.tenant_id,
        "tpf.pipeline_id": record.pipeline_id,
        "tpf.release_version": record.release_version,
        "tpf.execution_id": record.execution_id,
        "tpf.step_index": state.step_index,
        "tpf.attempt": state.attempt,
    }


def trace_claims(claimed: Sequence[Claimed], started_ns: int) -> None:
    """One `claim step` span per claimed item, from when the claim began until now."""
    for item in claimed:
        with continue_trace(
            _tracer,
            "claim step",
            traceparent=item.record.trace_parent,
            attributes={
                **_attributes(item.record),
                "tpf.step_id": item.step.step_id,
                "tpf.fencing_token": item.record.state.version,
            },
            start_time=started_ns,
        ):
            pass


def _outcome_name(outcome: Outcome) -> str:
    if isinstance(outcome, StepDone):
        return "step_completed"
    if isinstance(outcome, PipelineDone):
        return "pipeline_completed"
    if isinstance(outcome, AwaitAsked):
        return "await_requested"
    return "step_failed"


@contextmanager
def completion_span(record: ExecutionRecord, outcome: Outcome) -> Iterator[Span]:
    """`complete step` around applying one reported outcome; an error raised in it (a stale
    or invalid outcome) marks the span failed.

    Made for every step, so it names only the execution, the step and the outcome: the trace's
    `claim step` has the rest (each attribute costs CPU to make and to export)."""
    with continue_trace(
        _tracer,
        "complete step",
        traceparent=record.trace_parent,
        attributes={
            "tpf.execution_id": record.execution_id,
            "tpf.step_index": record.state.step_index,
            "tpf.outcome": _outcome_name(outcome),
        },
    ) as span:
        yield span


def trace_resume(record: ExecutionRecord, interaction_id: str) -> None:
    """`resume execution`: the await of `record` was answered (linked to the completing call)."""
    now_ns = time.time_ns()
    with continue_trace(
        _tracer,
        "resume execution",
        traceparent=record.trace_parent,
        attributes={**_attributes(record), "tpf.interaction_id": interaction_id},
        start_time=now_ns,
    ):
        pass
