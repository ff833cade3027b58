"""Terminal events: watch executions and announce their terminal state on the events queue.

Every execution a submit message created (or found) is watched with `WatchExecution`; its first
terminal state (SUCCEEDED, FAILED, DLQ, CANCELLED) is published once. On start, non-terminal
executions of the configured tenants created within a window are watched again. The gap, by
design: an execution that became terminal while no bridge was watching it is never announced,
and one whose state was reached just before a crash may be announced again after a restart
(`eventId` is stable, so consumers can drop repeats).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable

import grpc

from tpf.common.v1 import execution_status_pb2 as st
from tpf.coordinator.v1 import execution_pb2, execution_service_pb2_grpc
from tpf.coordinator.v1 import execution_service_pb2 as epb
from tpf_sqs_bridge.bodies import terminal_event
from tpf_sqs_bridge.refusals import refusal_of_rpc_error
from tpf_sqs_bridge.sqs import SqsQueues
from tpf_telemetry import log_context

log = logging.getLogger(__name__)

TERMINAL_STATUSES = frozenset(
    {
        st.EXECUTION_STATUS_SUCCEEDED,
        st.EXECUTION_STATUS_FAILED,
        st.EXECUTION_STATUS_DLQ,
        st.EXECUTION_STATUS_CANCELLED,
    }
)
NON_TERMINAL_STATUSES = (
    st.EXECUTION_STATUS_QUEUED,
    st.EXECUTION_STATUS_RUNNING,
    st.EXECUTION_STATUS_WAITING_EXTERNAL,
    st.EXECUTION_STATUS_WAIT_RETRY,
)
_RESUME_PAGE_SIZE = 500
_FIRST_PAUSE_S = 0.2
_MAX_PAUSE_S = 5.0


class _Backoff:
    """Jittered exponential pauses for one long-lived subscription.

    A watch is not a single call that a gRPC retry policy could repeat: it must be opened again
    from the last version seen, for as long as the bridge runs; hence a loop of its own.
    """

    def __init__(self) -> None:
        self._pause_s = _FIRST_PAUSE_S

    def reset(self) -> None:
        self._pause_s = _FIRST_PAUSE_S

    async def pause(self) -> None:
        await asyncio.sleep(self._pause_s * (0.5 + random.random()))
        self._pause_s = min(self._pause_s * 2, _MAX_PAUSE_S)


class TerminalEvents:
    def __init__(
        self,
        *,
        stub: execution_service_pb2_grpc.ExecutionServiceAsyncStub,
        queues: SqsQueues,
        events_queue_url: str,
        now_ms: Callable[[], int],
    ) -> None:
        self._stub = stub
        self._queues = queues
        self._events_queue_url = events_queue_url
        self._now_ms = now_ms
        self._watches: dict[tuple[str, str], asyncio.Task[None]] = {}

    @property
    def watching(self) -> int:
        return len(self._watches)

    def watch(self, tenant_id: str, execution_id: str) -> None:
        """Start watching unless already watching; returns at once."""
        key = (tenant_id, execution_id)
        if key in self._watches:
            return
        task = asyncio.create_task(
            self._watch_until_terminal(tenant_id, execution_id),
            name=f"watch-{execution_id}",
        )
        self._watches[key] = task
        task.add_done_callback(lambda _: self._watches.pop(key, None))

    async def resume(self, tenants: tuple[str, ...], *, window_s: int) -> int:
        """Watch the non-terminal executions created within the window; how many were found."""
        found = 0
        for tenant_id in tenants:
            request = epb.ListExecutionsRequest(
                tenant_id=tenant_id,
                page_size=_RESUME_PAGE_SIZE,
                statuses=NON_TERMINAL_STATUSES,
            )
            request.created_after.FromMilliseconds(self._now_ms() - window_s * 1000)
            while True:
                page = await self._stub.ListExecutions(request)
                for execution in page.executions:
                    self.watch(tenant_id, execution.execution_id)
                found += len(page.executions)
                if not page.next_page_token:
                    break
                request.page_token = page.next_page_token
        log.info("watching %d executions again after start", found)
        return found

    async def stop(self) -> None:
        """Cancel every watch; they resume on the next start (within the resume window)."""
        watches = list(self._watches.values())
        for task in watches:
            task.cancel()
        for task in watches:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _watch_until_terminal(self, tenant_id: str, execution_id: str) -> None:
        with log_context(tenant=tenant_id, execution_id=execution_id):
            terminal = await self._terminal_state(tenant_id, execution_id)
            if terminal is None:
                return
            await self._publish(terminal)

    async def _terminal_state(
        self, tenant_id: str, execution_id: str
    ) -> execution_pb2.Execution | None:
        """The first terminal state the watch sees; None if the execution does not exist."""
        backoff = _Backoff()
        last_version: int | None = None
        while True:
            request = epb.WatchExecutionRequest(tenant_id=tenant_id, execution_id=execution_id)
            if last_version is not None:
                request.after_version = last_version
            try:
                async for response in self._stub.WatchExecution(request):
                    backoff.reset()
                    last_version = response.execution.version
                    if response.execution.status in TERMINAL_STATUSES:
                        return response.execution
            except grpc.aio.AioRpcError as error:
                refusal = refusal_of_rpc_error(error)
                if refusal.is_permanent:
                    # Gone, or not ours to see: no retry will show its end.
                    log.warning(
                        "not watching %s: %s %s", execution_id, refusal.reason, refusal.message
                    )
                    return None
                log.info("watch of %s ended (%s); watching again", execution_id, error.code())
            await backoff.pause()

    async def _publish(self, execution: execution_pb2.Execution) -> None:
        body = terminal_event(execution)
        backoff = _Backoff()
        while True:
            try:
                await self._queues.send_json(self._events_queue_url, body)
            except Exception:
                # botocore already retried; keep the event until SQS takes it or we stop.
                log.exception("publishing the terminal event of %s failed", execution.execution_id)
                await backoff.pause()
                continue
            log.info(
                "terminal event published",
                extra={"status": body["status"], "version": execution.version},
            )
            return
