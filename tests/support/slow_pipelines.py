"""A pipeline whose first step holds on to its first run, for killing a process mid-step.

`SLOW` (two steps): "Hold Order" writes a `started-*` marker file into the order's `markerDir`
each time it starts, and, only on the first start for that directory, sleeps `holdS` seconds
before returning; a re-run after a crash therefore finishes at once. "Close Order" turns the
held order into a receipt. The markers are how a test sees that the step really was running
when it killed the process, and how many times it started in all.

Served by a dispatcher (`TPF_LOCAL_PIPELINES=tests.support.slow_pipelines:SLOW`) or by a worker
process (`python -m tpf_worker serve --pipeline tests.support.slow_pipelines:SLOW`), both run
from the repository root.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any, Final

from tpf_worker import Pipeline, StepContext

_TYPES: Final = "org.pipelineframework.faulttest"
ORDER_TYPE: Final = f"{_TYPES}.Order"
HELD_TYPE: Final = f"{_TYPES}.HeldOrder"
RECEIPT_TYPE: Final = f"{_TYPES}.Receipt"
SPEC: Final = "tests.support.slow_pipelines:SLOW"

SLOW = Pipeline("org.pipelineframework.faulttest.slow", artifact_id="slow-python-worker")


def starts(marker_dir: Path) -> list[str]:
    """The idempotency keys of every start of "Hold Order" so far, in no particular order."""
    return [p.read_text() for p in marker_dir.glob("started-*")]


@SLOW.step("Hold Order", service="HoldOrderService", input_type=ORDER_TYPE, output_type=HELD_TYPE)
async def hold_order(value: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    marker_dir = Path(value["markerDir"])
    first = not starts(marker_dir)
    marker = marker_dir / f"started-{os.getpid()}-{uuid.uuid4().hex}"
    marker.write_text(ctx.idempotency_key)
    if first:
        await asyncio.sleep(float(value["holdS"]))
    return {**value, "heldBy": ctx.idempotency_key}


@SLOW.step(
    "Close Order", service="CloseOrderService", input_type=HELD_TYPE, output_type=RECEIPT_TYPE
)
def close_order(value: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    return {"orderId": value["orderId"], "heldBy": value["heldBy"], "closed": True}
