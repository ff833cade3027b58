"""`tpf submit | status | result | history | cancel` and `tpf executions list`: executions in
the coordinator (ExecutionService)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence

import grpc

from tpf.common.v1 import execution_status_pb2 as st
from tpf.coordinator.v1 import execution_pb2
from tpf.coordinator.v1 import execution_service_pb2 as pb
from tpf_cli import output
from tpf_cli.connection import Coordinator, collect_pages
from tpf_cli.errors import CliError
from tpf_cli.filters import TimeRange
from tpf_cli.output import Report
from tpf_cli.payloads import PayloadSource, envelope_json, envelope_of, plain_json

TERMINAL = frozenset(
    {
        st.EXECUTION_STATUS_SUCCEEDED,
        st.EXECUTION_STATUS_FAILED,
        st.EXECUTION_STATUS_DLQ,
        st.EXECUTION_STATUS_CANCELLED,
    }
)
# A watch that the coordinator ends with UNAVAILABLE (it shut down) is resumed after the last
# version seen, this many times in a row at most, waiting a little longer each time.
_WATCH_RESUMES = 5
_WATCH_BACKOFF_S = 0.5

Emit = Callable[[str], None]


async def submit(
    coordinator: Coordinator, source: PayloadSource, *, shape: str, idempotency_key: str
) -> Report:
    request = pb.SubmitExecutionRequest(
        tenant_id=coordinator.tenant_id,
        pipeline_id=coordinator.pipeline_id,
        input_shape=execution_pb2.InputShape.Value(f"INPUT_SHAPE_{shape}"),
        input_payload=await asyncio.to_thread(envelope_of, source),
        idempotency_key=idempotency_key,
        # The channel retries UNAVAILABLE; the request id makes such a replay a duplicate.
        request_id=str(uuid.uuid4()),
    )
    response = await coordinator.executions.SubmitExecution(request, timeout=coordinator.timeout_s)
    heading = (
        f"execution {response.execution_id} already exists (duplicate submission)"
        if response.duplicate
        else f"submitted execution {response.execution_id}"
    )
    details = output.key_values(
        [
            ("execution", response.execution_id),
            ("duplicate", "true" if response.duplicate else "false"),
            ("pipeline", coordinator.pipeline_id),
            ("idempotency key", output.or_dash(idempotency_key)),
            ("status url", response.status_url),
            ("submitted", output.timestamp(response.submitted_at_epoch_ms)),
        ]
    )
    return Report(response, f"{heading}\n{details}")


async def status(coordinator: Coordinator, execution_id: str) -> Report:
    response = await coordinator.executions.GetExecution(
        pb.GetExecutionRequest(tenant_id=coordinator.tenant_id, execution_id=execution_id),
        timeout=coordinator.timeout_s,
    )
    return Report(response, output.execution_details(response.execution))


async def watch(
    coordinator: Coordinator, execution_id: str, *, as_json: bool, emit: Emit = print
) -> Report:
    """Print one line per version until the execution is terminal; exit 0 if it SUCCEEDED.

    The stream has no deadline: an execution may wait for a person for days.
    """
    last: execution_pb2.Execution | None = None
    resumes = 0
    while True:
        request = pb.WatchExecutionRequest(
            tenant_id=coordinator.tenant_id, execution_id=execution_id
        )
        if last is not None:
            request.after_version = last.version
        call = coordinator.executions.WatchExecution(request)
        try:
            async for response in call:
                last = response.execution
                resumes = 0
                emit(output.json_line(response) if as_json else output.execution_line(last))
                if last.status in TERMINAL:
                    call.cancel()
                    return Report(
                        None, "", 0 if last.status == st.EXECUTION_STATUS_SUCCEEDED else 1
                    )
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE or last is None:
                raise
            if resumes >= _WATCH_RESUMES:
                raise
            await asyncio.sleep(_WATCH_BACKOFF_S * 2**resumes)
            resumes += 1
            continue
        raise CliError(f"the watch of execution {execution_id} ended before it finished")


async def result(coordinator: Coordinator, execution_id: str, *, as_envelope: bool) -> Report:
    response = await coordinator.executions.GetExecutionResult(
        pb.GetExecutionResultRequest(tenant_id=coordinator.tenant_id, execution_id=execution_id),
        timeout=coordinator.timeout_s,
    )
    envelope = response.result_payload
    return Report(response, envelope_json(envelope) if as_envelope else plain_json(envelope))


async def history(coordinator: Coordinator, execution_id: str, *, page_size: int) -> Report:
    async def page(token: str) -> tuple[list[execution_pb2.HistoryEntry], str]:
        response = await coordinator.executions.ListExecutionHistory(
            pb.ListExecutionHistoryRequest(
                tenant_id=coordinator.tenant_id,
                execution_id=execution_id,
                page_size=page_size,
                page_token=token,
            ),
            timeout=coordinator.timeout_s,
        )
        return list(response.history_entries), response.next_page_token

    entries = await collect_pages(page)
    return Report(
        pb.ListExecutionHistoryResponse(history_entries=entries), output.history_table(entries)
    )


async def list_executions(
    coordinator: Coordinator,
    *,
    statuses: Sequence[st.ExecutionStatus.ValueType],
    release_version: str,
    idempotency_key: str,
    created: TimeRange,
    page_size: int,
) -> Report:
    async def page(token: str) -> tuple[list[execution_pb2.Execution], str]:
        request = pb.ListExecutionsRequest(
            tenant_id=coordinator.tenant_id,
            pipeline_id=coordinator.pipeline_id,
            release_version=release_version,
            statuses=statuses,
            idempotency_key=idempotency_key,
            page_size=page_size,
            page_token=token,
        )
        created.apply(request.created_after, request.created_before)
        response = await coordinator.executions.ListExecutions(
            request, timeout=coordinator.timeout_s
        )
        return list(response.executions), response.next_page_token

    executions = await collect_pages(page)
    return Report(
        pb.ListExecutionsResponse(executions=executions), output.execution_table(executions)
    )


async def cancel(
    coordinator: Coordinator, execution_id: str, *, reason: str, expected_version: int | None
) -> Report:
    request = pb.CancelExecutionRequest(
        tenant_id=coordinator.tenant_id, execution_id=execution_id, reason=reason
    )
    if expected_version is not None:
        request.expected_version = expected_version
    response = await coordinator.executions.CancelExecution(request, timeout=coordinator.timeout_s)
    heading = (
        f"execution {execution_id} was already cancelled"
        if response.duplicate
        else f"cancelled execution {execution_id} "
        f"(was {output.execution_status(response.previous_status)})"
    )
    return Report(response, f"{heading}\n{output.execution_details(response.execution)}")
