"""A claimed WorkItem as TPF's command envelope (TPF_WIRE §9.1), and the step's call timeout."""

from __future__ import annotations

from tpf.coordinator.v1 import execution_pb2
from tpf.coordinator.v1 import work_service_pb2 as wpb
from tpf_worker.protocol.command import Command

_RESULT_SHAPE_PREFIX = "RESULT_SHAPE_"


def command_for(item: wpb.WorkItem) -> Command:
    """The command a worker runs for `item`.

    The fencing token is TPF's `executionVersion`; the attempt key is both `transitionKey` and
    `traceId`, as TPF sets them for normal claims.
    """
    shape = execution_pb2.ResultShape.Name(item.result_shape).removeprefix(_RESULT_SHAPE_PREFIX)
    return Command(
        tenant_id=item.identity.tenant_id,
        execution_id=item.execution_id,
        pipeline_id=item.identity.pipeline_id,
        contract_version=item.identity.contract_version,
        release_version=item.identity.release_version,
        current_step_index=item.step_index,
        stop_before_step_index=item.stop_before_step_index,
        attempt=item.attempt,
        result_shape=shape,
        execution_version=item.fencing_token,
        transition_key=item.attempt_key,
        trace_id=item.attempt_key,
        payload_type_id=item.input_payload.payload_type_id,
        payload_encoding=item.input_payload.payload_encoding,
        payload=item.input_payload.payload,
    )


def step_timeout_s(item: wpb.WorkItem, default_s: float) -> float:
    """How long the worker call may take: the step's declared timeout, else `default_s`."""
    if item.step.HasField("timeout"):
        declared_s = item.step.timeout.ToMilliseconds() / 1000
        if declared_s > 0:
            return declared_s
    return default_s
