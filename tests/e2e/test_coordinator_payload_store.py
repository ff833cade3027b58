"""A commit offloads its large payloads before it locks its rows: while the payload store is
slow to answer, the execution's lease is still renewed (a lock held across the upload would
hold the renewal back until the dispatcher's deadline, and the lease would run out)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from tests.e2e.conftest import Suite
from tests.harness.ports import free_port
from tests.harness.wait import wait_until
from tests.support.coordinator_client import coordinator_client
from tests.support.release_artifacts import PIPELINE_ID
from tests.support.restaurant import order_envelope
from tpf.coordinator.v1 import execution_pb2
from tpf.coordinator.v1 import execution_service_pb2 as epb
from tpf.coordinator.v1 import work_service_pb2 as wpb

pytestmark = pytest.mark.e2e

OFFLOAD_BYTES = 1024


@dataclass
class SilentS3:
    """An S3 endpoint that accepts connections, reads requests and never answers."""

    port: int
    received: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        while chunk := await reader.read(65536):
            self.received += len(chunk)


@contextlib.asynccontextmanager
async def silent_s3() -> AsyncIterator[SilentS3]:
    silent = SilentS3(free_port("127.0.0.1"))
    server = await asyncio.start_server(silent.handle, "127.0.0.1", silent.port)
    try:
        yield silent
    finally:
        server.close()
        for writer in silent.writers:  # the coordinator's upload fails at once, not at timeout
            writer.close()
        await server.wait_closed()


async def test_a_lease_is_renewed_while_its_commit_waits_on_the_payload_store(
    suite: Suite, start_service: Any
) -> None:
    async with silent_s3() as s3:
        suite.coordinator.terminate()
        coordinator = start_service(
            "tpf_coordinator",
            {
                **suite.coordinator_env,
                "TPF_PAYLOAD_STORE": "s3://payloads/tpf",
                "TPF_PAYLOAD_OFFLOAD_BYTES": str(OFFLOAD_BYTES),
                "TPF_S3_ENDPOINT_URL": f"http://127.0.0.1:{s3.port}",
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
            },
        )
        async with (
            coordinator_client(coordinator.target) as committer,
            coordinator_client(coordinator.target) as renewer,
        ):
            await committer.executions.SubmitExecution(
                epb.SubmitExecutionRequest(
                    tenant_id=suite.tenant,
                    pipeline_id=PIPELINE_ID,
                    input_shape=execution_pb2.INPUT_SHAPE_UNI,
                    input_payload=order_envelope(),  # small: inline, no upload
                )
            )
            claim = wpb.ClaimWorkRequest(dispatcher_id="d", max_items=1)
            claim.wait.FromMilliseconds(5000)
            claim.lease_duration.FromMilliseconds(30_000)
            [item] = (await committer.work.ClaimWork(claim)).work_items
            large_output = order_envelope(customerName="x" * 4 * OFFLOAD_BYTES)
            commit = asyncio.ensure_future(
                committer.work.CompleteWork(
                    wpb.CompleteWorkRequest(
                        dispatcher_id="d",
                        outcomes=[
                            wpb.WorkOutcome(
                                execution_id=item.execution_id,
                                tenant_id=suite.tenant,
                                fencing_token=item.fencing_token,
                                worker_id="w",
                                step_completed=wpb.StepCompletedOutcome(
                                    next_step_index=1, output_payloads=[large_output]
                                ),
                            )
                        ],
                    ),
                    timeout=60,
                )
            )
            await wait_until(lambda: s3.received, timeout_s=30, what="the output's upload begun")
            renewal = wpb.RenewLeasesRequest(
                dispatcher_id="d",
                leases=[
                    wpb.LeaseRenewal(
                        execution_id=item.execution_id,
                        tenant_id=suite.tenant,
                        fencing_token=item.fencing_token,
                    )
                ],
            )
            renewal.lease_duration.FromMilliseconds(30_000)
            renewed = await renewer.work.RenewLeases(renewal, timeout=5)
            assert [r.renewed for r in renewed.results] == [True]
            assert not commit.done()
            commit.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                await commit
