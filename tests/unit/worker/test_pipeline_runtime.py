"""WorkerRuntime: identity check, input decoding, step runs, failures (TPF_WIRE §9.1, §9.2)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest

from tpf_envelope import Envelope, InputShape, InputSnapshot, encode
from tpf_worker import (
    Command,
    InputDecodeError,
    NonRetryableStepError,
    Pipeline,
    Result,
    RetryableStepError,
    StepContext,
    WorkerIdentity,
    WorkerRuntime,
    classify_failure,
)
from tpf_worker.protocol.result import decode_result, encode_result

PIPELINE_ID = "org.pipelineframework.test"
IN = "org.pipelineframework.test.In"
MID = "org.pipelineframework.test.Mid"
OUT = "org.pipelineframework.test.Out"
IDENTITY = WorkerIdentity(PIPELINE_ID, "sha256:contract", "sha256:release", "a", "sha256:d")

seen: list[tuple[str, StepContext, str]] = []


def make_pipeline() -> Pipeline:
    pipeline = Pipeline(PIPELINE_ID, dispatch_mode="segment")

    @pipeline.step("Double", service="DoubleService", input_type=IN, output_type=MID)
    async def double(value: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
        seen.append(("double", ctx, threading.current_thread().name))
        if value.get("fail") == "retryable":
            raise RetryableStepError("dependency timed out")
        if value.get("fail") == "permanent":
            raise NonRetryableStepError("order was cancelled")
        if value.get("fail") == "input":
            raise InputDecodeError("n must be a number")
        if value.get("fail") == "bug":
            raise KeyError("missing")
        return {"n": value["n"] * 2}

    @pipeline.step("Describe", service="DescribeService", input_type=MID, output_type=OUT)
    def describe(value: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
        seen.append(("describe", ctx, threading.current_thread().name))
        return {"text": f"n is {value['n']}"}

    return pipeline


@pytest.fixture
def runtime() -> WorkerRuntime:
    seen.clear()
    return WorkerRuntime(make_pipeline(), IDENTITY)


def command(
    step: int, payload: Envelope, *, stop: int = -1, identity: WorkerIdentity = IDENTITY
) -> Command:
    key = f"exec-1:{step}:0"
    return Command(
        tenant_id="t1",
        execution_id="exec-1",
        pipeline_id=identity.pipeline_id,
        contract_version=identity.contract_version,
        release_version=identity.release_version,
        current_step_index=step,
        stop_before_step_index=stop,
        attempt=0,
        result_shape="SINGLE",
        execution_version=1,
        transition_key=key,
        trace_id=key,
        payload_type_id=payload.payload_type_id,
        payload_encoding=payload.payload_encoding,
        payload=payload.payload,
    )


def typed(type_id: str, value: dict[str, Any]) -> Envelope:
    return Envelope(type_id, "application/tpf-transition+json", json.dumps(value))


def snapshot(*items: dict[str, Any], shape: InputShape = InputShape.UNI) -> Envelope:
    if shape is InputShape.MULTI:
        return encode(InputSnapshot(shape, None, tuple(items)))
    return encode(InputSnapshot(shape, items[0]))


def checked(result: Result) -> Result:
    """Every result the runtime returns must pass TPF's strict result codec."""
    return decode_result(encode_result(result))


async def test_a_command_for_another_contract_fails_with_tpf_message(
    runtime: WorkerRuntime,
) -> None:
    other = WorkerIdentity(PIPELINE_ID, "sha256:other-contract", "sha256:release")
    result = checked(await runtime.execute(command(0, snapshot({"n": 1}), identity=other)))
    assert result.failure is not None
    assert result.failure.failure_class == "java.lang.IllegalArgumentException"
    assert result.failure.message == (
        f"Transition command targets pipelineId={PIPELINE_ID}, "
        "contractVersion=sha256:other-contract, "
        f"releaseVersion=sha256:release but local worker is pipelineId={PIPELINE_ID}, "
        "contractVersion=sha256:contract, releaseVersion=sha256:release"
    )
    assert classify_failure(result.failure.failure_class, result.failure.message).retryable
    assert seen == []


async def test_a_command_for_another_pipeline_is_refused(runtime: WorkerRuntime) -> None:
    other = WorkerIdentity("com.example.other", "sha256:contract", "sha256:release")
    result = checked(await runtime.execute(command(0, snapshot({"n": 1}), identity=other)))
    assert result.failure is not None
    assert "targets pipelineId=com.example.other" in (result.failure.message or "")
    assert seen == []


async def test_a_build_serves_every_release_label_of_its_contract(runtime: WorkerRuntime) -> None:
    # TPF's self-host scripts label the release with the contract version; same code, so it runs.
    relabelled = WorkerIdentity(PIPELINE_ID, "sha256:contract", "sha256:contract")
    result = checked(await runtime.execute(command(0, snapshot({"n": 21}), identity=relabelled)))
    assert result.outcome == "COMPLETED"


async def test_segment_command_runs_every_step_and_returns_the_last_output(
    runtime: WorkerRuntime,
) -> None:
    result = checked(await runtime.execute(command(0, snapshot({"n": 21}))))
    assert result.outcome == "COMPLETED"
    assert [(o.payload_type_id, o.payload) for o in result.output_payloads] == [
        (OUT, '{"text":"n is 42"}')
    ]
    [(_, first, _), (_, second, thread)] = seen
    assert first.idempotency_key == "exec-1:0:0"
    assert second.idempotency_key == "exec-1:0:0:step=1"
    assert (second.tenant_id, second.execution_id, second.step_index) == ("t1", "exec-1", 1)
    assert thread != threading.main_thread().name  # sync steps run in a worker thread


async def test_step_command_runs_one_step_and_returns_its_typed_output(
    runtime: WorkerRuntime,
) -> None:
    result = checked(await runtime.execute(command(0, snapshot({"n": 2}), stop=1)))
    assert [(o.payload_type_id, o.payload) for o in result.output_payloads] == [(MID, '{"n":4}')]
    result = checked(await runtime.execute(command(1, result.output_payloads[0], stop=2)))
    assert result.output_payloads[0].payload == '{"text":"n is 4"}'


async def test_a_multi_snapshot_runs_each_item(runtime: WorkerRuntime) -> None:
    payload = snapshot({"n": 1}, {"n": 2}, shape=InputShape.MULTI)
    result = checked(await runtime.execute(command(0, payload)))
    assert [o.payload for o in result.output_payloads] == [
        '{"text":"n is 2"}',
        '{"text":"n is 4"}',
    ]


@pytest.mark.parametrize(
    ("fail", "failure_class", "message", "retryable", "permanent_input"),
    [
        ("retryable", "tpf_worker.errors.RetryableStepError", "dependency timed out", True, False),
        (
            "permanent",
            "org.pipelineframework.step.NonRetryableException",
            "order was cancelled",
            False,
            False,
        ),
        ("input", "tpf_worker.errors.InputDecodeError", "n must be a number", False, True),
        ("bug", "builtins.KeyError", "'missing'", True, False),
    ],
)
async def test_step_errors_become_classified_failed_results(
    runtime: WorkerRuntime,
    fail: str,
    failure_class: str,
    message: str,
    retryable: bool,
    permanent_input: bool,
) -> None:
    result = checked(await runtime.execute(command(0, snapshot({"n": 1, "fail": fail}))))
    assert result.outcome == "FAILED"
    assert result.failure is not None
    assert (result.failure.failure_class, result.failure.message) == (failure_class, message)
    verdict = classify_failure(result.failure.failure_class, result.failure.message)
    assert (verdict.retryable, verdict.permanent_input_error) == (retryable, permanent_input)


async def test_an_undecodable_input_is_a_permanent_input_error(runtime: WorkerRuntime) -> None:
    for payload in (
        Envelope("com.example.Foreign", "application/tpf-transition+json", "{}"),
        Envelope(IN, "application/tpf-transition+json", "{not json"),
        Envelope(IN, "text/plain", "{}"),
    ):
        result = checked(await runtime.execute(command(0, payload)))
        assert result.failure is not None
        assert classify_failure(result.failure.failure_class, None).permanent_input_error
    assert seen == []


async def test_a_step_index_beyond_the_pipeline_fails(runtime: WorkerRuntime) -> None:
    result = checked(await runtime.execute(command(5, typed(MID, {"n": 1}))))
    assert result.failure is not None
    assert "out of range" in (result.failure.message or "")


async def test_the_pipelines_own_types_are_accepted_outside_the_default_prefixes() -> None:
    pipeline = Pipeline("com.example.shop")
    pipeline.step("Echo", service="EchoService", input_type="com.example.A", output_type=OUT)(
        lambda value, ctx: value
    )
    runtime = WorkerRuntime(pipeline, WorkerIdentity("com.example.shop", "c", "r"))
    result = await runtime.execute(
        command(0, typed("com.example.A", {"x": 1.50}), identity=runtime.identity)
    )
    assert result.output_payloads[0].payload == '{"x":1.5}'


def test_capability_reports_the_identity_and_the_pipelines_protocols(
    runtime: WorkerRuntime,
) -> None:
    capability = runtime.capability("rest")
    assert (capability.pipeline_id, capability.release_version, capability.artifact_digest) == (
        PIPELINE_ID,
        "sha256:release",
        "sha256:d",
    )
    assert capability.provider_name == "rest"
    assert capability.worker_protocols == ("local", "rest", "grpc", "sqs")


def test_pipeline_definitions_are_checked() -> None:
    pipeline = Pipeline(PIPELINE_ID)
    pipeline.await_step(
        "Wait", service="WaitService", input_type=IN, output_type=OUT, timeout=timedelta(1)
    )
    with pytest.raises(ValueError, match="used twice"):
        pipeline.await_step(
            "Wait", service="WaitService", input_type=IN, output_type=OUT, timeout=timedelta(1)
        )
    with pytest.raises(ValueError, match="positive timeout"):
        pipeline.await_step(
            "Other", service="OtherService", input_type=IN, output_type=OUT, timeout=timedelta(0)
        )
    with pytest.raises(ValueError, match="dispatch_mode"):
        Pipeline(PIPELINE_ID, dispatch_mode="batch")  # type: ignore[arg-type]  # the point
    step = pipeline.step_named("Wait")
    assert (
        step.runtime_class
        == step.client_class
        == (f"{PIPELINE_ID}.service.pipeline.WaitAwaitClientStep")
    )
