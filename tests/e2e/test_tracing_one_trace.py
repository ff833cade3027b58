"""One trace from a REST submit to the worker's steps, exported over OTLP to a test receiver.

The restaurant example runs on real processes, every one exporting to `tests.harness.otlp`:
registry, coordinator, dispatcher, a remote gRPC worker (the release's only worker) and the
REST gateway. The order is submitted over REST with a client `traceparent` and the decision is
completed over REST. Then the submit's trace must hold spans of the gateway, the coordinator,
the dispatcher and the worker, joined as DESIGN says: the HTTP span continues the client's;
gRPC client and server spans chain; every claim, step run and completion is a child of the
coordinator's SubmitExecution span and links to the batch call it ran in; each worker call
hangs under its step run, and the worker's server span under it is the step's span there; the
resumed await links to the REST completion's own trace. Log
lines carry the trace and span ids. A submit sent over SQS with a `traceparent` message
attribute continues that trace through the bridge, and a pipeline hosted in the dispatcher
(`local`) runs its steps in it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_gateway_routes import CP, CP_BASE, running_gateway
from tests.e2e.test_sqs_bridge import Queues, queues, sqs
from tests.harness.moto import MotoServer
from tests.harness.otlp import OtlpReceiver, ReceivedSpan, otlp_receiver
from tests.harness.services import StartService
from tests.harness.wait import wait_until
from tests.support.example_suite import (
    EXAMPLE_SPEC,
    TENANT,
    ControlPlane,
    WorkerLauncher,
    dispatcher_env,
    release_pipeline,
    request_json,
    wait_for_worker,
)
from tests.support.registry_client import ADMIN, auth_env
from tpf_envelope import encode, to_json_dict

pytestmark = pytest.mark.e2e
__all__ = ["otlp_receiver", "queues", "sqs"]  # fixtures, used by name

CLIENT_TRACE_ID = uuid.uuid4().hex
CLIENT_SPAN_ID = uuid.uuid4().hex[:16]
SUBMIT_RPC = "tpf.coordinator.v1.ExecutionService/SubmitExecution"
EXECUTE_RPC = "org.pipelineframework.orchestrator.grpc.TransitionWorkerService/Execute"
ROUTE_BASE = "/tpf/control-plane/tenants/{tenantId}"
STEPS = 4  # validate, create the pending approval, await the decision, finalize


@pytest.fixture
def traced_plane(
    database: str, start_service: StartService, tmp_path: Path, otlp_receiver: OtlpReceiver
) -> ControlPlane:
    otel = otlp_receiver.environment()
    registry = start_service(
        "tpf_registry",
        {
            "TPF_DATABASE_URL": database,
            "TPF_DATA_DIR": str(tmp_path / "registry-data"),
            "TPF_REGISTRY_ARTIFACT_ROOTS": str(tmp_path),
            **auth_env(),
            **otel,
        },
    )
    coordinator = start_service(
        "tpf_coordinator",
        {
            "TPF_DATABASE_URL": database,
            "TPF_DATA_DIR": str(tmp_path / "coordinator-data"),
            "TPF_REGISTRY_TARGET": registry.target,
            "TPF_REGISTRY_TOKEN": ADMIN,
            **auth_env(),
            **otel,
        },
    )
    return ControlPlane(registry, coordinator, TENANT, tmp_path)


@pytest.fixture
def launcher(traced_plane: ControlPlane, tmp_path: Path) -> Iterator[WorkerLauncher]:
    started = WorkerLauncher(tmp_path, traced_plane.registry.target, traced_plane.tenant)
    try:
        yield started
    finally:
        started.stop_all()


def _by_id(spans: list[ReceivedSpan]) -> dict[str, ReceivedSpan]:
    return {span.span_id: span for span in spans}


def _named(spans: list[ReceivedSpan], service: str, name: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.service == service and s.name == name]


def _children(spans: list[ReceivedSpan], parent: ReceivedSpan) -> list[ReceivedSpan]:
    return [s for s in spans if s.parent_span_id == parent.span_id]


def _complete(spans: list[ReceivedSpan]) -> bool:
    """Every span the run makes in the submit's trace has been exported."""
    return (
        len(_named(spans, "tpf-coordinator", "complete step")) >= STEPS
        and len(_named(spans, "tpf-worker", EXECUTE_RPC)) >= STEPS
        and len(_named(spans, "tpf-dispatcher", "run step")) >= STEPS
        and len(_named(spans, "tpf-coordinator", "resume execution")) == 1
    )


async def test_a_rest_submit_and_its_steps_share_one_trace(
    otlp_receiver: OtlpReceiver,
    traced_plane: ControlPlane,
    launcher: WorkerLauncher,
    start_service: StartService,
    tmp_path: Path,
    pytestconfig: pytest.Config,
) -> None:
    otel = otlp_receiver.environment()
    identity = await release_pipeline(traced_plane, EXAMPLE_SPEC)
    worker = await asyncio.to_thread(
        launcher.start, "grpc", worker_id="restaurant-grpc", extra_env=otel
    )
    await wait_for_worker(traced_plane, identity, worker.worker_id, "grpc")
    dispatcher = start_service(
        "tpf_dispatcher",
        dispatcher_env(
            traced_plane,
            dispatcher_id="traced-dispatcher",
            pipeline_ids=[identity.pipeline_id],
            **otel,
        ),
    )
    async with running_gateway(traced_plane, tmp_path, pytestconfig.rootpath, **otel) as gateway:
        body = request_json("submit")
        body["idempotencyKey"] = f"order-{uuid.uuid4()}"
        accepted = await gateway.post(
            f"{CP_BASE}/executions",
            json_body=body,
            headers={**CP, "traceparent": f"00-{CLIENT_TRACE_ID}-{CLIENT_SPAN_ID}-01"},
        )
        assert accepted.status == 200, accepted.text
        execution_id = accepted.json()["executionId"]
        # The gateway answers with its own span in the client's trace.
        assert accepted.headers["traceparent"].split("-")[1] == CLIENT_TRACE_ID
        completed = await _decide(gateway, execution_id)
        completion_trace_id = completed.headers["traceparent"].split("-")[1]
        await _until_succeeded(gateway, execution_id)

    def exported() -> list[ReceivedSpan] | None:
        spans = otlp_receiver.in_trace(CLIENT_TRACE_ID)
        return spans if _complete(spans) else None

    found = await wait_until(exported, timeout_s=30, what="every span of the trace exported")
    assert found is not None
    trace: list[ReceivedSpan] = found
    every = _by_id(otlp_receiver.spans())
    assert {"tpf-gateway", "tpf-coordinator", "tpf-dispatcher", "tpf-worker"} <= {
        s.service for s in trace
    }

    # REST in, gRPC on: each hop's span is the child of the one before.
    (http,) = [s for s in trace if s.service == "tpf-gateway" and s.kind == "SERVER"]
    assert http.name == f"POST {ROUTE_BASE}/executions"
    assert http.parent_span_id == CLIENT_SPAN_ID
    (submit_client,) = _named(trace, "tpf-gateway", SUBMIT_RPC)
    assert (submit_client.kind, submit_client.parent_span_id) == ("CLIENT", http.span_id)
    (submit,) = _named(trace, "tpf-coordinator", SUBMIT_RPC)
    assert (submit.kind, submit.parent_span_id) == ("SERVER", submit_client.span_id)

    # Claims and completions: children of the submit, linked to the batch call they ran in.
    claims = _named(trace, "tpf-coordinator", "claim step")
    completions = _named(trace, "tpf-coordinator", "complete step")
    assert len(claims) == 2, "one claim up to the await, one after it"
    assert len(completions) == STEPS
    for span, batch_rpc in [
        *((c, "tpf.coordinator.v1.WorkService/ClaimWork") for c in claims),
        *((c, "tpf.coordinator.v1.WorkService/CompleteWork") for c in completions),
    ]:
        assert span.parent_span_id == submit.span_id, span
        assert span.attributes["tpf.execution_id"] == execution_id
        (link,) = span.links
        batch = every.get(link.span_id)
        assert batch is not None and batch.name == batch_rpc and batch.kind == "SERVER"
        assert batch.trace_id != CLIENT_TRACE_ID
    assert Counter(c.attributes["tpf.outcome"] for c in completions) == {
        "step_completed": 2,
        "await_requested": 1,
        "pipeline_completed": 1,
    }

    # Each step run by the dispatcher: child of the submit, the worker call under it, the
    # worker's server span under that call. The server span is the step's span on the worker
    # (it names the execution and step): no `execute step` span is made under it.
    runs = _named(trace, "tpf-dispatcher", "run step")
    assert sorted(r.attributes["tpf.step_index"] for r in runs) == list(range(STEPS))
    for run in runs:
        assert (run.kind, run.parent_span_id) == ("CONSUMER", submit.span_id)
        (call,) = [c for c in _children(trace, run) if c.name == EXECUTE_RPC]
        assert (call.service, call.kind) == ("tpf-dispatcher", "CLIENT")
        (served,) = _children(trace, call)
        assert (served.service, served.kind, served.name) == ("tpf-worker", "SERVER", EXECUTE_RPC)
        assert served.attributes["tpf.execution_id"] == execution_id
        assert served.attributes["tpf.step_index"] == run.attributes["tpf.step_index"]
        assert _children(trace, served) == []

    # The REST completion has its own trace; the resumed await joins the submit's and links it.
    (resume,) = _named(trace, "tpf-coordinator", "resume execution")
    assert resume.parent_span_id == submit.span_id
    (link,) = resume.links
    assert link.trace_id == completion_trace_id != CLIENT_TRACE_ID
    completing = every[link.span_id]
    assert completing.name == "tpf.coordinator.v1.InteractionService/CompleteInteraction"
    completing_client = every[completing.parent_span_id]
    completing_http = every[completing_client.parent_span_id]
    assert (completing_http.service, completing_http.kind) == ("tpf-gateway", "SERVER")
    assert (
        completing_http.name == "POST /tpf/control-plane/tenants/{tenantId}/interactions/complete"
    )

    # Log lines carry the span they were written in.
    submitted = _log_line(traced_plane.coordinator.log_text(), "execution submitted")
    assert (submitted["trace_id"], submitted["span_id"]) == (CLIENT_TRACE_ID, submit.span_id)
    assert dispatcher.is_running and worker.is_running


def _log_line(log_text: str, message: str) -> dict[str, Any]:
    for line in log_text.splitlines():
        if line.startswith("{"):
            entry: dict[str, Any] = json.loads(line)
            if entry.get("message") == message:
                return entry
    raise AssertionError(f"no log line {message!r}")


async def _decide(gateway: Any, execution_id: str) -> Any:
    async def pending() -> dict[str, Any] | None:
        listed = (await gateway.get(f"{CP_BASE}/interactions/pending")).json()
        return next((p for p in listed if p["executionId"] == execution_id), None)

    interaction = await wait_until(pending, timeout_s=60, what=f"{execution_id} pending")
    decision = {
        "accepted": {
            "orderId": str(uuid.uuid4()),
            "decidedAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "note": "See you",
        }
    }
    done = await gateway.post(
        f"{CP_BASE}/interactions/complete",
        json_body={
            "interactionId": interaction["interactionId"],
            "responsePayload": dict(to_json_dict(encode(decision))),
            "idempotencyKey": f"decision-{execution_id}",
            "actor": "restaurant",
        },
    )
    assert done.status == 200, done.text
    return done


async def _until_succeeded(gateway: Any, execution_id: str) -> None:
    async def succeeded() -> bool:
        status = (await gateway.get(f"{CP_BASE}/executions/{execution_id}")).json()
        return bool(status["status"] == "SUCCEEDED")

    await wait_until(succeeded, timeout_s=60, what=f"{execution_id} SUCCEEDED")


async def test_an_sqs_submit_continues_the_senders_trace_through_the_bridge(
    otlp_receiver: OtlpReceiver,
    traced_plane: ControlPlane,
    start_service: StartService,
    moto_server: MotoServer,
    queues: Queues,
    sqs: Any,
) -> None:
    otel = otlp_receiver.environment()
    identity = await release_pipeline(traced_plane, EXAMPLE_SPEC)
    start_service(
        "tpf_dispatcher",
        dispatcher_env(
            traced_plane,
            dispatcher_id="traced-local",
            pipeline_ids=[identity.pipeline_id],
            hosted=[EXAMPLE_SPEC],
            **otel,
        ),
    )
    local_worker = "local-" + identity.release_version.removeprefix("sha256:")[:12]
    await wait_for_worker(traced_plane, identity, local_worker, "local")
    start_service(
        "tpf_sqs_bridge",
        {
            **moto_server.client_env,
            "TPF_COORDINATOR_TARGET": traced_plane.coordinator.target,
            "TPF_COORDINATOR_TOKEN": ADMIN,
            "TPF_SQS_SUBMIT_QUEUE_URL": queues.submit,
            "TPF_SQS_COMPLETION_QUEUE_URL": queues.completion,
            "TPF_SQS_RESPONSE_QUEUE_URL": queues.responses,
            "TPF_SQS_DEAD_LETTER_QUEUE_URL": queues.dead_letters,
            "TPF_SQS_WAIT_TIME_S": "1",
            **otel,
        },
    )
    trace_id, sender_span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    body = {**request_json("submit"), "tenantId": TENANT, "idempotencyKey": f"sqs-{trace_id}"}
    await sqs.send_message(
        QueueUrl=queues.submit,
        MessageBody=json.dumps(body),
        MessageAttributes={
            "traceparent": {
                "DataType": "String",
                "StringValue": f"00-{trace_id}-{sender_span_id}-01",
            }
        },
    )

    def first_step_ran() -> list[ReceivedSpan] | None:
        spans = otlp_receiver.in_trace(trace_id)
        runs = [
            run
            for run in _named(spans, "tpf-dispatcher", "run step")
            if run.attributes["tpf.step_index"] == 0
            and any(s.name == "execute step" for s in _children(spans, run))
        ]
        # Each process exports on its own schedule: the bridge's span, for one, ends after its
        # submit call returns, which can be after the step has run. Wait for every hop.
        hops = (
            _named(spans, "tpf-sqs-bridge", "submit process"),
            _named(spans, "tpf-sqs-bridge", SUBMIT_RPC),
            _named(spans, "tpf-coordinator", SUBMIT_RPC),
        )
        return spans if runs and all(hops) else None

    found = await wait_until(first_step_ran, timeout_s=60, what="the first step in the trace")
    assert found is not None
    (consumed,) = _named(found, "tpf-sqs-bridge", "submit process")
    assert (consumed.kind, consumed.parent_span_id) == ("CONSUMER", sender_span_id)
    (call,) = _named(found, "tpf-sqs-bridge", SUBMIT_RPC)
    assert (call.kind, call.parent_span_id) == ("CLIENT", consumed.span_id)
    (submit,) = _named(found, "tpf-coordinator", SUBMIT_RPC)
    assert submit.parent_span_id == call.span_id
    # A hosted pipeline: the SDK's span is the child of the dispatcher's step run.
    (run,) = [
        r
        for r in _named(found, "tpf-dispatcher", "run step")
        if r.attributes["tpf.step_index"] == 0
    ]
    assert run.parent_span_id == submit.span_id
    executed = [s for s in _children(found, run) if s.name == "execute step"]
    assert [s.service for s in executed] == ["tpf-dispatcher"]
