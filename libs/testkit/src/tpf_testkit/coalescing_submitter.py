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

from dataclasses import dataclass

import grpc

from tpf.common.v1 import error_reason_pb2
from tpf.coordinator.v1 import execution_service_pb2 as epb
from tpf.coordinator.v1 import execution_service_pb2_grpc
from tpf_rpc.batching import NaturalBatcher

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
        self._timeout_s = timeout_s
        self._batches: NaturalBatcher[epb.SubmitExecutionRequest, epb.SubmitExecutionResponse] = (
            NaturalBatcher(self._call, max_batch=max_batch, max_in_flight=max_calls)
        )

    async def submit(self, request: epb.SubmitExecutionRequest) -> epb.SubmitExecutionResponse:
        """Submit one execution of this submitter's tenant (`request.tenant_id` blank or it)."""
        return await self._batches.submit(request)

    async def _call(
        self, requests: list[epb.SubmitExecutionRequest]
    ) -> list[epb.SubmitExecutionResponse | BaseException]:
        response = await self._executions.SubmitExecutions(
            epb.SubmitExecutionsRequest(tenant_id=self._tenant_id, requests=requests),
            timeout=self._timeout_s,
        )
        return [
            result.accepted if result.WhichOneof("outcome") == "accepted" else _refusal(result)
            for result in response.results
        ]


def _refusal(result: epb.SubmitExecutionResult) -> SubmissionRefused:
    return SubmissionRefused(
        code=_CODES.get(result.error.code, grpc.StatusCode.UNKNOWN),
        reason=error_reason_pb2.ErrorReason.Name(result.error.reason).removeprefix("ERROR_REASON_"),
        message=result.error.message,
        metadata=dict(result.error.metadata),
    )
