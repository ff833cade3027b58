"""The TypeScript client and worker (clients/typescript) against real registry, coordinator and
dispatcher processes: the client submits, the TypeScript worker runs the steps (signed gRPC
worker protocol, registered and heartbeating in the registry), the client completes the await
and reads the result and the history; errors arrive with their google.rpc.ErrorInfo reason.

Needs `node` and `npm` (Node.js >= 20): the test fails without them, it never skips.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import FAST_RETRY, Suite
from tests.e2e.test_dispatcher_local import dispatcher_env
from tests.harness.processes import ChildProcess
from tests.support.example_suite import WorkerProcess
from tests.support.registry_client import ADMIN, registry_client
from tests.support.typescript import (
    PACKAGE_DIR,
    TypeScriptCallFailed,
    TypeScriptPackage,
    build_typescript_release,
    prepare_package,
)
from tpf.registry.v1 import release_pb2, worker_pb2
from tpf.registry.v1 import release_service_pb2 as rpb
from tpf.registry.v1 import worker_service_pb2 as wspb

pytestmark = pytest.mark.e2e

PIPELINE = "org.pipelineframework.typescript.orders"
ORDER_TYPE = f"{PIPELINE}.Order"
SECRET = "typescript-e2e-worker-secret"
WORKER_ID = "orders-ts"


@pytest.fixture(scope="session")
def typescript() -> TypeScriptPackage:
    return prepare_package()


@dataclass
class Stack:
    """The suite with the TypeScript pipeline released and active, its TypeScript worker
    serving and registered, and a dispatcher that runs nothing itself."""

    suite: Suite
    typescript: TypeScriptPackage
    worker: WorkerProcess

    def call(self, command: str, *args: str, token: str = ADMIN) -> Any:
        """`examples/tpf.ts <command>` against the coordinator, in the suite's tenant."""
        return self.typescript.run(
            "tpf",
            command,
            "--target",
            self.suite.coordinator.target,
            "--tenant",
            self.suite.tenant,
            *args,
            env={"TPF_TOKEN": token},
        )

    def submit(self, **order: Any) -> str:
        body = {"orderId": str(uuid.uuid4()), "quantity": 3, "unitPrice": 4, **order}
        submitted = self.call(
            "submit", "--pipeline", PIPELINE, "--type", ORDER_TYPE, "--input", json.dumps(body)
        )
        assert submitted["duplicate"] is False
        return str(submitted["executionId"])

    def watch(self, execution_id: str, until: str) -> dict[str, Any]:
        execution: dict[str, Any] = self.call(
            "watch", "--execution", execution_id, "--until", until
        )
        return execution


@pytest.fixture
async def stack(
    suite: Suite, start_service: Any, typescript: TypeScriptPackage, tmp_path: Path
) -> AsyncIterator[Stack]:
    built = build_typescript_release(typescript, "orders-worker", tmp_path / "release")
    async with registry_client(suite.registry.target) as registry:
        await registry.releases.RegisterRelease(
            rpb.RegisterReleaseRequest(
                tenant_id=suite.tenant,
                pipeline_id=PIPELINE,
                release_descriptor_path=str(built.descriptor_path),
                policy=release_pb2.ReleasePolicy(default_retry=FAST_RETRY),
            )
        )
        await registry.releases.ActivateRelease(
            rpb.ActivateReleaseRequest(
                tenant_id=suite.tenant, pipeline_id=PIPELINE, release_version=built.release_version
            )
        )
    process = ChildProcess(
        [
            *typescript.script("orders-worker"),
            "serve",
            "--descriptor",
            str(built.descriptor_path),
            "--tenant",
            suite.tenant,
            "--worker-id",
            WORKER_ID,
            "--registry",
            suite.registry.target,
            "--heartbeat-ms",
            "1000",
        ],
        log_path=tmp_path / "orders-worker.log",
        env={
            "PATH": str(Path(typescript.node).parent),
            "TPF_WORKER_SHARED_SECRET": SECRET,
            "TPF_WORKER_REGISTRY_TOKEN": ADMIN,
        },
        cwd=PACKAGE_DIR,
    )
    worker = WorkerProcess(process, WORKER_ID, "grpc")
    worker.start()
    try:
        # The worker registered itself, for the release it read from the descriptor.
        async with registry_client(suite.registry.target) as registry:
            listed = await registry.workers.ListWorkers(
                wspb.ListWorkersRequest(tenant_id=suite.tenant, pipeline_id=PIPELINE)
            )
        [record] = listed.workers
        assert (record.worker_id, record.protocol, record.endpoint) == (
            WORKER_ID,
            "grpc",
            worker.endpoint,
        )
        assert record.release_version == built.release_version
        assert record.state == worker_pb2.WORKER_STATE_HEALTHY
        start_service(
            "tpf_dispatcher",
            dispatcher_env(
                suite,
                TPF_LOCAL_PIPELINES="",
                TPF_PIPELINE_IDS=PIPELINE,
                TPF_WORKER_SHARED_SECRET=SECRET,
            ),
        )
        yield Stack(suite, typescript, worker)
    finally:
        worker.stop()


async def test_typescript_client_and_worker_run_an_order_through_its_approval(
    stack: Stack,
) -> None:
    execution_id = stack.submit()

    waiting = stack.watch(execution_id, "WAITING_EXTERNAL")
    assert waiting["status"] == "EXECUTION_STATUS_WAITING_EXTERNAL"
    [pending] = [i for i in stack.call("pending") if i["executionId"] == execution_id]
    assert pending["stepId"] == "ApproveOrderService"
    assert pending["requestPayload"] == {
        "orderId": pending["requestPayload"]["orderId"],
        "quantity": 3,
        "total": 12,
    }
    completed = stack.call(
        "complete",
        "--interaction",
        pending["interactionId"],
        "--response",
        '{"approved": true, "note": "ok"}',
    )
    assert completed == {
        "interactionId": pending["interactionId"],
        "executionId": execution_id,
        "duplicate": False,
    }

    done = stack.watch(execution_id, "SUCCEEDED")
    assert done["status"] == "EXECUTION_STATUS_SUCCEEDED"
    result = stack.call("result", "--execution", execution_id)
    assert result["status"] == "EXECUTION_STATUS_SUCCEEDED"
    assert result["result"]["decision"] == {"approved": True, "note": "ok"}
    assert result["result"]["steps"] == 3
    history = stack.call("history", "--execution", execution_id)
    statuses = [entry["toStatus"] for entry in history]
    assert statuses[-1] == "EXECUTION_STATUS_SUCCEEDED"
    assert "EXECUTION_STATUS_WAITING_EXTERNAL" in statuses
    # Both steps the TypeScript worker ran were committed under its id.
    assert sum(entry.get("actor") == WORKER_ID for entry in history) >= 2

    with pytest.raises(TypeScriptCallFailed) as refused:
        stack.call("get", "--execution", execution_id, token="not-a-token")
    assert refused.value.error["codeName"] == "UNAUTHENTICATED"
    assert refused.value.error["reason"] == "TOKEN_INVALID"


async def test_typescript_client_dead_letters_a_stale_redrive_and_a_cancel(stack: Stack) -> None:
    execution_id = stack.submit(reject="out of stock")

    failed = stack.watch(execution_id, "FAILED")
    assert failed["status"] == "EXECUTION_STATUS_FAILED"
    assert failed["errorCode"] == "NonRetryableException"
    [letter] = [d for d in stack.call("dlq") if d["executionId"] == execution_id]
    assert letter["terminalReason"] == "TERMINAL_REASON_NON_RETRYABLE"
    version = int(failed["version"])

    with pytest.raises(TypeScriptCallFailed) as stale:
        stack.call(
            "redrive",
            "--execution",
            execution_id,
            "--allow-failed",
            "--expected-version",
            str(version - 1),
        )
    assert stale.value.error["codeName"] == "ABORTED"
    assert stale.value.error["reason"] == "VERSION_CONFLICT"

    redriven = stack.call(
        "redrive",
        "--execution",
        execution_id,
        "--allow-failed",
        "--expected-version",
        str(version),
        "--replace",
        '{"orderId": "fixed-order", "quantity": 1, "unitPrice": 5}',
        "--reason",
        "corrected order",
    )
    assert redriven["previousStatus"] == "EXECUTION_STATUS_FAILED"
    assert stack.watch(execution_id, "WAITING_EXTERNAL")["status"] == (
        "EXECUTION_STATUS_WAITING_EXTERNAL"
    )
    cancelled = stack.call("cancel", "--execution", execution_id, "--reason", "no longer needed")
    assert cancelled == {
        "previousStatus": "EXECUTION_STATUS_WAITING_EXTERNAL",
        "duplicate": False,
    }
    assert stack.call("get", "--execution", execution_id)["status"] == (
        "EXECUTION_STATUS_CANCELLED"
    )
