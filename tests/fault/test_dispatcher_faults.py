"""Faults around the dispatcher and its workers, with every part a real process.

- kill -9 the dispatcher mid-step: the lease runs out (2 s), the sweeper requeues the execution
  and a new dispatcher re-runs the step; the execution completes exactly once.
- kill -9 a gRPC worker mid-step: the dispatcher reports a transport failure at once (no lease
  expiry needed), the retry reaches the restarted worker, which completes it exactly once.
- a worker answering garbage (malformed result JSON over gRPC or REST): a retryable failure each
  time, then FAILED and a dead letter once the release's retries are spent.
- a live `python -m tpf_worker serve` process refuses a bad signature, a replayed nonce and a
  stale timestamp (REST 401, gRPC UNAUTHENTICATED); tests/integration/worker/test_transports.py
  covers the same in-process.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from aiohttp import web
from org.pipelineframework.orchestrator.grpc import transition_worker_pb2 as pb
from org.pipelineframework.orchestrator.grpc import transition_worker_pb2_grpc as pb_grpc

from tests.harness.services import StartService
from tests.harness.wait import wait_until
from tests.support import slow_pipelines
from tests.support.coordinator_client import CoordinatorClient, coordinator_client
from tests.support.example_suite import (
    EXAMPLE_SPEC,
    FAST_RETRY,
    WORKER_SECRET,
    ControlPlane,
    H,
    WorkerLauncher,
    assert_exactly_once,
    control_plane,
    dead_letters_of,
    dispatcher_env,
    event_names,
    get_execution,
    history,
    json_envelope,
    register_worker,
    release_pipeline,
    result_value,
    retry_policy,
    rpc_code,
    standalone_workers,
    submit,
    wait_for_status,
    wait_for_worker,
    worker_launcher,
)
from tests.support.restaurant import order
from tpf.common.v1 import execution_status_pb2 as st
from tpf.coordinator.v1 import dead_letter_pb2
from tpf_envelope import ENVELOPE_ENCODING
from tpf_worker import WorkerRuntime
from tpf_worker.protocol.capability import decode_capability, encode_capability
from tpf_worker.protocol.command import Command, encode_command
from tpf_worker.protocol.result import decode_result
from tpf_worker.protocol.version import PROTOCOL_VERSION
from tpf_worker.release import identity_of, load_pipeline
from tpf_worker.signing import java_instant, sign, signature
from tpf_worker.transports import grpc as grpc_transport
from tpf_worker.transports import rest as rest_transport

pytestmark = pytest.mark.e2e

__all__ = ["control_plane", "standalone_workers", "worker_launcher"]  # fixtures used by name

LEASE_MS = "2000"
WORKER_FAILURE = "TransitionWorkerFailureException"


async def submit_slow(client: CoordinatorClient, plane: ControlPlane, marker_dir: Path) -> str:
    await asyncio.to_thread(marker_dir.mkdir, parents=True, exist_ok=True)
    body = {"orderId": str(uuid.uuid4()), "markerDir": str(marker_dir), "holdS": 60}
    payload = json_envelope(slow_pipelines.ORDER_TYPE, body)
    return await submit(client, plane.tenant, slow_pipelines.SLOW.pipeline_id, payload)


async def step_started(marker_dir: Path, times: int) -> list[str]:
    async def started() -> Any:
        keys = slow_pipelines.starts(marker_dir)
        return keys if len(keys) >= times else None

    keys: list[str] = await wait_until(started, timeout_s=20, what=f"Hold Order started {times}x")
    return keys


def assert_receipt(receipt: Any, execution_id: str) -> None:
    assert receipt["closed"] is True
    assert receipt["heldBy"].startswith(f"{execution_id}:0:")


# ---------------------------------------------------------------------------------------------
# kill -9 the dispatcher


async def test_dispatcher_killed_mid_step_is_rerun_after_lease_expiry_exactly_once(
    control_plane: ControlPlane, start_service: StartService, tmp_path: Path
) -> None:
    plane = control_plane
    identity = await release_pipeline(plane, slow_pipelines.SPEC)

    def dispatcher(dispatcher_id: str) -> Any:
        return start_service(
            "tpf_dispatcher",
            dispatcher_env(
                plane,
                dispatcher_id=dispatcher_id,
                pipeline_ids=[identity.pipeline_id],
                hosted=[slow_pipelines.SPEC],
                TPF_LEASE_MS=LEASE_MS,
            ),
        )

    first = dispatcher("dispatcher-first")
    local_id = "local-" + identity.release_version.removeprefix("sha256:")[:12]
    await wait_for_worker(plane, identity, local_id, "local")
    markers = tmp_path / "markers"
    async with coordinator_client(plane.coordinator.target) as client:
        execution_id = await submit_slow(client, plane, markers)
        await step_started(markers, 1)
        running = await get_execution(client, plane.tenant, execution_id)
        assert running.status == st.EXECUTION_STATUS_RUNNING
        assert running.lease_owner == "dispatcher-first"
        first.kill()

        # Started at once, but it can only claim after the sweeper requeued the expired lease.
        dispatcher("dispatcher-second")
        await wait_for_status(client, plane.tenant, execution_id, st.EXECUTION_STATUS_SUCCEEDED)
        entries = await history(client, plane.tenant, execution_id)
        assert event_names(entries) == [
            "SUBMITTED",
            "CLAIMED",
            "LEASE_EXPIRED",
            "CLAIMED",
            "STEP_COMPLETED",
            "SUCCEEDED",
        ]
        assert_exactly_once(entries)
        claimed, expired, reclaimed = entries[1], entries[2], entries[3]
        assert claimed.actor == "dispatcher-first"
        assert reclaimed.actor == "dispatcher-second"
        assert expired.failure.error_code == "LEASE_EXPIRED"
        assert expired.occurred_at_epoch_ms >= running.lease_expires_at_epoch_ms
        assert reclaimed.occurred_at_epoch_ms >= expired.occurred_at_epoch_ms
        # A lease expiry is not a retry: the re-run is the same attempt, the same key.
        assert (claimed.attempt, reclaimed.attempt) == (0, 0)
        assert sorted(slow_pipelines.starts(markers)) == [f"{execution_id}:0:0"] * 2
        assert_receipt(await result_value(client, plane.tenant, execution_id), execution_id)


# ---------------------------------------------------------------------------------------------
# kill -9 the remote gRPC worker


async def test_grpc_worker_killed_mid_step_is_retried_on_the_restarted_worker(
    control_plane: ControlPlane,
    start_service: StartService,
    worker_launcher: WorkerLauncher,
    tmp_path: Path,
) -> None:
    plane = control_plane
    # Retries spread over ~18 s: room for the worker process to come back.
    identity = await release_pipeline(plane, slow_pipelines.SPEC, retry_policy(8, 500, 3000, 2.0))
    worker = await asyncio.to_thread(
        worker_launcher.start, "grpc", spec=slow_pipelines.SPEC, worker_id="slow-grpc"
    )
    await wait_for_worker(plane, identity, "slow-grpc", "grpc")
    start_service(
        "tpf_dispatcher",
        dispatcher_env(
            plane,
            dispatcher_id="dispatcher-grpc",
            pipeline_ids=[identity.pipeline_id],
            TPF_LEASE_MS=LEASE_MS,
        ),
    )
    markers = tmp_path / "markers"
    async with coordinator_client(plane.coordinator.target) as client:
        execution_id = await submit_slow(client, plane, markers)
        await step_started(markers, 1)
        worker.kill()

        async def retry_scheduled() -> Any:
            entries = await history(client, plane.tenant, execution_id)
            return next((e for e in entries if e.event == H.HISTORY_EVENT_RETRY_SCHEDULED), None)

        retry = await wait_until(retry_scheduled, timeout_s=10, what="RETRY_SCHEDULED")
        assert retry.failure.error_code == WORKER_FAILURE
        assert retry.failure.error_message == (
            f"gRPC transition worker failed for execution {execution_id}"
        )
        assert retry.failure.retryable

        await asyncio.to_thread(worker.start)  # same port, same worker id: it registers again
        await wait_for_status(client, plane.tenant, execution_id, st.EXECUTION_STATUS_SUCCEEDED)
        entries = await history(client, plane.tenant, execution_id)
        assert_exactly_once(entries)
        names = event_names(entries)
        # The dispatcher reported the broken call itself: no lease had to run out.
        assert "LEASE_EXPIRED" not in names
        assert names[:4] == ["SUBMITTED", "CLAIMED", "RETRY_SCHEDULED", "CLAIMED"]
        assert names[-3:] == ["CLAIMED", "STEP_COMPLETED", "SUCCEEDED"]
        assert set(names[2:-3]) <= {"RETRY_SCHEDULED", "CLAIMED"}
        completed = [e for e in entries if e.event == H.HISTORY_EVENT_STEP_COMPLETED]
        # One completion of step 0 (an entry carries the step the execution moves on to).
        assert [(e.step_index, e.actor) for e in completed] == [(1, "slow-grpc")]
        final_attempt = completed[0].attempt
        assert final_attempt >= 1
        # The killed run (attempt 0) and the one that completed; none in between got to run.
        starts = sorted(slow_pipelines.starts(markers))
        assert starts == [f"{execution_id}:0:0", f"{execution_id}:0:{final_attempt}"]
        assert_receipt(await result_value(client, plane.tenant, execution_id), execution_id)


# ---------------------------------------------------------------------------------------------
# A worker answering garbage


MALFORMED_RESULT = b'{"outcome":"COMPLETED","outputPayloads":[],"surprise":true}'


@dataclass
class GarbageWorker:
    """Answers capabilities truthfully (so the dispatcher sends commands) and every Execute
    with a result envelope carrying an unknown key, which strict decoding rejects."""

    capability: bytes
    commands: list[str] = field(default_factory=list)

    def executed(self, command_json: bytes) -> None:
        self.commands.append(json.loads(command_json)["transitionKey"])


class _GarbageServicer(pb_grpc.TransitionWorkerServiceServicer):
    def __init__(self, worker: GarbageWorker) -> None:
        self._worker = worker

    async def Execute(
        self, request: pb.TransitionWorkerRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.TransitionWorkerResponse:
        self._worker.executed(request.command_envelope)
        return pb.TransitionWorkerResponse(
            protocol_version=PROTOCOL_VERSION,
            payload_encoding=ENVELOPE_ENCODING,
            result_envelope=MALFORMED_RESULT,
        )

    async def Capabilities(
        self,
        request: pb.TransitionWorkerCapabilitiesRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> pb.TransitionWorkerCapabilitiesResponse:
        return pb.TransitionWorkerCapabilitiesResponse(
            protocol_version=PROTOCOL_VERSION,
            payload_encoding=ENVELOPE_ENCODING,
            capability_envelope=self._worker.capability,
        )


async def serve_garbage_grpc(worker: GarbageWorker) -> tuple[str, Callable[[], Awaitable[None]]]:
    server = grpc.aio.server()
    pb_grpc.add_TransitionWorkerServiceServicer_to_server(_GarbageServicer(worker), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return f"127.0.0.1:{port}", lambda: server.stop(0)


async def serve_garbage_rest(worker: GarbageWorker) -> tuple[str, Callable[[], Awaitable[None]]]:
    async def execute(request: web.Request) -> web.Response:
        worker.executed(await request.read())
        return web.Response(body=MALFORMED_RESULT, content_type="application/json")

    async def capabilities(request: web.Request) -> web.Response:
        return web.Response(body=worker.capability, content_type="application/json")

    app = web.Application()
    app.router.add_post(rest_transport.EXECUTE_PATH, execute)
    app.router.add_get(rest_transport.CAPABILITIES_PATH, capabilities)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return f"http://127.0.0.1:{port}", runner.cleanup


GARBAGE_MESSAGES = {
    "grpc": "gRPC transition worker returned malformed result envelope for execution {id}",
    "rest": "REST transition worker returned malformed JSON for execution {id} with HTTP 200 "
    "and response body omitted",
}


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
async def test_worker_returning_garbage_fails_retryably_then_dead_letters(
    protocol: str, control_plane: ControlPlane, start_service: StartService, tmp_path: Path
) -> None:
    plane = control_plane
    identity = await release_pipeline(plane, slow_pipelines.SPEC, FAST_RETRY)
    runtime = WorkerRuntime(slow_pipelines.SLOW, identity)
    worker = GarbageWorker(encode_capability(runtime.capability(protocol)))
    serve = serve_garbage_grpc if protocol == "grpc" else serve_garbage_rest
    endpoint, stop = await serve(worker)
    try:
        await register_worker(plane, identity, f"garbage-{protocol}", protocol, endpoint)
        start_service(
            "tpf_dispatcher",
            dispatcher_env(
                plane, dispatcher_id="dispatcher-garbage", pipeline_ids=[identity.pipeline_id]
            ),
        )
        async with coordinator_client(plane.coordinator.target) as client:
            execution_id = await submit_slow(client, plane, tmp_path / "markers")
            failed = await wait_for_status(
                client, plane.tenant, execution_id, st.EXECUTION_STATUS_FAILED
            )
            message = GARBAGE_MESSAGES[protocol].format(id=execution_id)
            assert failed.error_code == WORKER_FAILURE
            assert failed.error_message == message
            assert failed.attempt == FAST_RETRY.max_retries
            assert failed.terminal_reason == "retry_exhausted"
            entries = await history(client, plane.tenant, execution_id)
            retries = [e for e in entries if e.event == H.HISTORY_EVENT_RETRY_SCHEDULED]
            assert len(retries) == FAST_RETRY.max_retries
            assert all(e.failure.retryable and e.failure.error_message == message for e in retries)
            assert event_names(entries)[-1] == "FAILED"
            [letter] = await dead_letters_of(client, plane.tenant, execution_id)
            assert letter.terminal_reason == dead_letter_pb2.TERMINAL_REASON_RETRY_EXHAUSTED
            assert letter.retryable
            assert letter.error_code == WORKER_FAILURE
            assert letter.retries_observed == FAST_RETRY.max_retries
        # Every attempt reached the worker once; nothing else was sent.
        attempts = range(FAST_RETRY.max_retries + 1)
        assert worker.commands == [f"{execution_id}:0:{n}" for n in attempts]
    finally:
        await stop()


# ---------------------------------------------------------------------------------------------
# Signatures against live worker processes


def example_command() -> Command:
    identity = identity_of(load_pipeline(EXAMPLE_SPEC))
    execution_id = str(uuid.uuid4())
    return Command(
        tenant_id="restaurant-demo",
        execution_id=execution_id,
        pipeline_id=identity.pipeline_id,
        contract_version=identity.contract_version,
        release_version=identity.release_version,
        current_step_index=0,
        stop_before_step_index=1,
        attempt=0,
        result_shape="SINGLE",
        execution_version=1,
        transition_key=f"{execution_id}:0:0",
        trace_id=f"{execution_id}:0:0",
        payload_type_id="org.pipelineframework.restaurantapproval.common.dto."
        "PlaceRestaurantOrderRequestDto",
        payload_encoding="application/tpf-transition+json",
        payload=json.dumps(order()),
    )


def stale_timestamp() -> str:
    # Beyond the default 2-minute tolerance.
    return java_instant(datetime.now(UTC) - timedelta(minutes=3))


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_live_rest_worker_rejects_bad_signature_replayed_nonce_and_stale_timestamp(
    standalone_workers: WorkerLauncher, http: aiohttp.ClientSession
) -> None:
    worker = await asyncio.to_thread(standalone_workers.start, "rest", worker_id="rest-signed")
    url = worker.endpoint + rest_transport.EXECUTE_PATH
    body = encode_command(example_command())

    async def post(timestamp: str, nonce: str, signed: str) -> aiohttp.ClientResponse:
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            rest_transport.TIMESTAMP_HEADER: timestamp,
            rest_transport.NONCE_HEADER: nonce,
            rest_transport.SIGNATURE_HEADER: signed,
        }
        async with http.post(url, data=body, headers=headers) as response:
            await response.read()
            return response

    good = sign(WORKER_SECRET, "POST", rest_transport.EXECUTE_PATH, body)
    accepted = await post(good.timestamp, good.nonce, good.signature)
    assert accepted.status == 200
    # The same signed request again: the nonce was seen.
    assert (await post(good.timestamp, good.nonce, good.signature)).status == 401

    fresh = sign(WORKER_SECRET, "POST", rest_transport.EXECUTE_PATH, body)
    wrong_key = signature(
        "not-the-secret", "POST", rest_transport.EXECUTE_PATH, fresh.timestamp, fresh.nonce, body
    )
    assert (await post(fresh.timestamp, fresh.nonce, wrong_key)).status == 401
    # The signature of another body (a tampered command).
    other_body = signature(
        WORKER_SECRET,
        "POST",
        rest_transport.EXECUTE_PATH,
        fresh.timestamp,
        fresh.nonce,
        body + b" ",
    )
    assert (await post(fresh.timestamp, fresh.nonce, other_body)).status == 401

    old = stale_timestamp()
    nonce = str(uuid.uuid4())
    stale = signature(WORKER_SECRET, "POST", rest_transport.EXECUTE_PATH, old, nonce, body)
    assert (await post(old, nonce, stale)).status == 401

    # Refused requests used no nonce: the fresh one is still good for a correct signature.
    assert (await post(fresh.timestamp, fresh.nonce, fresh.signature)).status == 200

    capability = sign(WORKER_SECRET, "GET", rest_transport.CAPABILITIES_PATH, b"")
    async with http.get(
        worker.endpoint + rest_transport.CAPABILITIES_PATH,
        headers={
            "Accept": "application/json",
            rest_transport.TIMESTAMP_HEADER: capability.timestamp,
            rest_transport.NONCE_HEADER: capability.nonce,
            rest_transport.SIGNATURE_HEADER: capability.signature,
        },
    ) as response:
        assert response.status == 200
        offered = decode_capability(await response.read())
    assert offered.pipeline_id == "org.pipelineframework.restaurantapproval"
    assert offered.provider_name == "rest"
    assert worker.is_running


async def test_live_grpc_worker_rejects_bad_signature_replayed_nonce_and_stale_timestamp(
    standalone_workers: WorkerLauncher,
) -> None:
    worker = await asyncio.to_thread(standalone_workers.start, "grpc", worker_id="grpc-signed")
    body = encode_command(example_command())
    path = grpc_transport.EXECUTE_PATH

    def request(timestamp: str, nonce: str, signed: str) -> pb.TransitionWorkerRequest:
        return pb.TransitionWorkerRequest(
            protocol_version=PROTOCOL_VERSION,
            payload_encoding=ENVELOPE_ENCODING,
            command_envelope=body,
            timestamp=timestamp,
            nonce=nonce,
            signature=signed,
        )

    async with grpc.aio.insecure_channel(worker.endpoint) as channel:
        stub = pb_grpc.TransitionWorkerServiceStub(channel)
        good = sign(WORKER_SECRET, "GRPC", path, body)
        answer = await stub.Execute(request(good.timestamp, good.nonce, good.signature), timeout=10)
        result = decode_result(answer.result_envelope)
        assert result.outcome == "COMPLETED", result
        replayed = stub.Execute(request(good.timestamp, good.nonce, good.signature), timeout=10)
        assert await rpc_code(replayed) == grpc.StatusCode.UNAUTHENTICATED

        fresh = sign(WORKER_SECRET, "GRPC", path, body)
        wrong = signature("not-the-secret", "GRPC", path, fresh.timestamp, fresh.nonce, body)
        bad = stub.Execute(request(fresh.timestamp, fresh.nonce, wrong), timeout=10)
        assert await rpc_code(bad) == grpc.StatusCode.UNAUTHENTICATED

        old = stale_timestamp()
        nonce = str(uuid.uuid4())
        stale = signature(WORKER_SECRET, "GRPC", path, old, nonce, body)
        late = stub.Execute(request(old, nonce, stale), timeout=10)
        assert await rpc_code(late) == grpc.StatusCode.UNAUTHENTICATED

        unsigned = stub.Execute(request("", "", ""), timeout=10)
        assert await rpc_code(unsigned) == grpc.StatusCode.UNAUTHENTICATED
    assert worker.is_running
