"""The restaurant-approval example (TPF_WIRE §11) end to end over each worker transport.

Registry, coordinator and dispatcher run as processes; the example runs in the dispatcher
(`local`) or in a `python -m tpf_worker serve` process (`grpc`, `rest` with HMAC, `sqs` on
moto_server) that registers itself and is then the release's only worker. Per transport, three
orders go through the await: one approved, one declined, and TPF's incident (a decision whose
`orderId` is not a UUID), which fails step 3 at once and is dead-lettered; the incident is then
redriven with a corrected decision and succeeds. Every history is exactly-once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.harness.services import StartService
from tests.support.coordinator_client import CoordinatorClient, coordinator_client
from tests.support.example_suite import (
    EXAMPLE_SPEC,
    ControlPlane,
    H,
    WorkerLauncher,
    assert_exactly_once,
    complete_interaction,
    control_plane,
    create_queues,
    dead_letters_of,
    dispatcher_env,
    event_names,
    generic_envelope,
    get_execution,
    history,
    json_envelope,
    pending_interaction,
    redrive,
    release_pipeline,
    request_json,
    result_value,
    sqs_dispatcher_env,
    submit,
    wait_for_status,
    wait_for_worker,
    worker_launcher,
)
from tests.support.restaurant import ORDER_TYPE, order
from tpf.common.v1 import execution_status_pb2 as st
from tpf.coordinator.v1 import dead_letter_pb2
from tpf_worker import WorkerIdentity

pytestmark = pytest.mark.e2e

__all__ = ["control_plane", "worker_launcher"]  # fixtures used by name

PIPELINE_ID = "org.pipelineframework.restaurantapproval"
DECISION_TYPE = "org.pipelineframework.restaurantapproval.common.dto.RestaurantDecisionDto"
CONVERSION_FAILURE = f"Failed converting await payload to {DECISION_TYPE}"
# One claim runs steps 0-2: each step's commit keeps the claim for the next (continue_claim).
HAPPY_PATH = [
    "SUBMITTED",
    "CLAIMED",
    "STEP_COMPLETED",
    "STEP_COMPLETED",
    "AWAIT_REQUESTED",
    "INTERACTION_COMPLETED",
    "CLAIMED",
    "SUCCEEDED",
]


async def serve_example(
    transport: str,
    plane: ControlPlane,
    identity: WorkerIdentity,
    start_service: StartService,
    launcher: WorkerLauncher,
    request: pytest.FixtureRequest,
) -> str:
    """Start the dispatcher and, for a remote transport, the example worker; the worker id."""
    pipelines = [identity.pipeline_id]
    dispatcher_id = f"dispatcher-{transport}"
    if transport == "local":
        start_service(
            "tpf_dispatcher",
            dispatcher_env(
                plane, dispatcher_id=dispatcher_id, pipeline_ids=pipelines, hosted=[EXAMPLE_SPEC]
            ),
        )
        worker_id = "local-" + identity.release_version.removeprefix("sha256:")[:12]
        await wait_for_worker(plane, identity, worker_id, "local")
        return worker_id
    extra: dict[str, str] = {}
    sqs = None
    if transport == "sqs":
        moto = request.getfixturevalue("moto_server")
        queues = await create_queues(moto, "example")
        sqs = (moto, queues)
        extra = sqs_dispatcher_env(moto, queues)
    worker = await asyncio.to_thread(
        launcher.start, transport, worker_id=f"restaurant-{transport}", sqs=sqs
    )
    await wait_for_worker(plane, identity, worker.worker_id, transport)
    # Nothing hosted here: the remote worker is the release's only worker.
    start_service(
        "tpf_dispatcher",
        dispatcher_env(plane, dispatcher_id=dispatcher_id, pipeline_ids=pipelines, **extra),
    )
    return worker.worker_id


async def park_at_await(client: CoordinatorClient, tenant: str, key: str) -> tuple[str, str]:
    """Submit an order and wait for its await; (execution id, interaction id)."""
    execution_id = await submit(
        client, tenant, PIPELINE_ID, json_envelope(ORDER_TYPE, order()), idempotency_key=key
    )
    parked = await wait_for_status(
        client, tenant, execution_id, st.EXECUTION_STATUS_WAITING_EXTERNAL
    )
    assert parked.step_index == 2
    interaction = await pending_interaction(client, tenant, execution_id)
    assert interaction.step_id == "ProcessAwaitRestaurantDecisionService"
    assert interaction.transport_type == "interaction-api"
    pending = interaction.request_payload.struct_value
    assert pending["customerName"] == "Ada" and pending["restaurantName"] == "Chez TPF"
    return execution_id, interaction.interaction_id


def assert_worker_actor(entries: list[Any], worker_id: str) -> None:
    # Every step outcome was reported on behalf of the one worker of the transport under test.
    outcomes = {
        e.actor
        for e in entries
        if e.event
        in (
            H.HISTORY_EVENT_STEP_COMPLETED,
            H.HISTORY_EVENT_AWAIT_REQUESTED,
            H.HISTORY_EVENT_SUCCEEDED,
        )
    }
    assert outcomes == {worker_id}, outcomes


@pytest.mark.parametrize("transport", ["local", "grpc", "rest", "sqs"])
async def test_restaurant_example_over_transport(
    transport: str,
    control_plane: ControlPlane,
    start_service: StartService,
    worker_launcher: WorkerLauncher,
    request: pytest.FixtureRequest,
) -> None:
    plane = control_plane
    tenant = plane.tenant
    identity = await release_pipeline(plane, EXAMPLE_SPEC)
    worker_id = await serve_example(
        transport, plane, identity, start_service, worker_launcher, request
    )
    approve, decline, incident = (
        request_json("approve"),
        request_json("decline"),
        request_json("incident"),
    )
    async with coordinator_client(plane.coordinator.target) as client:
        parked = await asyncio.gather(
            *(park_at_await(client, tenant, f"{transport}-{n}") for n in range(3))
        )
        (approved_id, approved_i), (declined_id, declined_i), (incident_id, incident_i) = parked
        for interaction_id, decision in (
            (approved_i, approve),
            (declined_i, decline),
            (incident_i, incident),
        ):
            # As TPF's demo client completes: a java.util.Map envelope of nested envelopes.
            answer = await complete_interaction(
                client, tenant, interaction_id, generic_envelope(decision)
            )
            assert not answer.duplicate

        # Approve: APPROVED, the note as summary.
        await wait_for_status(client, tenant, approved_id, st.EXECUTION_STATUS_SUCCEEDED)
        approved = await result_value(client, tenant, approved_id)
        assert approved == {
            "id": approved["id"],
            "orderId": approve["accepted"]["orderId"],
            "outcome": "APPROVED",
            "resolvedAt": "2026-11-25T18:00:00Z",
            "restaurantStatus": "ACCEPTED",
            "summary": "See you at eight.",
        }

        # Decline: DECLINED, summary `note (declineReason)`.
        await wait_for_status(client, tenant, declined_id, st.EXECUTION_STATUS_SUCCEEDED)
        declined = await result_value(client, tenant, declined_id)
        assert declined["outcome"] == "DECLINED"
        assert declined["restaurantStatus"] == "DECLINED"
        assert declined["summary"] == "Need more prep time (Kitchen is overloaded tonight)"
        assert declined["orderId"] == decline["declined"]["orderId"]

        for execution_id in (approved_id, declined_id):
            entries = await history(client, tenant, execution_id)
            assert event_names(entries) == HAPPY_PATH
            assert [e.version for e in entries] == list(range(len(HAPPY_PATH)))
            assert_exactly_once(entries)
            assert_worker_actor(entries, worker_id)

        # Incident: the decision does not convert; step 3 fails at once, no retry.
        failed = await wait_for_status(client, tenant, incident_id, st.EXECUTION_STATUS_FAILED)
        assert failed.step_index == 3
        assert failed.attempt == 0
        # A permanent input error travels as TPF's NonRetryableException (TPF_WIRE §9.7).
        assert failed.error_code == "NonRetryableException"
        assert failed.error_message == CONVERSION_FAILURE
        assert failed.terminal_reason == "non_retryable"
        failed_history = await history(client, tenant, incident_id)
        assert event_names(failed_history) == [*HAPPY_PATH[:-1], "FAILED"]
        [letter] = await dead_letters_of(client, tenant, incident_id)
        assert letter.terminal_reason == dead_letter_pb2.TERMINAL_REASON_NON_RETRYABLE
        assert not letter.retryable
        assert letter.error_code == failed.error_code
        assert letter.error_message == CONVERSION_FAILURE

        # Redrive with the decision fixed (and a blank note: TPF's default summary).
        fixed = {"accepted": {**incident["accepted"], "orderId": approve["accepted"]["orderId"]}}
        fixed["accepted"]["note"] = "   "
        redriven = await redrive(
            client,
            tenant,
            incident_id,
            expected_version=failed.version,
            replacement_input=generic_envelope(fixed),
        )
        assert redriven.previous_status == st.EXECUTION_STATUS_FAILED
        assert redriven.status == st.EXECUTION_STATUS_QUEUED
        assert (redriven.version, redriven.attempt) == (failed.version + 1, 1)
        assert redriven.current_step_index == 3
        await wait_for_status(client, tenant, incident_id, st.EXECUTION_STATUS_SUCCEEDED)
        recovered = await result_value(client, tenant, incident_id)
        assert recovered["outcome"] == "APPROVED"
        assert recovered["summary"] == "Restaurant approved the order."
        assert recovered["orderId"] == approve["accepted"]["orderId"]
        entries = await history(client, tenant, incident_id)
        assert event_names(entries) == [
            *HAPPY_PATH[:-1],
            "FAILED",
            "REDRIVEN",
            "CLAIMED",
            "SUCCEEDED",
        ]
        assert_exactly_once(entries)
        assert_worker_actor(entries, worker_id)
        assert "fixed the restaurant decision" in entries[-3].reason
        # The dead letter is closed by the redrive: no longer open, still listed as redriven.
        assert await dead_letters_of(client, tenant, incident_id) == []
        assert len(await dead_letters_of(client, tenant, incident_id, include_redriven=True)) == 1
        assert (await get_execution(client, tenant, incident_id)).error_code == ""
