"""WorkerRuntime and itemized awaits: one interaction per item, and the next step's input once
every item is answered (TPF_WIRE §5.2, §5.3, §9.2)."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tpf_envelope import Envelope, InputShape, InputSnapshot, decode, encode
from tpf_envelope.identifiers import await_unit_id, correlation_id
from tpf_worker import Command, Pipeline, Result, StepContext, WorkerIdentity, WorkerRuntime
from tpf_worker.protocol.result import decode_result, encode_result

PIPELINE_ID = "org.pipelineframework.itemtest"
ORDER = "org.pipelineframework.itemtest.Order"
REQUESTS = "org.pipelineframework.itemtest.Requests"
DECISIONS = "org.pipelineframework.itemtest.Decisions"
SUMMARY = "org.pipelineframework.itemtest.Summary"
IDENTITY = WorkerIdentity(PIPELINE_ID, "sha256:contract", "sha256:release")
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

summaries: list[Any] = []


def make_pipeline(*, itemized: bool, dispatch_mode: str = "step") -> Pipeline:
    pipeline = Pipeline(
        PIPELINE_ID, dispatch_mode="segment" if dispatch_mode == "segment" else "step"
    )

    @pipeline.step("Split", service="SplitService", input_type=ORDER, output_type=REQUESTS)
    def split(order: dict[str, Any], ctx: StepContext) -> Any:
        if itemized:
            return [{"orderId": order["orderId"], "approver": a} for a in order["approvers"]]
        return {"orderId": order["orderId"], "approver": order["approvers"][0]}

    pipeline.await_step(
        "Approve",
        service="ApproveService",
        input_type=REQUESTS,
        output_type=DECISIONS,
        timeout=timedelta(minutes=5),
        idempotency_key_fields=("orderId",),
        convert=lambda answer: {**answer, "converted": True},
        itemized=itemized,
    )

    @pipeline.step(
        "Summarize", service="SummarizeService", input_type=DECISIONS, output_type=SUMMARY
    )
    def summarize(decisions: Any, ctx: StepContext) -> dict[str, Any]:
        summaries.append(decisions)
        return {"decisions": decisions}

    return pipeline


def runtime(pipeline: Pipeline) -> WorkerRuntime:
    ids = (f"interaction-{n}" for n in itertools.count())
    summaries.clear()
    return WorkerRuntime(
        pipeline, IDENTITY, clock=lambda: NOW, new_interaction_id=lambda: next(ids)
    )


def command(step: int, payload: Envelope, *, stop: int | None = None) -> Command:
    key = f"exec-1:{step}:0"
    return Command(
        tenant_id="t1",
        execution_id="exec-1",
        pipeline_id=PIPELINE_ID,
        contract_version=IDENTITY.contract_version,
        release_version=IDENTITY.release_version,
        current_step_index=step,
        stop_before_step_index=step + 1 if stop is None else stop,
        attempt=0,
        result_shape="SINGLE",
        execution_version=1,
        transition_key=key,
        trace_id=key,
        payload_type_id=payload.payload_type_id,
        payload_encoding=payload.payload_encoding,
        payload=payload.payload,
    )


def typed(type_id: str, value: Any) -> Envelope:
    return Envelope(type_id, "application/tpf-transition+json", json.dumps(value))


def answers_snapshot(*answers: dict[str, Any]) -> Envelope:
    """What the coordinator stores once every item is answered: a MULTI snapshot, item order."""
    return encode(InputSnapshot(InputShape.MULTI, None, tuple(answers)))


def checked(result: Result) -> Result:
    """Every result must pass TPF's strict result codec."""
    return decode_result(encode_result(result))


async def test_an_itemized_await_asks_once_per_element_of_its_list() -> None:
    requests = [{"orderId": "o-1", "approver": name} for name in ("ann", "bob", "cy")]
    result = checked(
        await runtime(make_pipeline(itemized=True)).execute(command(1, typed(REQUESTS, requests)))
    )
    assert result.outcome == "WAITING_EXTERNAL"
    suspension = result.await_suspension
    assert suspension is not None
    unit_id = await_unit_id("t1", "exec-1", "ApproveService", 1)
    assert suspension["unitId"] == unit_id
    unit = suspension["unit"]
    assert unit["expectedItemCount"] == 3 and unit["completedItemCount"] == 0
    assert unit["primaryInteractionId"] == "interaction-0"
    interactions = suspension["interactions"]
    assert [i["itemIndex"] for i in interactions] == [0, 1, 2]
    assert [i["requestPayload"] for i in interactions] == requests
    keys = [i["idempotencyKey"] for i in interactions]
    assert keys == [f"ApproveService:orderId=o-1:item={n}" for n in range(3)]
    assert [i["correlationId"] for i in interactions] == [
        correlation_id("interactionId", "t1", "exec-1", "ApproveService", key) for key in keys
    ]
    assert len({i["interactionId"] for i in interactions}) == 3
    deadline_ms = int(NOW.timestamp() * 1000) + 300_000
    assert {i["deadlineEpochMs"] for i in interactions} == {deadline_ms}
    assert all(i["unitId"] == unit_id and i["status"] == "WAITING" for i in interactions)


async def test_the_step_after_an_itemized_await_gets_every_answer_in_item_order() -> None:
    answers = [{"approver": name, "ok": n % 2 == 0} for n, name in enumerate(("ann", "bob", "cy"))]
    result = checked(
        await runtime(make_pipeline(itemized=True)).execute(command(2, answers_snapshot(*answers)))
    )
    assert result.outcome == "COMPLETED"
    converted = [{**a, "converted": True} for a in answers]
    assert summaries == [converted]
    [output] = result.output_payloads
    assert output.payload_type_id == SUMMARY
    assert json.loads(output.payload) == {"decisions": converted}


async def test_an_itemized_await_of_an_empty_list_is_answered_with_an_empty_list() -> None:
    worker = runtime(make_pipeline(itemized=True))
    # Step by step: the await answers at once, and the next step reads the empty list back.
    result = checked(await worker.execute(command(1, typed(REQUESTS, []))))
    assert result.outcome == "COMPLETED"
    [empty] = result.output_payloads
    assert decode(empty).value == []
    result = checked(await worker.execute(command(2, empty)))
    assert result.outcome == "COMPLETED" and summaries == [[]]
    # In one segment the run goes straight through.
    segment = runtime(make_pipeline(itemized=True, dispatch_mode="segment"))
    order = encode(InputSnapshot(InputShape.UNI, {"orderId": "o-2", "approvers": []}))
    result = checked(await segment.execute(command(0, order, stop=-1)))
    assert result.outcome == "COMPLETED" and summaries == [[]]


async def test_an_itemized_await_needs_one_list() -> None:
    result = checked(
        await runtime(make_pipeline(itemized=True)).execute(
            command(1, typed(REQUESTS, {"orderId": "o-1"}))
        )
    )
    assert result.outcome == "FAILED" and result.failure is not None
    assert result.failure.failure_class == "java.lang.IllegalArgumentException"
    assert "Itemized await step Approve needs one list as its input" in (
        result.failure.message or ""
    )


async def test_several_items_reaching_a_plain_await_are_asked_and_resumed_one_by_one() -> None:
    worker = runtime(make_pipeline(itemized=False))
    requests = ({"orderId": "o-1", "approver": "ann"}, {"orderId": "o-2", "approver": "bob"})
    result = checked(await worker.execute(command(1, answers_snapshot(*requests))))
    assert result.await_suspension is not None
    interactions = result.await_suspension["interactions"]
    assert [i["itemIndex"] for i in interactions] == [0, 1]
    assert [i["requestPayload"] for i in interactions] == list(requests)
    assert result.await_suspension["unit"]["expectedItemCount"] == 2
    # Resumed with both answers, each item runs the next step on its own answer.
    answers = ({"ok": True, "amount": Decimal("27.50")}, {"ok": False})
    result = checked(await worker.execute(command(2, answers_snapshot(*answers))))
    assert result.outcome == "COMPLETED" and len(result.output_payloads) == 2
    assert summaries == [{**a, "converted": True} for a in answers]


async def test_one_item_reaching_a_plain_await_is_a_one_to_one_await() -> None:
    result = checked(
        await runtime(make_pipeline(itemized=False)).execute(
            command(1, typed(REQUESTS, {"orderId": "o-1", "approver": "ann"}))
        )
    )
    assert result.await_suspension is not None
    [interaction] = result.await_suspension["interactions"]
    assert interaction["itemIndex"] is None
    assert interaction["idempotencyKey"] == "ApproveService:orderId=o-1"
    assert result.await_suspension["unit"]["expectedItemCount"] == 1
