"""The pipelines of the dispatcher benchmark, authored with the tpf_worker SDK.

Step bodies are trivial (they return their input), as the peers' are, so the figures are the
platform's cost, not the steps'. They are coroutines, as PgQueuer's and Procrastinate's bench
tasks are: the worker runtime awaits a coroutine step on its loop and runs a plain function on a
thread (a step may block), which would add a thread hand-off per step that the peers do not pay.

- `W1`: one step (the peers' "W1 single-step").
- `W2`: three durable steps; each step's output is recorded by the coordinator before the next
  step is dispatched (the peers' "W2 three-step durable").
- `W3`: one await, then one trivial step. The await parks the execution at WAITING_EXTERNAL
  until its interaction is completed; the step after it is the code that runs on the event, as
  the DBOS workflow's `return msg` after `DBOS.recv` does, so the completion phase also goes
  through the transport under test.
- `W3_FINAL_AWAIT`: the await alone (the coordinator finishes the execution with the response;
  no worker call after the event). `--w3-final-await` uses it.
- `DEAD_LETTER`: one step that always fails for good; the scaled runs run it once and clone the
  dead letter it leaves (bench/scale_load.py).

Type ids live under `org.pipelineframework.` (the coordinator's default payload allow-list).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tpf_worker import NonRetryableStepError, Pipeline, StepContext

_TYPES = "org.pipelineframework.bench"
ITEM_TYPE = f"{_TYPES}.Item"
EVENT_TYPE = f"{_TYPES}.Event"
# An await's deadline far beyond any run, so the sweeper never times one out mid-benchmark.
_AWAIT_TIMEOUT = timedelta(hours=1)

W1 = Pipeline("org.pipelineframework.bench.w1")


@W1.step("Only Step", service="BenchOnlyStepService", input_type=ITEM_TYPE, output_type=ITEM_TYPE)
async def only_step(value: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    return value


W2 = Pipeline("org.pipelineframework.bench.w2")


@W2.step("Step One", service="BenchStepOneService", input_type=ITEM_TYPE, output_type=ITEM_TYPE)
async def step_one(value: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    return value


@W2.step("Step Two", service="BenchStepTwoService", input_type=ITEM_TYPE, output_type=ITEM_TYPE)
async def step_two(value: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    return value


@W2.step("Step Three", service="BenchStepThreeService", input_type=ITEM_TYPE, output_type=ITEM_TYPE)
async def step_three(value: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    return value


W3 = Pipeline("org.pipelineframework.bench.w3")

W3.await_step(
    "Await Event",
    service="BenchAwaitEventService",
    input_type=ITEM_TYPE,
    output_type=EVENT_TYPE,
    timeout=_AWAIT_TIMEOUT,
)


@W3.step(
    "Record Event", service="BenchRecordEventService", input_type=EVENT_TYPE, output_type=EVENT_TYPE
)
async def record_event(value: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    return value


W3_FINAL_AWAIT = Pipeline("org.pipelineframework.bench.w3final")

W3_FINAL_AWAIT.await_step(
    "Await Event",
    service="BenchAwaitEventService",
    input_type=ITEM_TYPE,
    output_type=EVENT_TYPE,
    timeout=_AWAIT_TIMEOUT,
)

DEAD_LETTER = Pipeline("org.pipelineframework.bench.deadletter")


@DEAD_LETTER.step(
    "Always Fails", service="BenchAlwaysFailsService", input_type=ITEM_TYPE, output_type=ITEM_TYPE
)
async def always_fails(value: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    raise NonRetryableStepError("the bench's dead-letter step always fails")


# `TPF_LOCAL_PIPELINES` / `tpf_worker serve --pipeline` names of each pipeline.
PIPELINE_REFS = {
    "w1": "bench.pipelines:W1",
    "w2": "bench.pipelines:W2",
    "w3": "bench.pipelines:W3",
    "w3final": "bench.pipelines:W3_FINAL_AWAIT",
    "deadletter": "bench.pipelines:DEAD_LETTER",
}
PIPELINES = {"w1": W1, "w2": W2, "w3": W3, "w3final": W3_FINAL_AWAIT, "deadletter": DEAD_LETTER}
