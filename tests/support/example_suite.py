"""An SDK pipeline (the restaurant example, or a test pipeline) run through the whole suite.

A registry and a coordinator as real processes (`control_plane`), the pipeline's release built
with `tpf_worker.release.build_release`, registered with a chosen retry policy and activated,
then a dispatcher hosting it (`local`) or a `python -m tpf_worker serve` process of a remote
transport (`worker_launcher`), which registers itself with the registry as any deployment
would. Plus the coordinator calls the example tests make: submit, wait, interactions, history,
dead letters, redrive.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final

import grpc
import pytest
from aiobotocore.session import get_session
from google.protobuf import json_format

import tpf_envelope
from tests.harness.moto import MotoServer
from tests.harness.ports import free_port
from tests.harness.processes import ChildProcess, ProcessExited
from tests.harness.services import StartService, minimal_environment
from tests.harness.wait import WaitTimeout, wait_until, wait_until_sync
from tests.support.coordinator_client import CoordinatorClient
from tests.support.registry_client import ADMIN, auth_env, registry_client
from tpf.common.v1 import execution_status_pb2 as st
from tpf.common.v1 import payload_pb2
from tpf.coordinator.v1 import (
    dead_letter_pb2,
    dead_letter_service_pb2_grpc,
    execution_pb2,
    interaction_pb2,
    interaction_service_pb2_grpc,
)
from tpf.coordinator.v1 import dead_letter_service_pb2 as dpb
from tpf.coordinator.v1 import execution_service_pb2 as epb
from tpf.coordinator.v1 import interaction_service_pb2 as ipb
from tpf.registry.v1 import release_pb2
from tpf.registry.v1 import release_service_pb2 as rpb
from tpf.registry.v1 import worker_service_pb2 as wspb
from tpf_worker import WorkerIdentity
from tpf_worker.release import build_release, load_pipeline

EXAMPLE_SPEC: Final = "restaurant_approval.pipeline:PIPELINE"
TENANT: Final = "restaurant-demo"
WORKER_SECRET: Final = "example-suite-worker-secret"
TRANSITION: Final = "application/tpf-transition+json"
REQUESTS: Final = Path(str(resources.files("restaurant_approval") / "requests"))
H = execution_pb2.HistoryEvent

_HOST = "127.0.0.1"
_WORKER_READY_TIMEOUT_S = 30.0


def retry_policy(
    max_retries: int, initial_delay_ms: int, max_delay_ms: int, multiplier: float = 1.0
) -> release_pb2.RetryPolicy:
    policy = release_pb2.RetryPolicy(max_retries=max_retries, multiplier=multiplier)
    policy.initial_delay.FromMilliseconds(initial_delay_ms)
    policy.max_delay.FromMilliseconds(max_delay_ms)
    return policy


# The e2e conftest's FAST_RETRY: retry paths finish within a test.
FAST_RETRY: Final = retry_policy(2, 20, 50)


# ---------------------------------------------------------------------------------------------
# Registry + coordinator


@dataclass
class ControlPlane:
    """A registry and a coordinator (sweeper every 100 ms) as processes on one fresh database."""

    registry: Any
    coordinator: Any
    tenant: str
    work_dir: Path


@pytest.fixture
def control_plane(database: str, start_service: StartService, tmp_path: Path) -> ControlPlane:
    # `database` before `start_service`: teardown runs in reverse, so the processes stop before
    # their database is dropped (otherwise a dispatcher's drain waits on a coordinator whose
    # ClaimWork hangs without its database, until SIGKILL 10 s later).
    registry = start_service(
        "tpf_registry",
        {
            "TPF_DATABASE_URL": database,
            "TPF_DATA_DIR": str(tmp_path / "registry-data"),
            "TPF_REGISTRY_ARTIFACT_ROOTS": str(tmp_path),
            **auth_env(),
        },
    )
    coordinator = start_service(
        "tpf_coordinator",
        {
            "TPF_DATABASE_URL": database,
            "TPF_DATA_DIR": str(tmp_path / "coordinator-data"),
            "TPF_REGISTRY_TARGET": registry.target,
            "TPF_REGISTRY_TOKEN": ADMIN,
            "TPF_REGISTRY_CACHE_S": "0",
            # Expired leases are noticed within 100 ms, so fault tests finish in seconds.
            "TPF_SWEEP_INTERVAL_MS": "100",
            **auth_env(),
        },
    )
    return ControlPlane(registry, coordinator, TENANT, tmp_path)


async def release_pipeline(
    plane: ControlPlane, spec: str, retry: release_pb2.RetryPolicy = FAST_RETRY
) -> WorkerIdentity:
    """Build the release of pipeline `spec`, register it with the SDK's policy but `retry` as
    its default retry, and activate it; no worker is registered."""
    pipeline = load_pipeline(spec)
    built = build_release(pipeline, plane.work_dir / f"release-{pipeline.pipeline_id}")
    policy = json_format.ParseDict(built.policy, release_pb2.ReleasePolicy())
    policy.default_retry.CopyFrom(retry)
    async with registry_client(plane.registry.target) as client:
        await client.releases.RegisterRelease(
            rpb.RegisterReleaseRequest(
                tenant_id=plane.tenant,
                pipeline_id=built.pipeline_id,
                release_descriptor_path=str(built.descriptor_path),
                policy=policy,
            )
        )
        await client.releases.ActivateRelease(
            rpb.ActivateReleaseRequest(
                tenant_id=plane.tenant,
                pipeline_id=built.pipeline_id,
                release_version=built.release_version,
            )
        )
    return built.identity


async def register_worker(
    plane: ControlPlane, identity: WorkerIdentity, worker_id: str, protocol: str, endpoint: str
) -> None:
    """Register a worker by hand (for servers the test itself runs)."""
    async with registry_client(plane.registry.target) as client:
        await client.workers.RegisterWorker(
            wspb.RegisterWorkerRequest(
                tenant_id=plane.tenant,
                pipeline_id=identity.pipeline_id,
                worker_id=worker_id,
                contract_version=identity.contract_version,
                release_version=identity.release_version,
                protocol=protocol,
                endpoint=endpoint,
                artifact_id=identity.artifact_id,
                artifact_digest=identity.artifact_digest,
            )
        )


async def wait_for_worker(
    plane: ControlPlane, identity: WorkerIdentity, worker_id: str, protocol: str
) -> Any:
    """The registry's HEALTHY record of `worker_id` for the release, once it has one."""

    async def resolved() -> Any:
        async with registry_client(plane.registry.target) as client:
            answer = await client.workers.ResolveWorkers(
                wspb.ResolveWorkersRequest(
                    tenant_id=plane.tenant,
                    pipeline_id=identity.pipeline_id,
                    release_version=identity.release_version,
                    protocol=protocol,
                )
            )
        return next((w for w in answer.workers if w.worker_id == worker_id), None)

    return await wait_until(resolved, timeout_s=15, what=f"{protocol} worker {worker_id} HEALTHY")


# ---------------------------------------------------------------------------------------------
# Dispatcher


def dispatcher_env(
    plane: ControlPlane,
    *,
    dispatcher_id: str,
    pipeline_ids: Sequence[str],
    hosted: Sequence[str] = (),
    **overrides: str,
) -> dict[str, str]:
    """A dispatcher claiming only `pipeline_ids`, hosting the `hosted` pipeline specs as `local`
    workers (registered for the tenant by the dispatcher itself), able to call remote workers."""
    return {
        "TPF_COORDINATOR_TARGET": plane.coordinator.target,
        "TPF_COORDINATOR_TOKEN": ADMIN,
        "TPF_REGISTRY_TARGET": plane.registry.target,
        "TPF_REGISTRY_TOKEN": ADMIN,
        "TPF_DISPATCHER_ID": dispatcher_id,
        "TPF_PIPELINE_IDS": ",".join(pipeline_ids),
        "TPF_LOCAL_PIPELINES": ",".join(hosted),
        "TPF_LOCAL_WORKER_TENANTS": plane.tenant if hosted else "",
        "TPF_WORKER_SHARED_SECRET": WORKER_SECRET,
        "TPF_CLAIM_WAIT_MS": "500",
        "TPF_WORKER_CACHE_S": "1",
        **auth_env(),
        **overrides,
    }


# ---------------------------------------------------------------------------------------------
# SQS queues (moto_server)


@dataclass(frozen=True)
class SqsQueues:
    request_url: str
    response_url: str


async def create_queues(moto: MotoServer, prefix: str) -> SqsQueues:
    """A request and a response queue with unique names (moto_server is shared by the run)."""
    unique = f"{prefix}-{uuid.uuid4().hex[:12]}"
    async with get_session().create_client("sqs", **moto.client_kwargs) as sqs:
        request = await sqs.create_queue(QueueName=f"{unique}-requests")
        response = await sqs.create_queue(QueueName=f"{unique}-responses")
    return SqsQueues(request["QueueUrl"], response["QueueUrl"])


def sqs_dispatcher_env(moto: MotoServer, queues: SqsQueues) -> dict[str, str]:
    return {
        "TPF_SQS_RESPONSE_QUEUE_URL": queues.response_url,
        "TPF_SQS_ENDPOINT_URL": moto.endpoint_url,
        "TPF_SQS_REGION": moto.region,
        "TPF_SQS_ACCESS_KEY_ID": moto.access_key_id,
        "TPF_SQS_SECRET_ACCESS_KEY": moto.secret_access_key,
    }


# ---------------------------------------------------------------------------------------------
# Worker processes (`python -m tpf_worker serve`)


class WorkerProcess:
    """A `python -m tpf_worker serve` process; ready once it printed its `worker-ready` line.

    It has no gRPC health service (a REST or SQS worker has no gRPC at all), so readiness is
    that line, and registration is checked in the registry by the caller.
    """

    def __init__(self, process: ChildProcess, worker_id: str, transport: str) -> None:
        self._process = process
        self.worker_id = worker_id
        self.transport = transport
        self.endpoint = ""
        self._log_offset = 0

    @property
    def is_running(self) -> bool:
        return self._process.is_running

    @property
    def log_path(self) -> Path:
        return self._process.log_path

    def start(self) -> None:
        # The log is appended across restarts: look for this start's ready line only.
        self._log_offset = len(self._process.log_text())
        self._process.start()
        try:
            ready = wait_until_sync(
                self._ready_line,
                timeout_s=_WORKER_READY_TIMEOUT_S,
                what=f"{self.transport} worker {self.worker_id} ready",
            )
        except (WaitTimeout, ProcessExited) as error:
            self._process.kill()
            raise RuntimeError(
                f"worker {self.worker_id} did not start: {error}\n{self._process.log_tail()}"
            ) from error
        assert ready is not None  # wait_until_sync returns only a truthy value
        self.endpoint = str(ready["endpoint"])

    def kill(self) -> None:
        """SIGKILL, as in a crash."""
        self._process.kill()

    def terminate(self, timeout_s: float = 15.0) -> int:
        return self._process.terminate(timeout_s)

    def stop(self) -> None:
        self._process.stop()

    def log_text(self) -> str:
        return self._process.log_text()

    def _ready_line(self) -> dict[str, Any] | None:
        self._process.raise_if_exited(f"worker {self.worker_id}")
        for line in self._process.log_text()[self._log_offset :].splitlines():
            if '"worker-ready"' in line:
                ready: dict[str, Any] = json.loads(line)
                return ready
        return None


@dataclass
class WorkerLauncher:
    """Starts worker processes, registering with the registry at `registry_target` (None: they
    do not register); `stop_all` stops every one of them."""

    root: Path
    registry_target: str | None
    tenant: str = TENANT
    started: list[WorkerProcess] = field(default_factory=list)

    def start(
        self,
        transport: str,
        *,
        spec: str = EXAMPLE_SPEC,
        worker_id: str | None = None,
        port: int | None = None,
        sqs: tuple[MotoServer, SqsQueues] | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> WorkerProcess:
        """Start a worker of `transport` serving `spec`, on a fixed free port (so a restart
        keeps its endpoint), and wait for its ready line."""
        worker_id = worker_id or f"{transport}-worker-{len(self.started)}"
        argv = [
            sys.executable,
            "-m",
            "tpf_worker",
            "serve",
            "--pipeline",
            spec,
            "--transport",
            transport,
            "--host",
            _HOST,
            "--port",
            str(port if port is not None else free_port(_HOST)),
            "--worker-id",
            worker_id,
        ]
        if self.registry_target is not None:
            argv += ["--registry-target", self.registry_target, "--tenant", self.tenant]
        env = {
            **minimal_environment(),
            "TPF_WORKER_SHARED_SECRET": WORKER_SECRET,
            "TPF_WORKER_REGISTRY_TOKEN": ADMIN,
            **(extra_env or {}),
        }
        if sqs is not None:
            moto, queues = sqs
            argv += [
                "--request-queue-url",
                queues.request_url,
                "--response-queue-url",
                queues.response_url,
                "--sqs-endpoint-url",
                moto.endpoint_url,
                "--sqs-region",
                moto.region,
            ]
            env.update(
                AWS_ACCESS_KEY_ID=moto.access_key_id, AWS_SECRET_ACCESS_KEY=moto.secret_access_key
            )
        process = ChildProcess(
            argv, log_path=self.root / f"worker-{worker_id}.log", env=env, cwd=self.root_dir()
        )
        worker = WorkerProcess(process, worker_id, transport)
        self.started.append(worker)
        worker.start()
        return worker

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()

    @staticmethod
    def root_dir() -> Path:
        # The repository root: `tests.support.*` pipelines import from there.
        return Path(__file__).resolve().parents[2]


@pytest.fixture
def worker_launcher(control_plane: ControlPlane, tmp_path: Path) -> Iterator[WorkerLauncher]:
    """Workers that register with `control_plane`'s registry for its tenant."""
    launcher = WorkerLauncher(tmp_path, control_plane.registry.target, control_plane.tenant)
    try:
        yield launcher
    finally:
        launcher.stop_all()


@pytest.fixture
def standalone_workers(tmp_path: Path) -> Iterator[WorkerLauncher]:
    """Workers that register nowhere (for tests that call them directly)."""
    launcher = WorkerLauncher(tmp_path, None)
    try:
        yield launcher
    finally:
        launcher.stop_all()


# ---------------------------------------------------------------------------------------------
# Coordinator calls


def json_envelope(type_id: str, value: Any) -> payload_pb2.PayloadEnvelope:
    """An application-type envelope whose payload is the compact JSON of `value`."""
    return payload_pb2.PayloadEnvelope(
        payload_type_id=type_id,
        payload_encoding=TRANSITION,
        payload=json.dumps(value, separators=(",", ":")),
    )


def generic_envelope(value: Any) -> payload_pb2.PayloadEnvelope:
    """TPF's generic envelope (`java.util.Map` of nested envelopes), as TPF's demo client sends
    an interaction completion."""
    envelope = tpf_envelope.encode(value)
    return payload_pb2.PayloadEnvelope(
        payload_type_id=envelope.payload_type_id,
        payload_encoding=envelope.payload_encoding,
        payload=envelope.payload,
    )


def request_json(name: str) -> Any:
    """One of the example package's requests/*.json."""
    return json.loads((REQUESTS / f"{name}.json").read_text())


async def submit(
    client: CoordinatorClient,
    tenant: str,
    pipeline_id: str,
    payload: payload_pb2.PayloadEnvelope,
    idempotency_key: str = "",
) -> str:
    response = await client.executions.SubmitExecution(
        epb.SubmitExecutionRequest(
            tenant_id=tenant,
            pipeline_id=pipeline_id,
            input_shape=execution_pb2.INPUT_SHAPE_UNI,
            input_payload=payload,
            idempotency_key=idempotency_key,
        )
    )
    return response.execution_id


async def get_execution(client: CoordinatorClient, tenant: str, execution_id: str) -> Any:
    response = await client.executions.GetExecution(
        epb.GetExecutionRequest(tenant_id=tenant, execution_id=execution_id)
    )
    return response.execution


async def wait_for_status(
    client: CoordinatorClient,
    tenant: str,
    execution_id: str,
    status: st.ExecutionStatus.ValueType,
    *,
    timeout_s: float = 30,
) -> Any:
    """The execution once it is in `status`; fails early if it ends in another terminal one."""
    terminal = {
        st.EXECUTION_STATUS_SUCCEEDED,
        st.EXECUTION_STATUS_FAILED,
        st.EXECUTION_STATUS_DLQ,
        st.EXECUTION_STATUS_CANCELLED,
    }

    async def reached() -> Any:
        current = await get_execution(client, tenant, execution_id)
        if current.status != status and current.status in terminal:
            raise AssertionError(
                f"{execution_id} ended {st.ExecutionStatus.Name(current.status)} while waiting "
                f"for {st.ExecutionStatus.Name(status)}: {current.error_code} "
                f"{current.error_message}"
            )
        return current if current.status == status else None

    return await wait_until(
        reached, timeout_s=timeout_s, what=f"{execution_id} {st.ExecutionStatus.Name(status)}"
    )


async def history(client: CoordinatorClient, tenant: str, execution_id: str) -> list[Any]:
    response = await client.executions.ListExecutionHistory(
        epb.ListExecutionHistoryRequest(tenant_id=tenant, execution_id=execution_id)
    )
    return list(response.history_entries)


async def result_value(client: CoordinatorClient, tenant: str, execution_id: str) -> Any:
    response = await client.executions.GetExecutionResult(
        epb.GetExecutionResultRequest(tenant_id=tenant, execution_id=execution_id)
    )
    return json.loads(response.result_payload.payload)


async def pending_interaction(
    client: CoordinatorClient, tenant: str, execution_id: str
) -> interaction_pb2.Interaction:
    stub = interaction_service_pb2_grpc.InteractionServiceStub(client.channel)

    async def listed() -> Any:
        pending = await stub.ListPendingInteractions(
            ipb.ListPendingInteractionsRequest(tenant_id=tenant)
        )
        return next((i for i in pending.interactions if i.execution_id == execution_id), None)

    found: interaction_pb2.Interaction = await wait_until(
        listed, timeout_s=10, what=f"pending interaction of {execution_id}"
    )
    return found


async def complete_interaction(
    client: CoordinatorClient,
    tenant: str,
    interaction_id: str,
    response: payload_pb2.PayloadEnvelope,
) -> ipb.CompleteInteractionResponse:
    stub = interaction_service_pb2_grpc.InteractionServiceStub(client.channel)
    answer: ipb.CompleteInteractionResponse = await stub.CompleteInteraction(
        ipb.CompleteInteractionRequest(
            tenant_id=tenant,
            interaction_id=interaction_id,
            response_payload=response,
            actor="restaurant",
        )
    )
    return answer


async def dead_letters_of(
    client: CoordinatorClient, tenant: str, execution_id: str, *, include_redriven: bool = False
) -> list[dead_letter_pb2.DeadLetter]:
    stub = dead_letter_service_pb2_grpc.DeadLetterServiceStub(client.channel)
    listed = await stub.ListDeadLetters(
        dpb.ListDeadLettersRequest(
            tenant_id=tenant,
            filter=dpb.DeadLetterFilter(
                execution_id=execution_id, include_redriven=include_redriven
            ),
        )
    )
    return list(listed.dead_letters)


async def redrive(
    client: CoordinatorClient,
    tenant: str,
    execution_id: str,
    *,
    expected_version: int,
    replacement_input: payload_pb2.PayloadEnvelope | None = None,
) -> dpb.RedriveExecutionResponse:
    stub = dead_letter_service_pb2_grpc.DeadLetterServiceStub(client.channel)
    request = dpb.RedriveExecutionRequest(
        tenant_id=tenant,
        execution_id=execution_id,
        expected_version=expected_version,
        reason="fixed the restaurant decision",
        allow_failed=True,
    )
    if replacement_input is not None:
        request.replacement_input.CopyFrom(replacement_input)
    answer: dpb.RedriveExecutionResponse = await stub.RedriveExecution(request)
    return answer


def assert_exactly_once(entries: Sequence[Any]) -> None:
    """One commit per version (strictly increasing), no step completed twice, one SUCCEEDED."""
    versions = [e.version for e in entries]
    assert versions == sorted(set(versions)), versions
    completed = [e.step_index for e in entries if e.event == H.HISTORY_EVENT_STEP_COMPLETED]
    assert len(completed) == len(set(completed)), completed
    events = [e.event for e in entries]
    assert events.count(H.HISTORY_EVENT_SUCCEEDED) == 1, [H.Name(e) for e in events]
    assert events[-1] == H.HISTORY_EVENT_SUCCEEDED


def event_names(entries: Sequence[Any]) -> list[str]:
    return [H.Name(e.event).removeprefix("HISTORY_EVENT_") for e in entries]


async def rpc_code(call: Any) -> grpc.StatusCode:
    """The status code `call` (an awaitable RPC) fails with."""
    try:
        await call
    except grpc.aio.AioRpcError as error:
        code: grpc.StatusCode = error.code()
        return code
    raise AssertionError("the call succeeded")
