"""InteractionService through real registry and coordinator processes: the pending list and
completions by interaction id, correlation id and resume token (DESIGN §6, TPF_WIRE §3.4-§5.4)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.e2e.conftest import Suite
from tests.e2e.test_coordinator_executions import claim, complete, get, history, submit_request
from tests.harness.wait import wait_until
from tests.support.coordinator_client import CoordinatorClient, coordinator_client
from tests.support.grpc_errors import expect_error
from tests.support.registry_client import CONTROL_PLANE_A, WORKER_A
from tests.support.restaurant import envelope
from tpf.common.v1 import execution_status_pb2 as st
from tpf.common.v1 import payload_pb2
from tpf.coordinator.v1 import execution_pb2, interaction_pb2, interaction_service_pb2_grpc
from tpf.coordinator.v1 import execution_service_pb2 as epb
from tpf.coordinator.v1 import interaction_service_pb2 as ipb
from tpf.coordinator.v1 import work_service_pb2 as wpb
from tpf_coordinator.domain import resume_tokens
from tpf_devserver.reflect import list_services
from tpf_envelope import encode
from tpf_envelope.identifiers import await_unit_id

pytestmark = pytest.mark.e2e

AWAIT_STEP = "ProcessAwaitRestaurantDecisionService"
AWAIT_STEP_INDEX = 2
SECRET = "resume-token-test-secret"
FAR_DEADLINE_MS = 2**41


@dataclass(frozen=True)
class Parked:
    execution_id: str
    interaction_id: str
    correlation_id: str
    deadline_ms: int


def interactions_of(
    client: CoordinatorClient,
) -> interaction_service_pb2_grpc.InteractionServiceAsyncStub:
    return interaction_service_pb2_grpc.InteractionServiceStub(client.channel)


def decision(note: str = "fine") -> payload_pb2.PayloadEnvelope:
    """A well-formed answer, as TPF's demo posts it: a java.util.Map of nested envelopes."""
    value = encode({"accepted": {"orderId": "o-1", "note": note}})
    return payload_pb2.PayloadEnvelope(
        payload_type_id=value.payload_type_id,
        payload_encoding=value.payload_encoding,
        payload=value.payload,
    )


async def park(
    client: CoordinatorClient,
    suite: Suite,
    *,
    deadline_ms: int = FAR_DEADLINE_MS,
    assignee: str | None = None,
    group: str | None = None,
    order_id: str = "o-9",
) -> Parked:
    """Submit, claim, and report an await at step 2 with one interaction (as a worker does)."""
    eid = (await client.executions.SubmitExecution(submit_request(suite))).execution_id
    [item] = await claim(client)
    assert item.execution_id == eid
    request_payload = struct_pb2.Value()
    request_payload.struct_value.update({"orderId": order_id, "totalAmount": 27.5})
    metadata = struct_pb2.Struct()
    metadata.update({"adapter": "interaction-api"})
    interaction = interaction_pb2.Interaction(
        interaction_id=str(uuid.uuid4()),
        correlation_id=str(uuid.uuid4()),
        step_id=AWAIT_STEP,
        step_index=AWAIT_STEP_INDEX,
        output_type="org.pipelineframework.restaurantapproval.common.dto.DecisionDto",
        request_payload=request_payload,
        transport_type="interaction-api",
        transport_metadata=metadata,
    )
    if assignee is not None:
        interaction.assignee = assignee
    if group is not None:
        interaction.group = group
    [result] = await complete(
        client,
        wpb.WorkOutcome(
            execution_id=eid,
            tenant_id=suite.tenant,
            fencing_token=item.fencing_token,
            await_requested=wpb.AwaitRequestedOutcome(
                await_step_index=AWAIT_STEP_INDEX,
                unit_id=await_unit_id(suite.tenant, eid, AWAIT_STEP, AWAIT_STEP_INDEX),
                deadline_epoch_ms=deadline_ms,
                interactions=[
                    wpb.AwaitInteractionSpec(
                        interaction=interaction,
                        idempotency_key=f"{AWAIT_STEP}:orderId={order_id}",
                    )
                ],
            ),
        ),
    )
    assert result.accepted and result.status == st.EXECUTION_STATUS_WAITING_EXTERNAL
    assert result.version == 2
    return Parked(eid, interaction.interaction_id, interaction.correlation_id, deadline_ms)


def token_for(suite: Suite, parked: Parked, *, secret: str = SECRET, **overrides: Any) -> str:
    claims: dict[str, Any] = {
        "tenant_id": suite.tenant,
        "interaction_id": parked.interaction_id,
        "correlation_id": parked.correlation_id,
        "execution_id": parked.execution_id,
        "step_id": AWAIT_STEP,
        "deadline_epoch_ms": parked.deadline_ms,
        "issued_at_epoch_ms": int(time.time() * 1000),
    }
    claims.update(overrides)
    return resume_tokens.issue(secret.encode(), **claims)


def completion(suite: Suite, **fields: Any) -> ipb.CompleteInteractionRequest:
    fields.setdefault("response_payload", decision())
    return ipb.CompleteInteractionRequest(tenant_id=suite.tenant, **fields)


async def pending(client: CoordinatorClient, suite: Suite, **fields: Any) -> Any:
    return await interactions_of(client).ListPendingInteractions(
        ipb.ListPendingInteractionsRequest(tenant_id=suite.tenant, **fields)
    )


@asynccontextmanager
async def coordinator_with_secret(
    start_service: Any, suite: Suite, **env: str
) -> AsyncIterator[CoordinatorClient]:
    """A second coordinator on the suite's database that knows the resume token secret."""
    process = await asyncio.to_thread(
        start_service,
        "tpf_coordinator",
        {**suite.coordinator_env, "TPF_RESUME_TOKEN_SECRET": SECRET, **env},
    )
    try:
        async with coordinator_client(process.target) as client:
            yield client
    finally:
        await asyncio.to_thread(process.stop)


async def test_both_services_are_listed_by_reflection_and_health(suite: Suite) -> None:
    names = {"tpf.coordinator.v1.InteractionService", "tpf.coordinator.v1.DeadLetterService"}
    assert names <= set(await asyncio.to_thread(list_services, suite.coordinator.target))
    async with grpc.aio.insecure_channel(suite.coordinator.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in names:
            answer = await health.Check(health_pb2.HealthCheckRequest(service=name))
            assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_pending_list_filters_orders_and_pages(suite: Suite) -> None:
    async with coordinator_client(suite.coordinator.target) as client:
        late = await park(
            client, suite, deadline_ms=FAR_DEADLINE_MS + 3, assignee="alice", group="kitchen"
        )
        early = await park(client, suite, deadline_ms=FAR_DEADLINE_MS + 1, assignee="bob")
        middle = await park(client, suite, deadline_ms=FAR_DEADLINE_MS + 2)
        everything = await pending(client, suite)
        assert [i.interaction_id for i in everything.interactions] == [
            early.interaction_id,
            middle.interaction_id,
            late.interaction_id,
        ]
        assert everything.next_page_token == ""
        first = everything.interactions[2]
        assert first.execution_id == late.execution_id
        assert first.correlation_id == late.correlation_id
        assert first.status == interaction_pb2.INTERACTION_STATUS_DISPATCHED
        assert (first.step_id, first.step_index) == (AWAIT_STEP, AWAIT_STEP_INDEX)
        assert first.deadline_epoch_ms == late.deadline_ms
        assert (first.assignee, first.group) == ("alice", "kitchen")
        assert not everything.interactions[1].HasField("assignee")
        # The await step's input as bare JSON, not an envelope (TPF's demo reads .orderId).
        as_json = json_format.MessageToDict(first)
        assert as_json["requestPayload"] == {"orderId": "o-9", "totalAmount": 27.5}
        assert as_json["transportMetadata"] == {"adapter": "interaction-api"}

        by_assignee = await pending(client, suite, assignee=" alice ")
        assert [i.interaction_id for i in by_assignee.interactions] == [late.interaction_id]
        by_group = await pending(client, suite, group="kitchen", assignee="alice")
        assert [i.interaction_id for i in by_group.interactions] == [late.interaction_id]
        assert len((await pending(client, suite, step_id=AWAIT_STEP)).interactions) == 3
        assert list((await pending(client, suite, step_id="OtherStep")).interactions) == []

        page = await pending(client, suite, page_size=2)
        assert [i.interaction_id for i in page.interactions] == [
            early.interaction_id,
            middle.interaction_id,
        ]
        rest = await pending(client, suite, page_size=2, page_token=page.next_page_token)
        assert [i.interaction_id for i in rest.interactions] == [late.interaction_id]
        assert rest.next_page_token == ""
        # TPF's `limit`, clamped to 1..1000 (0 means 1, never an error).
        capped = await pending(client, suite, limit=0)
        assert [i.interaction_id for i in capped.interactions] == [early.interaction_id]
        await expect_error(
            pending(client, suite, page_size=2, page_token=page.next_page_token, group="x"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "PAGE_TOKEN_INVALID",
        )
        await expect_error(
            pending(client, suite, page_token="not-a-token"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "PAGE_TOKEN_INVALID",
        )
        await expect_error(
            pending(client, suite, page_size=-1),
            grpc.StatusCode.INVALID_ARGUMENT,
            "FIELD_OUT_OF_RANGE",
        )
    async with coordinator_client(suite.coordinator.target, token=WORKER_A) as worker:
        await expect_error(
            pending(worker, suite), grpc.StatusCode.PERMISSION_DENIED, "ROLE_REQUIRED"
        )
    async with coordinator_client(suite.coordinator.target, token=CONTROL_PLANE_A) as other:
        await expect_error(
            pending(other, suite), grpc.StatusCode.PERMISSION_DENIED, "TENANT_NOT_IN_SCOPE"
        )
        listed = await interactions_of(other).ListPendingInteractions(
            ipb.ListPendingInteractionsRequest(tenant_id="tenant-a")
        )
        assert list(listed.interactions) == []


async def test_first_completion_queues_the_next_step_and_a_repeat_is_a_duplicate(
    suite: Suite,
) -> None:
    async with coordinator_client(suite.coordinator.target) as client:
        parked = await park(client, suite)
        answer = decision("first")
        done = await interactions_of(client).CompleteInteraction(
            completion(
                suite,
                interaction_id=f" {parked.interaction_id} ",
                response_payload=answer,
                actor="chef",
                idempotency_key="decision-1",
            )
        )
        assert (done.interaction_id, done.execution_id, done.step_id) == (
            parked.interaction_id,
            parked.execution_id,
            AWAIT_STEP,
        )
        assert done.status == interaction_pb2.INTERACTION_STATUS_COMPLETED
        assert not done.duplicate
        status = (await get(client, suite, parked.execution_id)).status
        assert status.status == st.EXECUTION_STATUS_QUEUED
        assert (status.step_index, status.version) == (AWAIT_STEP_INDEX + 1, 3)
        last = (await history(client, suite, parked.execution_id))[-1]
        assert last.event == execution_pb2.HISTORY_EVENT_INTERACTION_COMPLETED
        assert (last.version, last.actor) == (3, "chef")
        assert list((await pending(client, suite)).interactions) == []

        again = await interactions_of(client).CompleteInteraction(
            completion(suite, interaction_id=parked.interaction_id, response_payload=decision("2"))
        )
        assert again.duplicate and again.status == interaction_pb2.INTERACTION_STATUS_COMPLETED
        assert (await get(client, suite, parked.execution_id)).status.version == 3
        assert len(await history(client, suite, parked.execution_id)) == 4

        # The answer as sent is the input of the step after the await.
        [item] = await claim(client)
        assert (item.execution_id, item.step_index) == (parked.execution_id, AWAIT_STEP_INDEX + 1)
        assert item.input_payload == answer


async def test_completion_by_correlation_id(suite: Suite) -> None:
    async with coordinator_client(suite.coordinator.target) as client:
        parked = await park(client, suite)
        done = await interactions_of(client).CompleteInteraction(
            completion(suite, correlation_id=parked.correlation_id)
        )
        assert done.interaction_id == parked.interaction_id and not done.duplicate
        status = (await get(client, suite, parked.execution_id)).status
        assert status.status == st.EXECUTION_STATUS_QUEUED and status.version == 3


async def test_completion_by_resume_token_verifies_it(suite: Suite, start_service: Any) -> None:
    async with coordinator_client(suite.coordinator.target) as client:
        parked = await park(client, suite)
        other = await park(client, suite, order_id="o-10")
        token = token_for(suite, parked)
        # The suite's coordinator has no secret: it says so instead of failing internally.
        refused = await expect_error(
            interactions_of(client).CompleteInteraction(completion(suite, resume_token=token)),
            grpc.StatusCode.FAILED_PRECONDITION,
            "RESUME_TOKEN_SECRET_MISSING",
        )
        assert refused.metadata["setting"] == "TPF_RESUME_TOKEN_SECRET"
    async with coordinator_with_secret(start_service, suite) as client:
        payload, signature = token.split(".")
        tampered = [
            f"{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}",
            token_for(suite, parked, secret="another-secret"),
            token_for(suite, parked, deadline_epoch_ms=parked.deadline_ms + 1),
            token_for(suite, parked, execution_id=other.execution_id),
            "not-a-token",
        ]
        for bad in tampered:
            await expect_error(
                interactions_of(client).CompleteInteraction(completion(suite, resume_token=bad)),
                grpc.StatusCode.INVALID_ARGUMENT,
                "RESUME_TOKEN_INVALID",
            )
        # A token is verified even when another handle finds the interaction.
        await expect_error(
            interactions_of(client).CompleteInteraction(
                completion(suite, interaction_id=parked.interaction_id, resume_token=tampered[0])
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "RESUME_TOKEN_INVALID",
        )
        assert (await get(client, suite, parked.execution_id)).status.version == 2

        done = await interactions_of(client).CompleteInteraction(
            completion(suite, resume_token=token)
        )
        assert done.interaction_id == parked.interaction_id and not done.duplicate
        assert (await get(client, suite, parked.execution_id)).status.version == 3
        again = await interactions_of(client).CompleteInteraction(
            completion(suite, resume_token=token)
        )
        assert again.duplicate


async def test_completions_that_cannot_apply_change_nothing(suite: Suite) -> None:
    async with coordinator_client(suite.coordinator.target) as client:
        stub = interactions_of(client)
        parked = await park(client, suite)
        await expect_error(
            stub.CompleteInteraction(
                completion(
                    suite,
                    interaction_id=parked.interaction_id,
                    response_payload=envelope("java.util.Map", {"not": "an envelope map"}),
                )
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "PAYLOAD_UNDECODABLE",
        )
        await expect_error(
            stub.CompleteInteraction(completion(suite)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "FIELD_REQUIRED",
        )
        await expect_error(
            stub.CompleteInteraction(
                ipb.CompleteInteractionRequest(
                    tenant_id=suite.tenant, interaction_id=parked.interaction_id
                )
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "FIELD_REQUIRED",
        )
        await expect_error(
            stub.CompleteInteraction(completion(suite, interaction_id="no-such-interaction")),
            grpc.StatusCode.NOT_FOUND,
            "INTERACTION_NOT_FOUND",
        )
        await expect_error(
            stub.CompleteInteraction(completion(suite, correlation_id="no-such-correlation")),
            grpc.StatusCode.NOT_FOUND,
            "INTERACTION_NOT_FOUND",
        )
        # Lookups are tenant-scoped: another tenant's interaction does not exist.
        await expect_error(
            stub.CompleteInteraction(
                ipb.CompleteInteractionRequest(
                    tenant_id="tenant-b",
                    interaction_id=parked.interaction_id,
                    response_payload=decision(),
                )
            ),
            grpc.StatusCode.NOT_FOUND,
            "INTERACTION_NOT_FOUND",
        )
        status = (await get(client, suite, parked.execution_id)).status
        assert status.status == st.EXECUTION_STATUS_WAITING_EXTERNAL and status.version == 2
        assert [i.interaction_id for i in (await pending(client, suite)).interactions] == [
            parked.interaction_id
        ]

        await client.executions.CancelExecution(
            epb.CancelExecutionRequest(tenant_id=suite.tenant, execution_id=parked.execution_id)
        )
        terminal = await expect_error(
            stub.CompleteInteraction(completion(suite, interaction_id=parked.interaction_id)),
            grpc.StatusCode.FAILED_PRECONDITION,
            "INTERACTION_TERMINAL",
        )
        assert terminal.metadata["status"] == "CANCELLED"
        status = (await get(client, suite, parked.execution_id)).status
        assert status.status == st.EXECUTION_STATUS_CANCELLED
    async with coordinator_client(suite.coordinator.target, token=WORKER_A) as worker:
        await expect_error(
            interactions_of(worker).CompleteInteraction(
                completion(suite, interaction_id=parked.interaction_id)
            ),
            grpc.StatusCode.PERMISSION_DENIED,
            "ROLE_REQUIRED",
        )


async def test_a_completion_after_the_deadline_is_refused_and_the_sweeper_fails_the_execution(
    suite: Suite, start_service: Any
) -> None:
    # Only a coordinator whose sweeper waits an hour runs while the deadline passes, so the
    # completion meets an overdue interaction the sweeper has not timed out yet.
    await asyncio.to_thread(suite.coordinator.terminate)
    async with coordinator_with_secret(
        start_service, suite, TPF_SWEEP_INTERVAL_MS="3600000"
    ) as client:
        parked = await park(client, suite, deadline_ms=int(time.time() * 1000) + 1500)
        token = token_for(suite, parked)
        await wait_until(
            lambda: time.time() * 1000 > parked.deadline_ms + 10, what="the deadline to pass"
        )
        expired = await expect_error(
            interactions_of(client).CompleteInteraction(
                completion(suite, interaction_id=parked.interaction_id)
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
            "INTERACTION_EXPIRED",
        )
        assert expired.metadata["interactionId"] == parked.interaction_id
        await expect_error(
            interactions_of(client).CompleteInteraction(completion(suite, resume_token=token)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "RESUME_TOKEN_INVALID",
        )
        status = (await get(client, suite, parked.execution_id)).status
        assert status.status == st.EXECUTION_STATUS_WAITING_EXTERNAL and status.version == 2
    # The suite's coordinator sweeps every 100 ms: the execution is not left waiting.
    await asyncio.to_thread(suite.coordinator.start)
    async with coordinator_client(suite.coordinator.target) as client:

        async def timed_out() -> Any:
            status = (await get(client, suite, parked.execution_id)).status
            return status if status.status == st.EXECUTION_STATUS_FAILED else None

        status = await wait_until(timed_out, what="the sweeper to time out the await")
        assert status.error_code == "AWAIT_TIMEOUT"
        assert status.error_message == f"Await interaction timed out: {parked.interaction_id}"
        terminal = await expect_error(
            interactions_of(client).CompleteInteraction(
                completion(suite, interaction_id=parked.interaction_id)
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
            "INTERACTION_TERMINAL",
        )
        assert terminal.metadata["status"] == "TIMED_OUT"
