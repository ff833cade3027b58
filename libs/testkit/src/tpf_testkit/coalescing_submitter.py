"""A producer's submissions coalesced into `SubmitExecutions` calls ("natural batching").

Callers submit one execution at a time, as many concurrently as they like; whatever is waiting
when a call can be made goes in one `SubmitExecutions` call. Nothing waits on a timer: with no
call in flight a submission is sent at once (alone, at the latency of `SubmitExecution`);
while `max_calls` calls are in flight, the next ones queue and travel together. Each caller
gets its own answer, or its own refusal (`SubmissionRefused`, with the code and reason
`SubmitExecution` would have failed with); a failure of the whole call (UNAVAILABLE, a
deadline) is raised to every caller of that call, who may retry: a submission is idempotent by
its key.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc

from tpf.common.v1 import error_reason_pb2
from tpf.coordinator.v1 import execution_service_pb2 as epb
from tpf.coordinator.v1 import execution_service_pb2_grpc

MAX_SUBMISSIONS_PER_CALL = 1000


@dataclass
class SubmissionRefused(Exception):
    """One submission of a `SubmitExecutions` call was refused."""

    code: grpc.StatusCode
    reason: str
    message: str
    metadata: dict[str, str]

    def __str__(self) -> str:
        return f"{self.code.name} {self.reason}: {self.message}"


_CODES = {code.value[0]: code for code in grpc.StatusCode}
_Pending = tuple[epb.SubmitExecutionRequest, "asyncio.Future[epb.SubmitExecutionResponse]"]


class CoalescingSubmitter:
    def __init__(
        self,
        executions: execution_service_pb2_grpc.ExecutionServiceAsyncStub,
        tenant_id: str,
        *,
        max_calls: int = 2,
        max_batch: int = 500,
        timeout_s: float = 10.0,
    ) -> None:
        if not 1 <= max_batch <= MAX_SUBMISSIONS_PER_CALL:
            raise ValueError(f"max_batch must be 1..{MAX_SUBMISSIONS_PER_CALL}")
        self._executions = executions
        self._tenant_id = tenant_id
        self._max_calls = max_calls
        self._max_batch = max_batch
        self._timeout_s = timeout_s
        self._queue: list[_Pending] = []
        self._calls = 0
        self._senders: set[asyncio.Task[None]] = set()
        self.calls_made = 0

    async def submit(self, request: epb.SubmitExecutionRequest) -> epb.SubmitExecutionResponse:
        """Submit one execution of this submitter's tenant (`request.tenant_id` blank or it)."""
        future: asyncio.Future[epb.SubmitExecutionResponse] = (
            asyncio.get_running_loop().create_future()
        )
        self._queue.append((request, future))
        if self._calls < self._max_calls:
            self._calls += 1
            sender = asyncio.create_task(self._send())
            self._senders.add(sender)
            sender.add_done_callback(self._senders.discard)
        return await future

    async def _send(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                await self._call(batch)
        finally:
            self._calls -= 1

    async def _call(self, batch: list[_Pending]) -> None:
        self.calls_made += 1
        try:
            response = await self._executions.SubmitExecutions(
                epb.SubmitExecutionsRequest(
                    tenant_id=self._tenant_id, requests=[request for request, _ in batch]
                ),
                timeout=self._timeout_s,
            )
        except Exception as error:
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), result in zip(batch, response.results, strict=True):
            if future.done():
                continue
            if result.WhichOneof("outcome") == "accepted":
                future.set_result(result.accepted)
            else:
                future.set_exception(
                    SubmissionRefused(
                        code=_CODES.get(result.error.code, grpc.StatusCode.UNKNOWN),
                        reason=error_reason_pb2.ErrorReason.Name(result.error.reason).removeprefix(
                            "ERROR_REASON_"
                        ),
                        message=result.error.message,
                        metadata=dict(result.error.metadata),
                    )
                )
