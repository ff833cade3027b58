"""A pipeline whose last step is an await: the interaction's answer is the result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import Suite
from tests.e2e.test_coordinator_executions import claim, complete, get
from tests.e2e.test_coordinator_interactions import decision, interactions_of
from tests.support.coordinator_client import coordinator_client
from tests.support.registry_client import declare_local_host, registry_client
from tests.support.release_artifacts import RESTAURANT_STEPS, sha256_digest, tpf_contract, write_jar
from tests.support.restaurant import order_envelope
from tpf.common.v1 import execution_status_pb2 as st
from tpf.coordinator.v1 import execution_pb2, interaction_pb2
from tpf.coordinator.v1 import execution_service_pb2 as epb
from tpf.coordinator.v1 import interaction_service_pb2 as ipb
from tpf.coordinator.v1 import work_service_pb2 as wpb
from tpf.registry.v1 import release_service_pb2 as rpb
from tpf.registry.v1 import worker_service_pb2 as wkpb

pytestmark = pytest.mark.e2e

PIPELINE = "org.pipelineframework.approvalonly"


async def test_an_answer_to_a_final_await_completes_the_execution(
    suite: Suite, tmp_path: Path
) -> None:
    steps = [dict(RESTAURANT_STEPS[0]), dict(RESTAURANT_STEPS[2], index=1)]
    contract = tpf_contract(pipeline_id=PIPELINE, steps=steps)
    jar = write_jar(tmp_path / "approval.jar", contract)
    descriptor = {
        "schemaVersion": 1,
        "pipelineId": PIPELINE,
        "contractVersion": contract["contractVersion"],
        "releaseVersion": "v1",
        "artifacts": [
            {"artifactId": "approval", "kind": "jar", "uri": str(jar), "digest": sha256_digest(jar)}
        ],
    }
    async with registry_client(suite.registry.target) as registry:
        await registry.releases.RegisterRelease(
            rpb.RegisterReleaseRequest(
                tenant_id=suite.tenant,
                pipeline_id=PIPELINE,
                release_descriptor_json=json.dumps(descriptor),
            )
        )
        await registry.releases.ActivateRelease(
            rpb.ActivateReleaseRequest(
                tenant_id=suite.tenant, pipeline_id=PIPELINE, release_version="v1"
            )
        )
        await registry.workers.RegisterWorker(
            wkpb.RegisterWorkerRequest(
                tenant_id=suite.tenant,
                pipeline_id=PIPELINE,
                worker_id="w",
                contract_version=contract["contractVersion"],
                release_version="v1",
                protocol="local",
            )
        )
        await declare_local_host(
            registry, pipeline_id=PIPELINE, contract_version=contract["contractVersion"]
        )
    async with coordinator_client(suite.coordinator.target) as client:
        eid = (
            await client.executions.SubmitExecution(
                epb.SubmitExecutionRequest(
                    tenant_id=suite.tenant,
                    pipeline_id=PIPELINE,
                    input_shape=execution_pb2.INPUT_SHAPE_UNI,
                    input_payload=order_envelope(),
                )
            )
        ).execution_id
        [item] = await claim(client)
        [parked] = await complete(
            client,
            wpb.WorkOutcome(
                execution_id=eid,
                tenant_id=suite.tenant,
                fencing_token=item.fencing_token,
                await_requested=wpb.AwaitRequestedOutcome(
                    await_step_index=1,
                    unit_id="unit-final",
                    deadline_epoch_ms=2**41,
                    interactions=[
                        wpb.AwaitInteractionSpec(
                            interaction=interaction_pb2.Interaction(
                                interaction_id="final-1",
                                correlation_id="final-c",
                                step_id="ProcessAwaitRestaurantDecisionService",
                            ),
                            idempotency_key="final",
                        )
                    ],
                ),
            ),
        )
        assert parked.status == st.EXECUTION_STATUS_WAITING_EXTERNAL
        answer = decision("approved at the end")
        await interactions_of(client).CompleteInteraction(
            ipb.CompleteInteractionRequest(
                tenant_id=suite.tenant, interaction_id="final-1", response_payload=answer
            )
        )
        # No step is left: the claim that picks the execution up finishes it instead.
        assert await claim(client) == []
        execution = (await get(client, suite, eid)).execution
        assert execution.status == st.EXECUTION_STATUS_SUCCEEDED
        result = await client.executions.GetExecutionResult(
            epb.GetExecutionResultRequest(tenant_id=suite.tenant, execution_id=eid)
        )
        assert result.result_payload.payload == answer.payload
