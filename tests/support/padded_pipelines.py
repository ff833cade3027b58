"""A pipeline whose payloads keep the size of its input, for tests of the payload store.

`PADDED` (three steps): each step returns the order it was given plus one mark, so an order
with a large `pad` has a large output after every step and a large result: each of them is
offloaded to the coordinator's payload store when it is over the inline limit. `result_of`
says what the result must be.

Served by a dispatcher (`TPF_LOCAL_PIPELINES=tests.support.padded_pipelines:PADDED`), run from
the repository root.
"""

from __future__ import annotations

from typing import Any, Final

from tpf_worker import Pipeline, StepContext

_TYPES: Final = "org.pipelineframework.replicatest"
ORDER_TYPE: Final = f"{_TYPES}.Order"
MARKED_TYPE: Final = f"{_TYPES}.MarkedOrder"
SPEC: Final = "tests.support.padded_pipelines:PADDED"
STEPS: Final = 3

PADDED = Pipeline("org.pipelineframework.replicatest.padded", artifact_id="padded-python-worker")


def order(number: int, pad_bytes: int) -> dict[str, Any]:
    """Order `number` with `pad_bytes` of padding that differs per order (payloads are stored
    by content, so equal pads would share one object)."""
    seed = f"order-{number}-"
    return {"orderId": number, "pad": (seed * (pad_bytes // len(seed) + 1))[:pad_bytes]}


def result_of(submitted: dict[str, Any]) -> dict[str, Any]:
    """The pipeline's result for the order `submitted`."""
    return {**submitted, "marks": ["first", "second", "third"]}


def _marked(value: dict[str, Any], mark: str) -> dict[str, Any]:
    return {**value, "marks": [*value.get("marks", []), mark]}


@PADDED.step("First", service="FirstService", input_type=ORDER_TYPE, output_type=MARKED_TYPE)
def first(value: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    return _marked(value, "first")


@PADDED.step("Second", service="SecondService", input_type=MARKED_TYPE, output_type=MARKED_TYPE)
def second(value: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    return _marked(value, "second")


@PADDED.step("Third", service="ThirdService", input_type=MARKED_TYPE, output_type=MARKED_TYPE)
def third(value: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    return _marked(value, "third")
