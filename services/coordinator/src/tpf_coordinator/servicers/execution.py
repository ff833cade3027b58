"""tpf.coordinator.v1.ExecutionService."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc

from tpf.coordinator.v1 import execution_service_pb2 as pb
from tpf.coordinator.v1 import execution_service_pb2_grpc
from tpf_coordinator.executions import Executions, Submission
from tpf_coordinator.notifications import Notifications
from tpf_coordinator.request_ids import RequestIds, checked_request_id
from tpf_coordinator.servicers.access import (
    CONTROL_PLANE_READ_ROLES,
    CONTROL_PLANE_ROLES,
    authorize,
)
from tpf_coordinator.servicers.convert import (
    INPUT_SHAPES,
    STATUS_TO_PROTO,
    envelope_from_proto,
    envelope_to_proto,
    error_reason_value,
    execution_to_proto,
    history_to_proto,
    status_from_proto,
    status_view,
)
from tpf_coordinator.store.protocol import ListFilter
from tpf_errors import InvalidArgument, TpfError
from tpf_rpc.errors import KIND_TO_CODE
from tpf_rpc.paging import Keyset
from tpf_rpc.validation import (
    check_batch_size,
    filters_hash,
    optional,
    page_size,
    required,
)

Context = grpc.aio.ServicerContext[Any, Any]
MAX_SUBMISSIONS_PER_CALL = 1000
# A watch re-reads the row at least this often even without a notification.
_WATCH_RECHECK_S = 5.0


def submission_error(error: TpfError) -> pb.SubmissionError:
    """A refused submission of SubmitExecutions, as SubmitExecution would have failed."""
    return pb.SubmissionError(
        code=KIND_TO_CODE[error.kind].value[0],
        reason=error_reason_value(error.reason),
        message=error.message,
        metadata=error.metadata,
    )


class ExecutionServicer(execution_service_pb2_grpc.ExecutionServiceServicer):
    def __init__(
        self, executions: Executions, notifications: Notifications, request_ids: RequestIds
    ) -> None:
        self._executions = executions
        self._notifications = notifications
        self._request_ids = request_ids

    async def SubmitExecution(
        self, request: pb.SubmitExecutionRequest, context: Context
    ) -> pb.SubmitExecutionResponse:
        principal, tenant = authorize(request.tenant_id, CONTROL_PLANE_ROLES)
        return await self._submit(request, tenant, principal.subject)

    async def SubmitExecutions(
        self, request: pb.SubmitExecutionsRequest, context: Context
    ) -> pb.SubmitExecutionsResponse:
        principal, tenant = authorize(request.tenant_id, CONTROL_PLANE_ROLES)
        check_batch_size(len(request.requests), "requests", maximum=MAX_SUBMISSIONS_PER_CALL)
        for index, item in enumerate(request.requests):
            if item.tenant_id and item.tenant_id != tenant:
                raise InvalidArgument(
                    "FIELD_INVALID",
                    f"requests[{index}] names tenant {item.tenant_id!r}; every submission of a "
                    f"call is the call's tenant {tenant!r} (leave it blank)",
                    field=f"requests[{index}].tenantId",
                )
        # Concurrently, so that the accepted ones meet in one statement (SubmitBatcher); a
        # request repeating an earlier one's key goes after it, so the first in request order
        # is the one that creates the execution.
        outcomes: list[pb.SubmitExecutionResponse | BaseException | None] = [None] * len(
            request.requests
        )
        seen: set[tuple[str, str]] = set()
        first: list[int] = []
        repeats: list[int] = []
        for index, item in enumerate(request.requests):
            key = (item.pipeline_id, item.idempotency_key.strip() or item.input_payload.payload)
            (repeats if key in seen else first).append(index)
            seen.add(key)
        for indexes in (first, repeats):
            answers = await asyncio.gather(
                *(self._submit(request.requests[i], tenant, principal.subject) for i in indexes),
                return_exceptions=True,
            )
            for index, answer in zip(indexes, answers, strict=True):
                outcomes[index] = answer
        results = []
        for outcome in outcomes:
            if isinstance(outcome, pb.SubmitExecutionResponse):
                results.append(pb.SubmitExecutionResult(accepted=outcome))
            elif isinstance(outcome, TpfError) and outcome.reason != "DATABASE_UNAVAILABLE":
                results.append(pb.SubmitExecutionResult(error=submission_error(outcome)))
            else:
                # The database is out of reach, or a bug: the call fails as a whole.
                assert isinstance(outcome, BaseException)
                raise outcome
        return pb.SubmitExecutionsResponse(results=results)

    async def _submit(
        self, request: pb.SubmitExecutionRequest, tenant: str, actor: str
    ) -> pb.SubmitExecutionResponse:
        pipeline = required(request.pipeline_id, "pipelineId")
        shape = INPUT_SHAPES.get(request.input_shape)
        if shape is None:
            raise InvalidArgument(
                "FIELD_REQUIRED", "inputShape is required (UNI, MULTI or RAW)", field="inputShape"
            )
        if not request.HasField("input_payload"):
            raise InvalidArgument(
                "FIELD_REQUIRED", "inputPayload is required", field="inputPayload"
            )
        submission = Submission(
            tenant_id=tenant,
            pipeline_id=pipeline,
            input_shape=shape,
            payload=envelope_from_proto(request.input_payload),
            idempotency_key=request.idempotency_key,
            output_streaming=request.output_streaming,
        )
        replayed = True

        async def submit() -> pb.SubmitExecutionResponse:
            nonlocal replayed
            replayed = False
            submitted = await self._executions.submit(submission, actor=actor)
            execution_id = submitted.record.execution_id
            return pb.SubmitExecutionResponse(
                execution_id=execution_id,
                duplicate=submitted.duplicate,
                # TPF points at its application API, literally (TPF_WIRE §3.1).
                status_url=f"/pipeline/executions/{execution_id}",
                submitted_at_epoch_ms=submitted.submitted_at_ms,
            )

        response = await self._request_ids.once(
            scope=f"SubmitExecution/{tenant}",
            request_id=checked_request_id(request.request_id),
            request=request,
            response_type=pb.SubmitExecutionResponse,
            call=submit,
        )
        if replayed:
            # A transport retry of a committed submission: the same execution, never a second.
            response.duplicate = True
        return response

    async def GetExecution(
        self, request: pb.GetExecutionRequest, context: Context
    ) -> pb.GetExecutionResponse:
        _, tenant = authorize(request.tenant_id, CONTROL_PLANE_READ_ROLES)
        record = await self._executions.get(tenant, required(request.execution_id, "executionId"))
        return pb.GetExecutionResponse(
            execution=execution_to_proto(record), status=status_view(record)
        )

    async def GetExecutionResult(
        self, request: pb.GetExecutionResultRequest, context: Context
    ) -> pb.GetExecutionResultResponse:
        _, tenant = authorize(request.tenant_id, CONTROL_PLANE_READ_ROLES)
        record, envelope = await self._executions.result(
            tenant, required(request.execution_id, "executionId")
        )
        return pb.GetExecutionResultResponse(
            status=status_view(record), result_payload=envelope_to_proto(envelope)
        )

    async def ListExecutions(
        self, request: pb.ListExecutionsRequest, context: Context
    ) -> pb.ListExecutionsResponse:
        _, tenant = authorize(request.tenant_id, CONTROL_PLANE_READ_ROLES)
        limit = page_size(request.page_size)
        statuses = tuple(status_from_proto(value, "statuses") for value in request.statuses)
        after_ms = (
            request.created_after.ToMilliseconds() if request.HasField("created_after") else None
        )
        before_ms = (
            request.created_before.ToMilliseconds() if request.HasField("created_before") else None
        )
        if after_ms is not None and before_ms is not None and after_ms >= before_ms:
            raise InvalidArgument(
                "FIELD_INVALID",
                "createdAfter must be before createdBefore",
                field="createdAfter",
            )
        filters = ListFilter(
            pipeline_id=optional(request.pipeline_id, "pipelineId"),
            release_version=optional(request.release_version, "releaseVersion"),
            statuses=statuses,
            created_after_ms=after_ms,
            created_before_ms=before_ms,
            idempotency_key=request.idempotency_key.strip(),
        )
        scope = filters_hash(
            tenant=tenant,
            pipeline=filters.pipeline_id,
            release=filters.release_version,
            statuses=",".join(s.value for s in statuses),
            after=str(after_ms),
            before=str(before_ms),
            key=filters.idempotency_key,
        )
        keyset = Keyset.of(request.page_token, limit, scope, {"createdAt": int, "executionId": str})
        before = keyset.cursor
        records = await self._executions.list_executions(
            tenant,
            filters,
            before=(int(before["createdAt"]), str(before["executionId"])) if before else None,
            limit=keyset.fetch,
        )
        page = keyset.page(
            records, lambda r: {"createdAt": r.created_at_ms, "executionId": r.execution_id}
        )
        return pb.ListExecutionsResponse(
            executions=[execution_to_proto(r) for r in page.rows],
            next_page_token=page.next_page_token,
        )

    async def WatchExecution(
        self, request: pb.WatchExecutionRequest, context: Context
    ) -> AsyncIterator[pb.WatchExecutionResponse]:
        _, tenant = authorize(request.tenant_id, CONTROL_PLANE_READ_ROLES)
        execution_id = required(request.execution_id, "executionId")
        last_version = -1
        with self._notifications.watch(tenant, execution_id) as watch:
            while True:
                record = await self._executions.get(tenant, execution_id)
                if record.state.version != last_version:
                    last_version = record.state.version
                    yield pb.WatchExecutionResponse(execution=execution_to_proto(record))
                if record.state.status.is_terminal:
                    return
                await watch.changed(_WATCH_RECHECK_S)

    async def CancelExecution(
        self, request: pb.CancelExecutionRequest, context: Context
    ) -> pb.CancelExecutionResponse:
        principal, tenant = authorize(request.tenant_id, CONTROL_PLANE_ROLES)
        record, previous, duplicate = await self._executions.cancel(
            tenant,
            required(request.execution_id, "executionId"),
            reason=cancel_reason(request.reason),
            actor=principal.subject,
            expected_version=(
                request.expected_version if request.HasField("expected_version") else None
            ),
        )
        return pb.CancelExecutionResponse(
            execution=execution_to_proto(record),
            previous_status=STATUS_TO_PROTO[previous],
            duplicate=duplicate,
        )

    async def ListExecutionHistory(
        self, request: pb.ListExecutionHistoryRequest, context: Context
    ) -> pb.ListExecutionHistoryResponse:
        _, tenant = authorize(request.tenant_id, CONTROL_PLANE_READ_ROLES)
        execution_id = required(request.execution_id, "executionId")
        limit = page_size(request.page_size)
        scope = filters_hash(tenant=tenant, execution=execution_id)
        keyset = Keyset.of(request.page_token, limit, scope, {"after": int})
        entries = await self._executions.history(
            tenant,
            execution_id,
            after_id=int(keyset.cursor["after"]) if keyset.cursor else 0,
            limit=keyset.fetch,
        )
        page = keyset.page(entries, lambda e: {"after": e.id})
        return pb.ListExecutionHistoryResponse(
            history_entries=[history_to_proto(e) for e in page.rows],
            next_page_token=page.next_page_token,
        )


MAX_CANCEL_REASON_CHARS = 256
DEFAULT_CANCEL_REASON = "cancelled"


def cancel_reason(value: str) -> str:
    """The reason recorded in the history: trimmed, at most 256 characters, "cancelled" if empty."""
    reason = value.strip()
    if len(reason) > MAX_CANCEL_REASON_CHARS:
        raise InvalidArgument(
            "FIELD_OUT_OF_RANGE",
            f"Keep reason within {MAX_CANCEL_REASON_CHARS} characters; got {len(reason)}.",
            field="reason",
            max=MAX_CANCEL_REASON_CHARS,
        )
    return reason or DEFAULT_CANCEL_REASON
