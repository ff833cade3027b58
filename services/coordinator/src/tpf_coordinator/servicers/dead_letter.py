"""tpf.coordinator.v1.DeadLetterService: dead-letter queries and redrives (admin role)."""

from __future__ import annotations

from typing import Any

import grpc

from tpf.coordinator.v1 import dead_letter_pb2, dead_letter_service_pb2_grpc
from tpf.coordinator.v1 import dead_letter_service_pb2 as pb
from tpf_coordinator.dead_letters import BulkOrder, DeadLetters, RedriveOrder
from tpf_coordinator.domain.dead_letters import (
    DEFAULT_BULK_MAX_EXECUTIONS,
    MAX_BULK_EXECUTIONS,
    MAX_BULK_REDRIVE_REASON_CHARS,
    dead_letter_id,
    execution_key,
    redrive_reason,
)
from tpf_coordinator.domain.failures import (
    DEAD_LETTER_RESOURCE_NAME,
    DEAD_LETTER_RESOURCE_TYPE,
    platform_label,
)
from tpf_coordinator.domain.model import ExecutionStatus
from tpf_coordinator.request_ids import RequestIds, checked_request_id
from tpf_coordinator.servicers.access import ADMIN_READ_ROLES, ADMIN_ROLES, authorize
from tpf_coordinator.servicers.convert import (
    STATUS_TO_PROTO,
    envelope_from_proto,
    error_reason_value,
)
from tpf_coordinator.store.protocol import DeadLetterFilter
from tpf_coordinator.store.records import DeadLetterRecord
from tpf_errors import InvalidArgument, field_invalid, field_required
from tpf_rpc.paging import Keyset
from tpf_rpc.validation import (
    filters_hash,
    page_size,
    required,
)

Context = grpc.aio.ServicerContext[Any, Any]

_REASON_PREFIX = "TERMINAL_REASON_"
TERMINAL_REASON_FROM_PROTO = {
    value: name.removeprefix(_REASON_PREFIX).lower()
    for name, value in dead_letter_pb2.TerminalReason.items()
    if value != dead_letter_pb2.TERMINAL_REASON_UNSPECIFIED
}
TERMINAL_REASON_TO_PROTO = {name: value for value, name in TERMINAL_REASON_FROM_PROTO.items()}


def terminal_reason_to_proto(reason: str) -> dead_letter_pb2.TerminalReason.ValueType:
    return TERMINAL_REASON_TO_PROTO.get(reason, dead_letter_pb2.TERMINAL_REASON_UNSPECIFIED)


def dead_letter_to_proto(record: DeadLetterRecord) -> dead_letter_pb2.DeadLetter:
    key = execution_key(record.tenant_id, record.pipeline_id, record.idempotency_key or "")
    message = dead_letter_pb2.DeadLetter(
        dead_letter_id=dead_letter_id(
            record.tenant_id, record.execution_id, record.execution_version
        ),
        tenant_id=record.tenant_id,
        execution_id=record.execution_id,
        execution_key=key,
        correlation_id=key,
        transition_key=record.transition_key,
        resource_type=DEAD_LETTER_RESOURCE_TYPE,
        resource_name=DEAD_LETTER_RESOURCE_NAME,
        # Contracts carry no transport or platform yet: TPF's label for "none".
        transport=platform_label(None),
        platform=platform_label(None),
        terminal_status=STATUS_TO_PROTO[ExecutionStatus.FAILED],
        terminal_reason=terminal_reason_to_proto(record.terminal_reason),
        error_code=record.error_code,
        error_message=record.error_message,
        retryable=record.retryable,
        retries_observed=record.attempt,
        created_at_epoch_ms=record.created_at_ms,
        step_index=record.step_index,
        attempt=record.attempt,
        execution_version=record.execution_version,
        redriven=record.redriven_at_ms is not None,
        redriven_at_epoch_ms=record.redriven_at_ms or 0,
        redriven_by=record.redriven_by or "",
        redrive_reason=record.redrive_reason or "",
    )
    message.identity.tenant_id = record.tenant_id
    message.identity.pipeline_id = record.pipeline_id
    message.identity.contract_version = record.contract_version
    message.identity.release_version = record.release_version
    return message


def filter_from_proto(message: pb.DeadLetterFilter) -> DeadLetterFilter:
    reasons = []
    for value in message.terminal_reasons:
        reason = TERMINAL_REASON_FROM_PROTO.get(value)
        if reason is None:
            raise field_invalid("filter.terminalReasons", "use known, specified terminal reasons")
        reasons.append(reason)
    after_ms = message.created_after.ToMilliseconds() if message.HasField("created_after") else None
    before_ms = (
        message.created_before.ToMilliseconds() if message.HasField("created_before") else None
    )
    if after_ms is not None and before_ms is not None and before_ms <= after_ms:
        raise field_invalid("filter.createdBefore", "it must be after filter.createdAfter")
    return DeadLetterFilter(
        pipeline_id=message.pipeline_id.strip(),
        release_version=message.release_version.strip(),
        error_code=message.error_code.strip(),
        terminal_reasons=tuple(sorted(set(reasons))),
        created_after_ms=after_ms,
        created_before_ms=before_ms,
        include_redriven=message.include_redriven,
        execution_id=message.execution_id.strip(),
    )


def filter_scope(tenant: str, filters: DeadLetterFilter) -> str:
    return filters_hash(
        tenant=tenant,
        pipeline=filters.pipeline_id,
        release=filters.release_version,
        error=filters.error_code,
        reasons=",".join(filters.terminal_reasons),
        after=filters.created_after_ms,
        before=filters.created_before_ms,
        redriven=filters.include_redriven,
        execution=filters.execution_id,
    )


def _target_release(message: pb.RedriveExecutionRequest | pb.BulkRedriveRequest) -> str | None:
    if not message.HasField("target_release_version"):
        return None
    return message.target_release_version.strip() or None


class DeadLetterServicer(dead_letter_service_pb2_grpc.DeadLetterServiceServicer):
    def __init__(self, dead_letters: DeadLetters, request_ids: RequestIds) -> None:
        self._dead_letters = dead_letters
        self._request_ids = request_ids

    async def ListDeadLetters(
        self, request: pb.ListDeadLettersRequest, context: Context
    ) -> pb.ListDeadLettersResponse:
        _, tenant = authorize(request.tenant_id, ADMIN_READ_ROLES)
        limit = page_size(request.page_size)
        filters = filter_from_proto(request.filter)
        scope = filter_scope(tenant, filters)
        keyset = Keyset.of(request.page_token, limit, scope, {"c": int, "i": int})
        before = keyset.cursor
        records = await self._dead_letters.list_dead_letters(
            tenant,
            filters,
            before=(int(before["c"]), int(before["i"])) if before else None,
            limit=keyset.fetch,
        )
        page = keyset.page(records, lambda r: {"c": r.created_at_ms, "i": r.id})
        return pb.ListDeadLettersResponse(
            dead_letters=[dead_letter_to_proto(r) for r in page.rows],
            next_page_token=page.next_page_token,
        )

    async def RedriveExecution(
        self, request: pb.RedriveExecutionRequest, context: Context
    ) -> pb.RedriveExecutionResponse:
        principal, tenant = authorize(request.tenant_id, ADMIN_ROLES)
        execution_id = required(request.execution_id, "executionId")
        expected_version = (
            request.expected_version if request.HasField("expected_version") else None
        )
        if expected_version is not None and expected_version < 0:
            raise InvalidArgument(
                "FIELD_OUT_OF_RANGE",
                f"expectedVersion must not be negative; got {expected_version}",
                field="expectedVersion",
                value=expected_version,
                min=0,
            )
        order = RedriveOrder(
            tenant_id=tenant,
            execution_id=execution_id,
            reason=redrive_reason(request.reason if request.HasField("reason") else None),
            actor=principal.subject,
            allow_failed=request.allow_failed,
            expected_version=expected_version,
            target_release_version=_target_release(request),
            replacement_input=(
                envelope_from_proto(request.replacement_input)
                if request.HasField("replacement_input")
                else None
            ),
        )
        return await self._request_ids.once(
            scope=f"RedriveExecution/{tenant}",
            request_id=checked_request_id(request.request_id),
            request=request,
            response_type=pb.RedriveExecutionResponse,
            call=lambda: self._redrive(order),
        )

    async def _redrive(self, order: RedriveOrder) -> pb.RedriveExecutionResponse:
        done = await self._dead_letters.redrive(order)
        return pb.RedriveExecutionResponse(
            tenant_id=done.tenant_id,
            execution_id=done.execution_id,
            previous_status=STATUS_TO_PROTO[done.previous_status],
            status=STATUS_TO_PROTO[done.state.status],
            version=done.state.version,
            current_step_index=done.state.step_index,
            attempt=done.state.attempt,
            pipeline_id=done.pipeline_id,
            contract_version=done.contract_version,
            release_version=done.release_version,
            updated_at_epoch_ms=done.state.updated_at_ms,
        )

    async def BulkRedrive(
        self, request: pb.BulkRedriveRequest, context: Context
    ) -> pb.BulkRedriveResponse:
        principal, tenant = authorize(request.tenant_id, ADMIN_ROLES)
        reason = request.reason.strip()
        if not reason:
            raise field_required("reason")
        if len(reason) > MAX_BULK_REDRIVE_REASON_CHARS:
            raise InvalidArgument(
                "FIELD_OUT_OF_RANGE",
                f"reason is longer than {MAX_BULK_REDRIVE_REASON_CHARS} characters; shorten it",
                field="reason",
                value=len(reason),
                max=MAX_BULK_REDRIVE_REASON_CHARS,
            )
        if not 0 <= request.max_executions <= MAX_BULK_EXECUTIONS:
            raise InvalidArgument(
                "FIELD_OUT_OF_RANGE",
                f"Set maxExecutions between 0 and {MAX_BULK_EXECUTIONS} (0 means "
                f"{DEFAULT_BULK_MAX_EXECUTIONS}); got {request.max_executions}",
                field="maxExecutions",
                value=request.max_executions,
                min=0,
                max=MAX_BULK_EXECUTIONS,
            )
        order = BulkOrder(
            tenant_id=tenant,
            filters=filter_from_proto(request.filter),
            reason=reason,
            actor=principal.subject,
            max_executions=request.max_executions or DEFAULT_BULK_MAX_EXECUTIONS,
            dry_run=request.dry_run,
            target_release_version=_target_release(request),
        )
        request_id = checked_request_id(request.request_id)
        if request.dry_run:
            return await self._bulk(order)
        return await self._request_ids.once(
            scope=f"BulkRedrive/{tenant}",
            request_id=request_id,
            request=request,
            response_type=pb.BulkRedriveResponse,
            call=lambda: self._bulk(order),
        )

    async def _bulk(self, order: BulkOrder) -> pb.BulkRedriveResponse:
        outcome = await self._dead_letters.bulk_redrive(order)
        return pb.BulkRedriveResponse(
            matched_count=outcome.matched_count,
            redriven_count=outcome.redriven_count,
            execution_ids=outcome.execution_ids,
            failures=[
                pb.BulkRedriveFailure(
                    execution_id=failure.execution_id,
                    reason=error_reason_value(failure.reason),
                    message=failure.message,
                )
                for failure in outcome.failures
            ],
            dry_run=outcome.dry_run,
        )
