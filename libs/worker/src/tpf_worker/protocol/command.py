"""The command document (§9.1): what a worker is asked to run, and the checks a TPF worker
applies before running it."""

from dataclasses import dataclass
from typing import Final

from tpf_envelope import Envelope
from tpf_worker.protocol.malformed import InvalidCommand, MalformedEnvelope
from tpf_worker.protocol.strict_json import (
    INT_MAX,
    INT_MIN,
    LONG_MAX,
    LONG_MIN,
    integer,
    json_bytes,
    optional_str,
    parse_object,
    reject_unknown,
    required_str,
)

_LOCAL_CONTRACT: Final = "local-contract"
_RESULT_SHAPES: Final = ("SINGLE", "MATERIALIZED_MULTI")

_COMMAND_KEYS: Final = (
    "tenantId",
    "executionId",
    "pipelineId",
    "contractVersion",
    "releaseVersion",
    "currentStepIndex",
    "stopBeforeStepIndex",
    "attempt",
    "resultShape",
    "executionVersion",
    "transitionKey",
    "traceId",
    "payloadTypeId",
    "payloadEncoding",
    "payload",
)
_REQUIRED_COMMAND_KEYS: Final = (
    "tenantId",
    "executionId",
    "pipelineId",
    "resultShape",
    "traceId",
    "payloadTypeId",
    "payloadEncoding",
    "payload",
)


@dataclass(frozen=True, slots=True)
class Command:
    """TPF's `TransitionCommandEnvelope`: run steps `current_step_index` up to (excluding)
    `stop_before_step_index` (-1: to the end or first await) of one execution."""

    tenant_id: str
    execution_id: str
    pipeline_id: str
    contract_version: str
    release_version: str
    current_step_index: int
    stop_before_step_index: int
    attempt: int
    result_shape: str
    execution_version: int
    transition_key: str
    trace_id: str
    payload_type_id: str
    payload_encoding: str
    payload: str

    def input_envelope(self) -> Envelope:
        """The command's input payload as an envelope (it travels flattened, §9.1)."""
        return Envelope(self.payload_type_id, self.payload_encoding, self.payload)


def encode_command(command: Command) -> bytes:
    """Compact UTF-8 JSON with exactly the §9.1 keys in TPF's order."""
    _check_command(command)
    values = (
        command.tenant_id,
        command.execution_id,
        command.pipeline_id,
        command.contract_version,
        command.release_version,
        command.current_step_index,
        command.stop_before_step_index,
        command.attempt,
        command.result_shape,
        command.execution_version,
        command.transition_key,
        command.trace_id,
        command.payload_type_id,
        command.payload_encoding,
        command.payload,
    )
    return json_bytes(dict(zip(_COMMAND_KEYS, values, strict=True)), "command")


def decode_command(data: bytes | str) -> Command:
    """Read a command as a TPF worker does; any violation raises `MalformedEnvelope`."""
    what = "command"
    obj = parse_object(data, what)
    reject_unknown(obj, _COMMAND_KEYS, what)
    result_shape = optional_str(obj, "resultShape", what)
    if result_shape is not None and result_shape not in _RESULT_SHAPES:
        raise MalformedEnvelope(f"command.resultShape {result_shape!r} is not known")
    # Binding succeeded: from here on a violation is the worker's validation failing.
    for key in _REQUIRED_COMMAND_KEYS:
        if obj.get(key) is None:
            raise InvalidCommand(f"command.{key} is required")
    # TPF's record defaults blank versions: contract → local-contract, release → contract.
    contract_version = optional_str(obj, "contractVersion", what) or ""
    if not contract_version.strip():
        contract_version = _LOCAL_CONTRACT
    release_version = optional_str(obj, "releaseVersion", what) or ""
    if not release_version.strip():
        release_version = contract_version
    command = Command(
        tenant_id=required_str(obj, "tenantId", what),
        execution_id=required_str(obj, "executionId", what),
        pipeline_id=required_str(obj, "pipelineId", what),
        contract_version=contract_version,
        release_version=release_version,
        current_step_index=integer(obj, "currentStepIndex", what, INT_MIN, INT_MAX),
        stop_before_step_index=integer(obj, "stopBeforeStepIndex", what, INT_MIN, INT_MAX),
        attempt=integer(obj, "attempt", what, INT_MIN, INT_MAX),
        result_shape=result_shape or "",
        execution_version=integer(obj, "executionVersion", what, LONG_MIN, LONG_MAX),
        transition_key=optional_str(obj, "transitionKey", what) or "",
        trace_id=required_str(obj, "traceId", what),
        payload_type_id=required_str(obj, "payloadTypeId", what),
        payload_encoding=required_str(obj, "payloadEncoding", what),
        payload=required_str(obj, "payload", what),
    )
    _check_command(command)
    return command


def _check_command(command: Command) -> None:
    """The validation a TPF worker applies before running a command (§9.1)."""
    if command.result_shape not in _RESULT_SHAPES:
        raise InvalidCommand(f"command.resultShape {command.result_shape!r} is not known")
    if not command.transition_key.strip():
        raise InvalidCommand("command.transitionKey must not be blank")
    for name, value in (
        ("currentStepIndex", command.current_step_index),
        ("attempt", command.attempt),
        ("executionVersion", command.execution_version),
    ):
        if value < 0:
            raise InvalidCommand(f"command.{name} must be >= 0")
    stop = command.stop_before_step_index
    if stop >= 0 and stop < command.current_step_index:
        raise InvalidCommand("command.stopBeforeStepIndex must be >= currentStepIndex")
