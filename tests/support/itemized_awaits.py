"""Parking an execution at an itemized await through the work protocol, as a worker reports one
(TPF_WIRE §9.2: one interaction per item), and answering its items.

Shared by the end-to-end and fault tests of itemized awaits. The await is step 2 of the
restaurant release the e2e suite registers, so the execution resumes at step 3.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass

from google.protobuf import struct_pb2

from tests.e2e.conftest import Suite
from tests.e2e.test_coordinator_executions import claim, complete, submit_request
from tests.support.coordinator_client import CoordinatorClient
from tpf.common.v1 import execution_status_pb2 as st
from tpf.common.v1 import payload_pb2
from tpf.coordinator.v1 import interaction_pb2, interaction_service_pb2_grpc
from tpf.coordinator.v1 import interaction_service_pb2 as ipb
from tpf.coordinator.v1 import work_service_pb2 as wpb
from tpf_envelope import INPUT_SNAPSHOT, encode
from tpf_envelope.identifiers import await_unit_id

AWAIT_STEP = "ProcessAwaitRestaurantDecisionService"
AWAIT_STEP_INDEX = 2
FAR_DEADLINE_MS = 2**41


@dataclass(frozen=True)
class ParkedItems:
    """An execution waiting on an itemized await; `interaction_ids[n]` is item n's."""

    execution_id: str
    interaction_ids: tuple[str, ...]


def answer(item: int, note: str = "") -> payload_pb2.PayloadEnvelope:
    """Item `item`'s answer: a java.util.Map, as TPF's demo posts one."""
    value = encode({"accepted": {"item": item, "note": note or f"answer-{item}"}})
    return payload_pb2.PayloadEnvelope(
        payload_type_id=value.payload_type_id,
        payload_encoding=value.payload_encoding,
        payload=value.payload,
    )


def interactions_stub(
    client: CoordinatorClient,
) -> interaction_service_pb2_grpc.InteractionServiceAsyncStub:
    return interaction_service_pb2_grpc.InteractionServiceStub(client.channel)


async def park_items(
    client: CoordinatorClient,
    suite: Suite,
    count: int,
    *,
    deadline_ms: int = FAR_DEADLINE_MS,
    rng: random.Random | None = None,
) -> ParkedItems:
    """Submit, claim, and report an await at step 2 with `count` item interactions, sent in a
    shuffled order (the coordinator orders items by item index, not by arrival)."""
    eid = (await client.executions.SubmitExecution(submit_request(suite))).execution_id
    [item] = await claim(client)
    assert item.execution_id == eid
    ids = tuple(str(uuid.uuid4()) for _ in range(count))
    specs = []
    for index, interaction_id in enumerate(ids):
        request_payload = struct_pb2.Value()
        request_payload.struct_value.update({"orderId": f"o-{index}", "item": index})
        specs.append(
            wpb.AwaitInteractionSpec(
                interaction=interaction_pb2.Interaction(
                    interaction_id=interaction_id,
                    correlation_id=str(uuid.uuid4()),
                    execution_id=eid,
                    step_id=AWAIT_STEP,
                    step_index=AWAIT_STEP_INDEX,
                    output_type="org.pipelineframework.restaurantapproval.common.dto.DecisionDto",
                    request_payload=request_payload,
                    transport_type="interaction-api",
                ),
                idempotency_key=f"{eid}:{AWAIT_STEP}:item={index}",
                item_index=index,
            )
        )
    (rng or random.Random(count)).shuffle(specs)
    unit_id = await_unit_id(suite.tenant, eid, AWAIT_STEP, AWAIT_STEP_INDEX)
    [result] = await complete(
        client,
        wpb.WorkOutcome(
            execution_id=eid,
            tenant_id=suite.tenant,
            fencing_token=item.fencing_token,
            await_requested=wpb.AwaitRequestedOutcome(
                await_step_index=AWAIT_STEP_INDEX,
                unit=interaction_pb2.AwaitUnit(
                    tenant_id=suite.tenant,
                    unit_id=unit_id,
                    execution_id=eid,
                    step_id=AWAIT_STEP,
                    step_index=AWAIT_STEP_INDEX,
                    cardinality="ONE_TO_ONE",
                    status=interaction_pb2.AWAIT_UNIT_STATUS_WAITING_EXTERNAL,
                    primary_interaction_id=ids[0],
                    expected_item_count=count,
                ),
                unit_id=unit_id,
                deadline_epoch_ms=deadline_ms,
                interactions=specs,
            ),
        ),
    )
    assert result.accepted, result.rejection_message
    assert result.status == st.EXECUTION_STATUS_WAITING_EXTERNAL and result.version == 2
    return ParkedItems(eid, ids)


async def answer_item(
    client: CoordinatorClient, suite: Suite, parked: ParkedItems, item: int, note: str = ""
) -> ipb.CompleteInteractionResponse:
    return await interactions_stub(client).CompleteInteraction(
        ipb.CompleteInteractionRequest(
            tenant_id=suite.tenant,
            interaction_id=parked.interaction_ids[item],
            response_payload=answer(item, note),
            actor=f"approver-{item}",
        )
    )


def snapshot_items(envelope: payload_pb2.PayloadEnvelope) -> list[payload_pb2.PayloadEnvelope]:
    """The items of a MULTI input snapshot, as the envelopes they embed."""
    assert envelope.payload_type_id == INPUT_SNAPSHOT
    body = json.loads(envelope.payload)
    assert body["shape"] == "MULTI" and body["payload"] is None
    return [
        payload_pb2.PayloadEnvelope(
            payload_type_id=item["payloadTypeId"],
            payload_encoding=item["payloadEncoding"],
            payload=item["payload"],
        )
        for item in body["items"]
    ]
