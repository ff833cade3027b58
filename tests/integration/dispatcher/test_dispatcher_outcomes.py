"""How the dispatcher turns a WorkItem into a command and a worker's Result into the outcome it
reports (TPF_WIRE §9.1, §9.2, §9.7), with results produced by a real WorkerRuntime."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format

from tests.support import pipelines
from tpf.common.v1 import payload_pb2, pinned_identity_pb2
from tpf.coordinator.v1 import execution_pb2, interaction_pb2
from tpf.coordinator.v1 import work_service_pb2 as wpb
from tpf_dispatcher.commands import command_for, step_timeout_s
from tpf_dispatcher.outcomes import (
    MALFORMED_WORKER_RESULT,
    FailureClasses,
    outcome_for_result,
)
from tpf_envelope import Envelope
from tpf_worker import WorkerRuntime
from tpf_worker.errors import INPUT_DECODE_FAILURE_CLASS, NON_RETRYABLE_FAILURE_CLASS
from tpf_worker.protocol.result import Result
from tpf_worker.release import identity_of

CLASSES = FailureClasses(extra_non_retryable=frozenset({"com.acme.PaymentRefused"}))
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def work_item(
    pipeline: Any, *, step: int, stop: int, value: dict[str, Any], type_id: str
) -> wpb.WorkItem:
    identity = identity_of(pipeline)
    item = wpb.WorkItem(
        execution_id="e-1",
        identity=pinned_identity_pb2.PinnedIdentity(
            tenant_id="t-1",
            pipeline_id=identity.pipeline_id,
            contract_version=identity.contract_version,
            release_version=identity.release_version,
        ),
        fencing_token=7,
        attempt=1,
        attempt_key=f"e-1:{step}:1",
        step_index=step,
        stop_before_step_index=stop,
        result_shape=execution_pb2.RESULT_SHAPE_SINGLE,
        input_payload=payload_pb2.PayloadEnvelope(
            payload_type_id=type_id,
            payload_encoding="application/tpf-transition+json",
            payload=json.dumps(value),
        ),
    )
    return item


def report(item: wpb.WorkItem, result: Result, *, step_count: int | None = 3) -> wpb.WorkOutcome:
    return outcome_for_result(
        item,
        result,
        step_count=step_count,
        classes=CLASSES,
        worker_id="w-1",
        fallback_deadline_epoch_ms=123,
    )


def test_command_carries_fencing_token_attempt_key_and_bare_result_shape() -> None:
    item = work_item(
        pipelines.CHAIN, step=1, stop=2, value={"a": 1}, type_id=pipelines.CHECKED_TYPE
    )
    command = command_for(item)
    assert command.execution_version == 7
    assert command.transition_key == command.trace_id == "e-1:1:1"
    assert command.result_shape == "SINGLE"
    assert (command.current_step_index, command.stop_before_step_index) == (1, 2)
    assert command.payload == item.input_payload.payload
    assert step_timeout_s(item, 30.0) == 30.0
    item.step.timeout.FromSeconds(90)
    assert step_timeout_s(item, 30.0) == 90.0


async def test_completed_step_goes_to_the_stop_index_or_completes_the_pipeline() -> None:
    runtime = WorkerRuntime(pipelines.CHAIN, identity_of(pipelines.CHAIN))
    middle = work_item(
        pipelines.CHAIN, step=1, stop=2, value={"items": "ab"}, type_id=pipelines.CHECKED_TYPE
    )
    outcome = report(middle, await runtime.execute(command_for(middle)))
    assert outcome.WhichOneof("outcome") == "step_completed"
    assert outcome.step_completed.next_step_index == 2
    assert json.loads(outcome.step_completed.output_payloads[0].payload)["price"] == 6
    assert (outcome.fencing_token, outcome.worker_id) == (7, "w-1")

    last = work_item(
        pipelines.CHAIN, step=2, stop=3, value={"orderId": "o"}, type_id=pipelines.CHECKED_TYPE
    )
    done = report(last, await runtime.execute(command_for(last)))
    assert done.WhichOneof("outcome") == "pipeline_completed"
    segment = work_item(
        pipelines.CHAIN, step=2, stop=-1, value={"orderId": "o"}, type_id=pipelines.CHECKED_TYPE
    )
    assert report(segment, await runtime.execute(command_for(segment))).HasField(
        "pipeline_completed"
    )
    passthrough = report(segment, Result.completed([], terminal_input_passthrough=True))
    assert list(passthrough.pipeline_completed.output_payloads) == [segment.input_payload]
    # A release without a contract: the stop index alone decides.
    unknown = report(middle, Result.completed([Envelope("x", "y", "{}")]), step_count=None)
    assert unknown.step_completed.next_step_index == 2


def test_failures_are_classified_as_tpf_does() -> None:
    item = work_item(pipelines.CHAIN, step=0, stop=1, value={}, type_id=pipelines.ORDER_TYPE)
    retryable = report(item, Result.failed("java.lang.IllegalStateException", "boom")).failed
    assert (retryable.retryable, retryable.permanent_input_error) == (True, False)
    assert not retryable.HasField("error_code")  # the coordinator derives TPF's code
    final = report(item, Result.failed(NON_RETRYABLE_FAILURE_CLASS, None)).failed
    assert (final.retryable, final.message) == (False, "")
    refused = report(item, Result.failed("com.acme.PaymentRefused", "no")).failed
    assert not refused.retryable
    undecodable = report(item, Result.failed(INPUT_DECODE_FAILURE_CLASS, "bad")).failed
    assert undecodable.permanent_input_error


async def test_waiting_result_becomes_an_await_with_its_unit_and_interaction() -> None:
    runtime = WorkerRuntime(pipelines.APPROVAL, identity_of(pipelines.APPROVAL), clock=lambda: NOW)
    item = work_item(
        pipelines.APPROVAL,
        step=1,
        stop=2,
        value={"orderId": "o-7", "checked": True},
        type_id=pipelines.CHECKED_TYPE,
    )
    result = await runtime.execute(command_for(item))
    assert result.outcome == "WAITING_EXTERNAL"
    outcome = report(item, result)
    awaited = outcome.await_requested
    assert awaited.await_step_index == 1
    assert awaited.unit_id
    [spec] = awaited.interactions
    assert spec.interaction.step_id == "AwaitDecisionService"
    assert spec.interaction.status == interaction_pb2.INTERACTION_STATUS_WAITING
    assert spec.interaction.request_payload.struct_value["orderId"] == "o-7"
    assert spec.idempotency_key
    expected_deadline_ms = int(NOW.timestamp() * 1000) + 30 * 60 * 1000
    assert awaited.deadline_epoch_ms == expected_deadline_ms
    if awaited.HasField("unit"):
        assert awaited.unit.unit_id == awaited.unit_id


def test_unusable_await_suspension_is_a_retryable_malformed_result() -> None:
    item = work_item(pipelines.APPROVAL, step=1, stop=2, value={}, type_id=pipelines.CHECKED_TYPE)
    outcome = report(item, Result.waiting({"unitId": " ", "interactions": []}))
    assert outcome.failed.error_code == MALFORMED_WORKER_RESULT
    assert outcome.failed.retryable
    wrong_type = report(item, Result.waiting({"unitId": "u", "stepIndex": "one"}))
    assert wrong_type.failed.error_code == MALFORMED_WORKER_RESULT


async def test_exact_decimals_in_the_request_payload_are_shown_as_numbers() -> None:
    """The worker protocol keeps `27.50` exact (Decimal); the interaction's requestPayload (a
    google.protobuf.Value) shows it as the number 27.5 instead of refusing the await."""
    runtime = WorkerRuntime(pipelines.APPROVAL, identity_of(pipelines.APPROVAL), clock=lambda: NOW)
    item = work_item(
        pipelines.APPROVAL,
        step=1,
        stop=2,
        value={"orderId": "o-8", "checked": True, "total": 27.50, "lines": [{"price": 1.25}]},
        type_id=pipelines.CHECKED_TYPE,
    )
    outcome = report(item, await runtime.execute(command_for(item)))
    assert outcome.WhichOneof("outcome") == "await_requested", outcome
    [spec] = outcome.await_requested.interactions
    shown = json_format.MessageToDict(spec.interaction.request_payload)
    assert shown["total"] == 27.5
    assert shown["lines"][0]["price"] == 1.25
