"""tpf.coordinator.v1.InteractionService: pending interactions and their completions."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2

from tpf.coordinator.v1 import interaction_pb2, interaction_service_pb2_grpc
from tpf.coordinator.v1 import interaction_service_pb2 as pb
from tpf_coordinator.domain.interactions import InteractionStatus
from tpf_coordinator.interactions import CompletionRequest, Interactions
from tpf_coordinator.servicers.access import (
    CONTROL_PLANE_READ_ROLES,
    CONTROL_PLANE_ROLES,
    authorize,
)
from tpf_coordinator.servicers.convert import envelope_from_proto
from tpf_coordinator.store.protocol import PendingFilter
from tpf_coordinator.store.records import InteractionRecord
from tpf_errors import InvalidArgument
from tpf_rpc.paging import Keyset
from tpf_rpc.validation import (
    MAX_KEY_CHARS,
    MAX_PAGE_SIZE,
    filters_hash,
    optional,
    page_size,
)

Context = grpc.aio.ServicerContext[Any, Any]

# TPF's default for its pending route, not the suite's 50 (the proto says why).
DEFAULT_PENDING_LIMIT = 100
MAX_COMPLETION_TEXT_CHARS = 256

INTERACTION_STATUS_TO_PROTO = {
    status: interaction_pb2.InteractionStatus.Value(f"INTERACTION_STATUS_{status.value}")
    for status in InteractionStatus
}


def pending_page_size(request: pb.ListPendingInteractionsRequest) -> int:
    """`page_size` (AIP-158) when set, else TPF's `limit` clamped to 1..1000, else 100."""
    if request.page_size != 0 or not request.HasField("limit"):
        return page_size(request.page_size, default=DEFAULT_PENDING_LIMIT)
    return max(1, min(request.limit, MAX_PAGE_SIZE))


def json_value(value: Any) -> struct_pb2.Value:
    message = struct_pb2.Value()
    json_format.ParseDict(value, message)
    return message


def interaction_to_proto(record: InteractionRecord) -> interaction_pb2.Interaction:
    message = interaction_pb2.Interaction(
        interaction_id=record.interaction_id,
        correlation_id=record.correlation_id,
        execution_id=record.execution_id,
        step_id=record.step_id,
        step_index=record.step_index,
        output_type=record.output_type,
        status=INTERACTION_STATUS_TO_PROTO[record.status],
        request_payload=json_value(record.request_payload),
        transport_type=record.transport_type,
        transport_metadata=json_format.ParseDict(record.transport_metadata, struct_pb2.Struct()),
        deadline_epoch_ms=record.deadline_ms,
        created_at_epoch_ms=record.created_at_ms,
        updated_at_epoch_ms=record.updated_at_ms,
    )
    if record.assignee is not None:
        message.assignee = record.assignee
    if record.group is not None:
        message.group = record.group
    return message


def _bounded_text(value: str, field: str) -> str:
    text = value.strip()
    if len(text) > MAX_COMPLETION_TEXT_CHARS:
        raise InvalidArgument(
            "FIELD_OUT_OF_RANGE",
            f"{field} is longer than {MAX_COMPLETION_TEXT_CHARS} characters; shorten it",
            field=field,
            value=len(text),
            max=MAX_COMPLETION_TEXT_CHARS,
        )
    return text


class InteractionServicer(interaction_service_pb2_grpc.InteractionServiceServicer):
    def __init__(self, interactions: Interactions) -> None:
        self._interactions = interactions

    async def ListPendingInteractions(
        self, request: pb.ListPendingInteractionsRequest, context: Context
    ) -> pb.ListPendingInteractionsResponse:
        _, tenant = authorize(request.tenant_id, CONTROL_PLANE_READ_ROLES)
        limit = pending_page_size(request)
        filters = PendingFilter(
            step_id=request.step_id.strip(),
            assignee=request.assignee.strip(),
            group=request.group.strip(),
        )
        scope = filters_hash(
            tenant=tenant, step=filters.step_id, assignee=filters.assignee, group=filters.group
        )
        keyset = Keyset.of(request.page_token, limit, scope, {"d": int, "c": int, "i": str})
        after = keyset.cursor
        records = await self._interactions.list_pending(
            tenant,
            filters,
            after=(int(after["d"]), int(after["c"]), str(after["i"])) if after else None,
            limit=keyset.fetch,
        )
        page = keyset.page(
            records, lambda r: {"d": r.deadline_ms, "c": r.created_at_ms, "i": r.interaction_id}
        )
        return pb.ListPendingInteractionsResponse(
            interactions=[interaction_to_proto(r) for r in page.rows],
            next_page_token=page.next_page_token,
        )

    async def CompleteInteraction(
        self, request: pb.CompleteInteractionRequest, context: Context
    ) -> pb.CompleteInteractionResponse:
        principal, tenant = authorize(request.tenant_id, CONTROL_PLANE_ROLES)
        interaction_id = optional(request.interaction_id, "interactionId")
        correlation_id = optional(request.correlation_id, "correlationId", max_chars=MAX_KEY_CHARS)
        resume_token = request.resume_token.strip()
        if not (interaction_id or correlation_id or resume_token):
            raise InvalidArgument(
                "FIELD_REQUIRED",
                "Set interactionId, correlationId or resumeToken to name the interaction",
                field="interactionId",
            )
        if not request.HasField("response_payload"):
            raise InvalidArgument(
                "FIELD_REQUIRED", "Set responsePayload; it is required", field="responsePayload"
            )
        actor = _bounded_text(request.actor, "actor") or principal.subject
        outcome = await self._interactions.complete(
            CompletionRequest(
                tenant_id=tenant,
                response=envelope_from_proto(request.response_payload),
                actor=actor,
                interaction_id=interaction_id,
                correlation_id=correlation_id,
                resume_token=resume_token,
                idempotency_key=_bounded_text(request.idempotency_key, "idempotencyKey"),
            )
        )
        return pb.CompleteInteractionResponse(
            interaction_id=outcome.interaction_id,
            execution_id=outcome.execution_id,
            step_id=outcome.step_id,
            status=interaction_pb2.INTERACTION_STATUS_COMPLETED,
            duplicate=outcome.duplicate,
        )
