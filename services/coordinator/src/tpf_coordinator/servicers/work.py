"""tpf.coordinator.v1.WorkService: the protocol dispatchers use."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import json_format, timestamp_pb2

from tpf.common.v1 import error_reason_pb2
from tpf.coordinator.v1 import work_service_pb2 as pb
from tpf.coordinator.v1 import work_service_pb2_grpc
from tpf_coordinator.domain.interactions import item_order
from tpf_coordinator.request_ids import RequestIds
from tpf_coordinator.servicers.access import WORKER_ROLES, scoped_tenants
from tpf_coordinator.servicers.convert import (
    STATUS_TO_PROTO,
    envelope_from_proto,
    error_reason_value,
    work_item,
)
from tpf_coordinator.store.protocol import ClaimFilter, NewAwait, NewInteraction
from tpf_coordinator.work import WorkCoordinator
from tpf_coordinator.work_outcomes import (
    AwaitAsked,
    Completion,
    CompletionResult,
    Failed,
    Outcome,
    PipelineDone,
    StepDone,
)
from tpf_errors import InvalidArgument
from tpf_rpc.auth import current_principal
from tpf_rpc.validation import MAX_KEY_CHARS, check_batch_size, required

Context = grpc.aio.ServicerContext[Any, Any]
MAX_BATCH = 1000


def _max_items(value: int) -> int:
    """ClaimWork's max_items: 0 means 1, above MAX_BATCH is coerced down, negative is refused."""
    if value < 0:
        raise InvalidArgument(
            "FIELD_OUT_OF_RANGE", "maxItems must not be negative", field="maxItems", value=value
        )
    return min(value, MAX_BATCH) or 1


def _await_of(message: pb.AwaitRequestedOutcome) -> AwaitAsked:
    unit_id = required(message.unit_id, "awaitRequested.unitId")
    if not message.interactions:
        raise InvalidArgument(
            "FIELD_REQUIRED",
            "awaitRequested.interactions needs at least one interaction",
            field="awaitRequested.interactions",
        )
    interactions = []
    step_id = ""
    for spec in message.interactions:
        interaction = spec.interaction
        step_id = step_id or interaction.step_id
        interactions.append(
            NewInteraction(
                interaction_id=required(
                    interaction.interaction_id, "awaitRequested.interactions.interactionId"
                ),
                correlation_id=required(
                    interaction.correlation_id,
                    "awaitRequested.interactions.correlationId",
                    max_chars=MAX_KEY_CHARS,
                ),
                idempotency_key=required(
                    spec.idempotency_key,
                    "awaitRequested.interactions.idempotencyKey",
                    max_chars=MAX_KEY_CHARS,
                ),
                causation_id=spec.causation_id,
                item_index=spec.item_index if spec.HasField("item_index") else None,
                output_type=interaction.output_type,
                request_payload=json_format.MessageToDict(interaction.request_payload)
                if interaction.HasField("request_payload")
                else None,
                assignee=interaction.assignee if interaction.HasField("assignee") else None,
                group=interaction.group if interaction.HasField("group") else None,
                transport_type=interaction.transport_type or "interaction-api",
                transport_metadata=json_format.MessageToDict(interaction.transport_metadata),
            )
        )
    if message.deadline_epoch_ms <= 0:
        raise InvalidArgument(
            "FIELD_REQUIRED",
            "awaitRequested.deadlineEpochMs is required",
            field="awaitRequested.deadlineEpochMs",
        )
    unit = message.unit if message.HasField("unit") else None
    order = item_order(
        [i.item_index for i in interactions],
        expected_item_count=(
            unit.expected_item_count
            if unit is not None and unit.HasField("expected_item_count")
            else None
        ),
    )
    return AwaitAsked(
        await_step_index=message.await_step_index,
        new_await=NewAwait(
            unit_id=unit_id,
            step_id=step_id,
            step_index=message.await_step_index,
            cardinality=(unit.cardinality if unit is not None else "") or "ONE_TO_ONE",
            deadline_ms=message.deadline_epoch_ms,
            interactions=tuple(interactions[position] for position in order),
        ),
    )


def outcome_of(message: pb.WorkOutcome) -> Outcome:
    kind = message.WhichOneof("outcome")
    if kind == "step_completed":
        done = message.step_completed
        return StepDone(
            next_step_index=done.next_step_index,
            outputs=tuple(envelope_from_proto(e) for e in done.output_payloads),
            continue_claim=done.continue_claim,
        )
    if kind == "pipeline_completed":
        return PipelineDone(
            outputs=tuple(
                envelope_from_proto(e) for e in message.pipeline_completed.output_payloads
            )
        )
    if kind == "await_requested":
        return _await_of(message.await_requested)
    if kind == "failed":
        failed = message.failed
        return Failed(
            failure_class=required(
                failed.failure_class, "failed.failureClass", max_chars=MAX_KEY_CHARS
            ),
            message=failed.message,
            retryable=failed.retryable,
            permanent_input_error=failed.permanent_input_error,
            error_code=failed.error_code if failed.HasField("error_code") else None,
        )
    raise InvalidArgument(
        "FIELD_REQUIRED",
        "outcome is required (stepCompleted, pipelineCompleted, awaitRequested or failed)",
        field="outcome",
    )


class WorkServicer(work_service_pb2_grpc.WorkServiceServicer):
    def __init__(self, work: WorkCoordinator, request_ids: RequestIds) -> None:
        self._work = work
        self._request_ids = request_ids

    async def ClaimWork(
        self, request: pb.ClaimWorkRequest, context: Context
    ) -> pb.ClaimWorkResponse:
        principal = current_principal()
        principal.require_any_role(WORKER_ROLES)
        return await self._request_ids.once(
            scope=f"ClaimWork/{principal.subject}/{request.dispatcher_id}",
            request_id=request.request_id,
            request=request,
            response_type=pb.ClaimWorkResponse,
            call=lambda: self._claim(request),
        )

    async def _claim(self, request: pb.ClaimWorkRequest) -> pb.ClaimWorkResponse:
        principal = current_principal()
        dispatcher_id = required(request.dispatcher_id, "dispatcherId")
        max_items = _max_items(request.max_items)
        wait_ms = request.wait.ToMilliseconds() if request.HasField("wait") else 0
        lease_ms = (
            request.lease_duration.ToMilliseconds() if request.HasField("lease_duration") else 0
        )
        if wait_ms < 0 or lease_ms < 0:
            raise InvalidArgument(
                "FIELD_OUT_OF_RANGE", "wait and leaseDuration must not be negative", field="wait"
            )
        claimed = await self._work.claim(
            dispatcher_id=dispatcher_id,
            max_items=max_items,
            wait_ms=wait_ms,
            lease_ms=self._work.lease_ms(lease_ms),
            filters=ClaimFilter(
                tenant_ids=scoped_tenants(principal, tuple(request.tenant_ids)),
                pipeline_ids=tuple(request.pipeline_ids),
                release_versions=tuple(request.release_versions),
            ),
        )
        return pb.ClaimWorkResponse(work_items=[work_item(c) for c in claimed])

    async def RenewLeases(
        self, request: pb.RenewLeasesRequest, context: Context
    ) -> pb.RenewLeasesResponse:
        principal = current_principal()
        principal.require_any_role(WORKER_ROLES)
        dispatcher_id = required(request.dispatcher_id, "dispatcherId")
        check_batch_size(len(request.leases), "leases", maximum=MAX_BATCH)
        for lease in request.leases:
            principal.require_tenant(required(lease.tenant_id, "leases.tenantId"))
            required(lease.execution_id, "leases.executionId")
        lease_ms = (
            request.lease_duration.ToMilliseconds() if request.HasField("lease_duration") else 0
        )
        results = await self._work.renew(
            dispatcher_id=dispatcher_id,
            leases=[(r.tenant_id, r.execution_id, r.fencing_token) for r in request.leases],
            lease_ms=self._work.lease_ms(lease_ms),
        )
        response = pb.RenewLeasesResponse()
        for lease, result in zip(request.leases, results, strict=True):
            item = response.results.add(
                execution_id=lease.execution_id, tenant_id=lease.tenant_id, renewed=result.renewed
            )
            if result.renewed:
                expires = timestamp_pb2.Timestamp()
                expires.FromMilliseconds(result.expires_at_ms)
                item.lease_expires_at.CopyFrom(expires)
            else:
                item.rejection_reason = error_reason_pb2.ERROR_REASON_STALE_FENCING_TOKEN
        return response

    async def CompleteWork(
        self, request: pb.CompleteWorkRequest, context: Context
    ) -> pb.CompleteWorkResponse:
        principal = current_principal()
        principal.require_any_role(WORKER_ROLES)
        return await self._request_ids.once(
            scope=f"CompleteWork/{principal.subject}/{request.dispatcher_id}",
            request_id=request.request_id,
            request=request,
            response_type=pb.CompleteWorkResponse,
            call=lambda: self._complete(request),
        )

    async def _complete(self, request: pb.CompleteWorkRequest) -> pb.CompleteWorkResponse:
        principal = current_principal()
        dispatcher_id = required(request.dispatcher_id, "dispatcherId")
        check_batch_size(len(request.outcomes), "outcomes", maximum=MAX_BATCH)
        completions: list[Completion] = []
        refused: dict[int, InvalidArgument] = {}
        for index, outcome in enumerate(request.outcomes):
            principal.require_tenant(required(outcome.tenant_id, "outcomes.tenantId"))
            required(outcome.execution_id, "outcomes.executionId")
            try:
                parsed = outcome_of(outcome)
            except InvalidArgument as refusal:
                refused[index] = refusal
                continue
            completions.append(
                Completion(
                    tenant_id=outcome.tenant_id,
                    execution_id=outcome.execution_id,
                    fencing_token=outcome.fencing_token,
                    worker_id=outcome.worker_id,
                    outcome=parsed,
                )
            )
        results = iter(
            await self._work.complete(dispatcher_id=dispatcher_id, completions=completions)
        )
        response = pb.CompleteWorkResponse()
        for index, outcome in enumerate(request.outcomes):
            if index in refused:
                response.results.add(
                    execution_id=outcome.execution_id,
                    tenant_id=outcome.tenant_id,
                    accepted=False,
                    rejection_reason=error_reason_value(refused[index].reason),
                    rejection_message=refused[index].message,
                )
                continue
            self._add_result(response, next(results))
        return response

    @staticmethod
    def _add_result(response: pb.CompleteWorkResponse, result: CompletionResult) -> None:
        item = response.results.add(
            execution_id=result.execution_id,
            tenant_id=result.tenant_id,
            accepted=result.accepted,
        )
        if result.error is not None:
            item.rejection_reason = error_reason_value(result.error.reason)
            item.rejection_message = result.error.message
        if result.record is not None:
            item.status = STATUS_TO_PROTO[result.record.state.status]
            item.version = result.record.state.version
        if result.next_work is not None:
            item.next_work_item.CopyFrom(work_item(result.next_work))
