"""TPF's worker-protocol documents: command, result and capability JSON (TPF_WIRE §9.1-§9.3).

Every transport (local, REST, gRPC, SQS) carries these same three documents. TPF reads them with
a Jackson mapper that rejects unknown properties, so we emit exactly the documented keys in TPF's
order and reject any other key on the way in, nested records included. Keys that are missing are
tolerated where TPF's records tolerate them (null strings, `0`, `false`, `[]`), and then the same
validation TPF runs decides whether the document is usable.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from tpf_envelope import (
    ENVELOPE_ENCODING,
    Envelope,
    JsonValue,
    compact_json_text,
    to_json_dict,
)

__all__ = [
    "ENVELOPE_ENCODING",
    "PROTOCOL_VERSION",
    "Capability",
    "Command",
    "Failure",
    "InvalidCommand",
    "MalformedEnvelope",
    "Result",
    "decode_capability",
    "decode_command",
    "decode_result",
    "encode_capability",
    "encode_command",
    "encode_result",
]

PROTOCOL_VERSION: Final = "1"

_INT_MIN: Final = -(2**31)
_INT_MAX: Final = 2**31 - 1
_LONG_MIN: Final = -(2**63)
_LONG_MAX: Final = 2**63 - 1

_LOCAL_CONTRACT: Final = "local-contract"
_RESULT_SHAPES: Final = ("SINGLE", "MATERIALIZED_MULTI")
_OUTCOMES: Final = ("COMPLETED", "WAITING_EXTERNAL", "FAILED")


class MalformedEnvelope(ValueError):
    """A worker-protocol document is not valid JSON, has unknown keys, or breaks TPF's rules."""


class InvalidCommand(MalformedEnvelope):
    """A command that binds as JSON but fails the worker's validation (§9.1).

    TPF's gRPC worker reports the two differently ("Malformed ..." versus "Invalid ...").
    """


# -- JSON text ---------------------------------------------------------------------------------


def _refuse_constant(name: str) -> object:
    raise MalformedEnvelope(f"{name} is not a JSON number")


def _parse(data: bytes | str, what: str) -> Mapping[str, Any]:
    """One JSON object; non-integer numbers stay exact (`Decimal`), NaN/Infinity are refused."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        parsed = json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)
    except MalformedEnvelope:
        raise
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError, JSONDecodeError
        raise MalformedEnvelope(f"{what} is not valid JSON: {error}") from None
    if not isinstance(parsed, dict):
        raise MalformedEnvelope(f"{what} must be a JSON object")
    return parsed


def _text(obj: dict[str, Any], what: str) -> bytes:
    try:
        return compact_json_text(obj).encode("utf-8")
    except ValueError as error:
        raise MalformedEnvelope(f"{what} cannot be written as JSON: {error}") from None


def _reject_unknown(obj: Mapping[str, Any], keys: Sequence[str], what: str) -> None:
    unknown = [key for key in obj if key not in keys]
    if unknown:
        raise MalformedEnvelope(f"{what} has unknown field {unknown[0]!r}")


def _object(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MalformedEnvelope(f"{what} must be a JSON object")
    return value


def _opt_str(obj: Mapping[str, Any], key: str, what: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise MalformedEnvelope(f"{what}.{key} must be a string")
    return value


def _req_str(obj: Mapping[str, Any], key: str, what: str) -> str:
    value = _opt_str(obj, key, what)
    if value is None:
        raise MalformedEnvelope(f"{what}.{key} is required")
    return value


def _int(obj: Mapping[str, Any], key: str, what: str, low: int, high: int) -> int:
    """A Java int/long field: missing or null binds as 0 (Jackson's primitive default)."""
    value = obj.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedEnvelope(f"{what}.{key} must be an integer")
    if not low <= value <= high:
        raise MalformedEnvelope(f"{what}.{key} is out of range")
    return value


def _bool(obj: Mapping[str, Any], key: str, what: str) -> bool:
    value = obj.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise MalformedEnvelope(f"{what}.{key} must be a boolean")
    return value


def _str_list(obj: Mapping[str, Any], key: str, what: str) -> tuple[str, ...]:
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise MalformedEnvelope(f"{what}.{key} must be an array of strings")
    return tuple(value)


# -- Command (§9.1) ----------------------------------------------------------------------------

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
    return _text(dict(zip(_COMMAND_KEYS, values, strict=True)), "command")


def decode_command(data: bytes | str) -> Command:
    """Read a command as a TPF worker does; any violation raises `MalformedEnvelope`."""
    what = "command"
    obj = _parse(data, what)
    _reject_unknown(obj, _COMMAND_KEYS, what)
    result_shape = _opt_str(obj, "resultShape", what)
    if result_shape is not None and result_shape not in _RESULT_SHAPES:
        raise MalformedEnvelope(f"command.resultShape {result_shape!r} is not known")
    # Binding succeeded: from here on a violation is the worker's validation failing.
    for key in _REQUIRED_COMMAND_KEYS:
        if obj.get(key) is None:
            raise InvalidCommand(f"command.{key} is required")
    # TPF's record defaults blank versions: contract → local-contract, release → contract.
    contract_version = _opt_str(obj, "contractVersion", what) or ""
    if not contract_version.strip():
        contract_version = _LOCAL_CONTRACT
    release_version = _opt_str(obj, "releaseVersion", what) or ""
    if not release_version.strip():
        release_version = contract_version
    command = Command(
        tenant_id=_req_str(obj, "tenantId", what),
        execution_id=_req_str(obj, "executionId", what),
        pipeline_id=_req_str(obj, "pipelineId", what),
        contract_version=contract_version,
        release_version=release_version,
        current_step_index=_int(obj, "currentStepIndex", what, _INT_MIN, _INT_MAX),
        stop_before_step_index=_int(obj, "stopBeforeStepIndex", what, _INT_MIN, _INT_MAX),
        attempt=_int(obj, "attempt", what, _INT_MIN, _INT_MAX),
        result_shape=result_shape or "",
        execution_version=_int(obj, "executionVersion", what, _LONG_MIN, _LONG_MAX),
        transition_key=_opt_str(obj, "transitionKey", what) or "",
        trace_id=_req_str(obj, "traceId", what),
        payload_type_id=_req_str(obj, "payloadTypeId", what),
        payload_encoding=_req_str(obj, "payloadEncoding", what),
        payload=_req_str(obj, "payload", what),
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


# -- Result (§9.2) -----------------------------------------------------------------------------

_RESULT_KEYS: Final = (
    "outcome",
    "outputPayloads",
    "awaitSuspension",
    "failure",
    "terminalOutputPublished",
    "terminalInputPassthrough",
)
_IGNORED_RESULT_KEYS: Final = ("decodedOutputItems",)
_ENVELOPE_KEYS: Final = ("payloadTypeId", "payloadEncoding", "payload")
_FAILURE_KEYS: Final = ("failureClass", "message")
_SUSPENSION_KEYS: Final = ("tenantId", "executionId", "unitId", "stepIndex", "unit", "interactions")
_UNIT_KEYS: Final = (
    "tenantId",
    "unitId",
    "executionId",
    "stepId",
    "stepIndex",
    "cardinality",
    "version",
    "status",
    "primaryInteractionId",
    "expectedItemCount",
    "completedItemCount",
    "completedItemKeys",
    "dispatchComplete",
    "createdAtEpochMs",
    "updatedAtEpochMs",
    "ttlEpochS",
)
_INTERACTION_KEYS: Final = (
    "tenantId",
    "executionId",
    "stepId",
    "stepIndex",
    "outputType",
    "interactionId",
    "correlationId",
    "causationId",
    "idempotencyKey",
    "version",
    "status",
    "requestPayload",
    "responsePayload",
    "unitId",
    "itemIndex",
    "actor",
    "assignee",
    "group",
    "transportType",
    "transportMetadata",
    "deadlineEpochMs",
    "createdAtEpochMs",
    "updatedAtEpochMs",
    "ttlEpochS",
    "transportOutputType",
)


@dataclass(frozen=True, slots=True)
class Failure:
    """A FAILED result's cause: a Java class name and its message (may be null)."""

    failure_class: str
    message: str | None


@dataclass(frozen=True, slots=True)
class Result:
    """TPF's `TransitionResultEnvelope`. Build with `completed`, `waiting` or `failed`."""

    outcome: str
    output_payloads: tuple[Envelope, ...] = ()
    await_suspension: Mapping[str, Any] | None = None
    failure: Failure | None = None
    terminal_output_published: bool = False
    terminal_input_passthrough: bool = False

    @classmethod
    def completed(
        cls,
        outputs: Sequence[Envelope],
        *,
        terminal_output_published: bool = False,
        terminal_input_passthrough: bool = False,
    ) -> "Result":
        return cls(
            "COMPLETED",
            output_payloads=tuple(outputs),
            terminal_output_published=terminal_output_published,
            terminal_input_passthrough=terminal_input_passthrough,
        )

    @classmethod
    def waiting(cls, await_suspension: Mapping[str, Any]) -> "Result":
        return cls("WAITING_EXTERNAL", await_suspension=await_suspension)

    @classmethod
    def failed(cls, failure_class: str, message: str | None) -> "Result":
        return cls("FAILED", failure=Failure(failure_class, message))


def encode_result(result: Result) -> bytes:
    """Compact UTF-8 JSON with exactly the §9.2 keys (nested records too), in TPF's order."""
    _check_result(result)
    suspension = (
        None if result.await_suspension is None else _ordered_suspension(result.await_suspension)
    )
    failure = (
        None
        if result.failure is None
        else {"failureClass": result.failure.failure_class, "message": result.failure.message}
    )
    obj: dict[str, JsonValue] = {
        "outcome": result.outcome,
        "outputPayloads": [dict(to_json_dict(output)) for output in result.output_payloads],
        "awaitSuspension": suspension,
        "failure": dict(failure) if failure is not None else None,
        "terminalOutputPublished": result.terminal_output_published,
        "terminalInputPassthrough": result.terminal_input_passthrough,
    }
    return _text(obj, "result")


def decode_result(data: bytes | str) -> Result:
    """Read a result as a TPF coordinator does; any violation raises `MalformedEnvelope`."""
    what = "result"
    obj = _parse(data, what)
    _reject_unknown(obj, _RESULT_KEYS + _IGNORED_RESULT_KEYS, what)
    outcome = _req_str(obj, "outcome", what)
    raw_outputs = obj.get("outputPayloads")
    if raw_outputs is None:
        raw_outputs = []
    if not isinstance(raw_outputs, list):
        raise MalformedEnvelope("result.outputPayloads must be an array")
    outputs: list[Envelope] = []
    for position, raw in enumerate(raw_outputs):
        outputs.append(_envelope(raw, f"result.outputPayloads[{position}]"))
    raw_suspension = obj.get("awaitSuspension")
    suspension = None if raw_suspension is None else _object(raw_suspension, what)
    raw_failure = obj.get("failure")
    failure = None
    if raw_failure is not None:
        failure_obj = _object(raw_failure, "result.failure")
        _reject_unknown(failure_obj, _FAILURE_KEYS, "result.failure")
        failure = Failure(
            _req_str(failure_obj, "failureClass", "result.failure"),
            _opt_str(failure_obj, "message", "result.failure"),
        )
    result = Result(
        outcome=outcome,
        output_payloads=tuple(outputs),
        await_suspension=suspension,
        failure=failure,
        terminal_output_published=_bool(obj, "terminalOutputPublished", what),
        terminal_input_passthrough=_bool(obj, "terminalInputPassthrough", what),
    )
    _check_result(result)
    return result


def _envelope(raw: object, what: str) -> Envelope:
    """A nested payload envelope: exactly its three keys, each a non-null string (§2)."""
    obj = _object(raw, what)
    _reject_unknown(obj, _ENVELOPE_KEYS, what)
    return Envelope(
        _req_str(obj, "payloadTypeId", what),
        _req_str(obj, "payloadEncoding", what),
        _req_str(obj, "payload", what),
    )


def _check_result(result: Result) -> None:
    """The "only" rules of §9.2: each field belongs to exactly one outcome."""
    outcome = result.outcome
    if outcome not in _OUTCOMES:
        raise MalformedEnvelope(f"result.outcome {outcome!r} is not known")
    if outcome != "COMPLETED":
        if result.output_payloads:
            raise MalformedEnvelope(f"a {outcome} result must not carry outputPayloads")
        if result.terminal_output_published or result.terminal_input_passthrough:
            raise MalformedEnvelope(f"a {outcome} result must not set terminal flags")
    elif result.terminal_output_published and result.terminal_input_passthrough:
        raise MalformedEnvelope(
            "terminalOutputPublished and terminalInputPassthrough exclude each other"
        )
    elif result.terminal_input_passthrough and result.output_payloads:
        raise MalformedEnvelope("a terminalInputPassthrough result must not carry outputPayloads")
    if (outcome == "WAITING_EXTERNAL") != (result.await_suspension is not None):
        raise MalformedEnvelope("awaitSuspension is required for, and only for, WAITING_EXTERNAL")
    if (outcome == "FAILED") != (result.failure is not None):
        raise MalformedEnvelope("failure is required for, and only for, FAILED")
    if result.await_suspension is not None:
        _check_suspension(result.await_suspension)


def _check_suspension(suspension: Mapping[str, Any]) -> None:
    """Strict keys in the suspension and its unit and interaction records.

    Their values are free-form beyond the container shapes (the interaction's request and response
    payloads are plain JSON of the application), so only the key sets are TPF's contract here.
    """
    what = "result.awaitSuspension"
    _reject_unknown(suspension, _SUSPENSION_KEYS, what)
    unit = suspension.get("unit")
    if unit is not None:
        _reject_unknown(_object(unit, f"{what}.unit"), _UNIT_KEYS, f"{what}.unit")
    interactions = suspension.get("interactions")
    if interactions is None:
        return
    if not isinstance(interactions, list | tuple):
        raise MalformedEnvelope(f"{what}.interactions must be an array")
    for position, interaction in enumerate(interactions):
        where = f"{what}.interactions[{position}]"
        _reject_unknown(_object(interaction, where), _INTERACTION_KEYS, where)


def _ordered(obj: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    return {key: obj[key] for key in keys if key in obj}


def _ordered_suspension(suspension: Mapping[str, Any]) -> dict[str, Any]:
    """The suspension in TPF's field order (keys already checked); absent keys stay absent."""
    ordered = _ordered(suspension, _SUSPENSION_KEYS)
    if isinstance(ordered.get("unit"), Mapping):
        ordered["unit"] = _ordered(ordered["unit"], _UNIT_KEYS)
    if isinstance(ordered.get("interactions"), list | tuple):
        ordered["interactions"] = [
            _ordered(interaction, _INTERACTION_KEYS) for interaction in ordered["interactions"]
        ]
    return ordered


# -- Capability (§9.3) -------------------------------------------------------------------------

_CAPABILITY_KEYS: Final = (
    "protocolVersion",
    "providerName",
    "pipelineId",
    "contractVersion",
    "releaseVersion",
    "artifactId",
    "artifactDigest",
    "payloadEncodings",
    "workerProtocols",
)


@dataclass(frozen=True, slots=True)
class Capability:
    """TPF's `PipelineWorkerCapability`: what a worker hosts and which protocols it speaks."""

    pipeline_id: str
    contract_version: str
    release_version: str
    artifact_id: str = ""
    artifact_digest: str = ""
    provider_name: str = "local"
    worker_protocols: tuple[str, ...] = ("local", "rest", "grpc", "sqs")
    payload_encodings: tuple[str, ...] = (ENVELOPE_ENCODING,)
    protocol_version: str = PROTOCOL_VERSION


def encode_capability(c: Capability) -> bytes:
    """Compact UTF-8 JSON with exactly the §9.3 keys in TPF's order."""
    obj: dict[str, JsonValue] = {
        "protocolVersion": c.protocol_version,
        "providerName": c.provider_name,
        "pipelineId": c.pipeline_id,
        "contractVersion": c.contract_version,
        "releaseVersion": c.release_version,
        "artifactId": c.artifact_id,
        "artifactDigest": c.artifact_digest,
        "payloadEncodings": list(c.payload_encodings),
        "workerProtocols": list(c.worker_protocols),
    }
    return _text(obj, "capability")


def decode_capability(data: bytes | str) -> Capability:
    """Read a capability document strictly; any violation raises `MalformedEnvelope`."""
    what = "capability"
    obj = _parse(data, what)
    _reject_unknown(obj, _CAPABILITY_KEYS, what)
    return Capability(
        protocol_version=_req_str(obj, "protocolVersion", what),
        provider_name=_opt_str(obj, "providerName", what) or "",
        pipeline_id=_req_str(obj, "pipelineId", what),
        contract_version=_req_str(obj, "contractVersion", what),
        release_version=_req_str(obj, "releaseVersion", what),
        artifact_id=_opt_str(obj, "artifactId", what) or "",
        artifact_digest=_opt_str(obj, "artifactDigest", what) or "",
        payload_encodings=_str_list(obj, "payloadEncodings", what),
        worker_protocols=_str_list(obj, "workerProtocols", what),
    )
