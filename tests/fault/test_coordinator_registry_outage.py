"""A claim that cannot be served changes nothing, even when the registry is down.

A claim needs each claimed execution's release (steps, dispatch mode) from the registry; a
coordinator caches releases, but a freshly started one has to ask. If the registry cannot
answer, the claim fails with UNAVAILABLE, and must leave the executions as they were: a claim
committed but never handed out would sit RUNNING under a lease nobody holds until it expires,
and every such expiry counts toward the poison-pill guard that fails the execution.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import grpc
import pytest

# The e2e fixtures (tests/fault/conftest.py shares the registry ones).
from tests.e2e.conftest import Suite, suite
from tests.harness.wait import wait_until
from tests.support.coordinator_client import coordinator_client
from tests.support.grpc_errors import expect_error
from tests.support.release_artifacts import PIPELINE_ID
from tests.support.restaurant import order_envelope
from tpf.common.v1 import execution_status_pb2 as st
from tpf.coordinator.v1 import execution_pb2
from tpf.coordinator.v1 import execution_service_pb2 as epb
from tpf.coordinator.v1 import work_service_pb2 as wpb

pytestmark = pytest.mark.e2e
__all__ = ["suite"]


def claim_request(wait_ms: int = 0) -> wpb.ClaimWorkRequest:
    request = wpb.ClaimWorkRequest(dispatcher_id="d1", max_items=10)
    request.wait.FromMilliseconds(wait_ms)
    return request


async def test_a_claim_the_registry_cannot_serve_leaves_the_executions_queued(
    suite: Suite, start_service: Any
) -> None:
    async with coordinator_client(suite.coordinator.target) as client:
        ids = [
            (
                await client.executions.SubmitExecution(
                    epb.SubmitExecutionRequest(
                        tenant_id=suite.tenant,
                        pipeline_id=PIPELINE_ID,
                        input_shape=execution_pb2.INPUT_SHAPE_UNI,
                        input_payload=order_envelope(),
                    )
                )
            ).execution_id
            for _ in range(3)
        ]
    # Registry down, and a coordinator that has not cached the release yet.
    await asyncio.to_thread(suite.registry.kill)
    await asyncio.to_thread(suite.coordinator.restart)
    async with coordinator_client(suite.coordinator.target) as client:
        # The client channel retries UNAVAILABLE on its own: this one call is several claim
        # attempts, and none of them may leave a claimed row behind.
        await expect_error(
            client.work.ClaimWork(claim_request()),
            grpc.StatusCode.UNAVAILABLE,
            "REGISTRY_UNAVAILABLE",
        )
        for eid in ids:
            execution = (
                await client.executions.GetExecution(
                    epb.GetExecutionRequest(tenant_id=suite.tenant, execution_id=eid)
                )
            ).execution
            assert execution.status == st.EXECUTION_STATUS_QUEUED, eid
            assert execution.version == 0, "the failed claim was rolled back"

        await asyncio.to_thread(suite.registry.restart)

        async def claimed() -> list[wpb.WorkItem]:
            # The coordinator's channel to the registry reconnects with gRPC's backoff.
            try:
                response = await client.work.ClaimWork(claim_request(wait_ms=1000))
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
                return []
            return list(response.work_items)

        items = await wait_until(claimed, timeout_s=60, what="claims served again")
        assert sorted(i.execution_id for i in items) == sorted(ids)
        assert all(i.fencing_token == 1 for i in items)


async def test_a_hung_registry_makes_submissions_fail_fast_not_hang(
    suite: Suite, start_service: Any
) -> None:
    """A registry that stops answering (not down: hung) costs a submission its deadline, not
    forever: UNAVAILABLE REGISTRY_UNAVAILABLE, which clients retry."""
    coordinator = start_service(
        "tpf_coordinator", {**suite.coordinator_env, "TPF_REGISTRY_TIMEOUT_S": "1"}
    )
    pid = suite.registry.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        async with coordinator_client(coordinator.target) as client:
            started = time.monotonic()
            await expect_error(
                client.executions.SubmitExecution(
                    epb.SubmitExecutionRequest(
                        tenant_id=suite.tenant,
                        pipeline_id=PIPELINE_ID,
                        input_shape=execution_pb2.INPUT_SHAPE_UNI,
                        input_payload=order_envelope(),
                    ),
                    timeout=30,
                ),
                grpc.StatusCode.UNAVAILABLE,
                "REGISTRY_UNAVAILABLE",
            )
            assert time.monotonic() - started < 10
    finally:
        os.kill(pid, signal.SIGCONT)
