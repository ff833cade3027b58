"""The result document (§9.2): what a worker answers, built with `Result.completed`, `waiting` or
`failed`, and the "only" rules that tie each field to one outcome."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from tpf_envelope import Envelope, JsonValue, to_json_dict
from tpf_worker.protocol.malformed import MalformedEnvelope
from tpf_worker.protocol.strict_json import (
    boolean,
    json_bytes,
    json_object,
    optional_str,
    parse_object,
    reject_unknown,
    required_str,
)
from tpf_worker.protocol.suspension import check_suspension, ordered_suspension

_OUTCOMES: Final = ("COMPLETED", "WAITING_EXTERNAL", "FAILED")
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
        None if result.await_suspension is None else ordered_suspension(result.await_suspension)
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
    return json_bytes(obj, "result")


def decode_result(data: bytes | str) -> Result:
    """Read a result as a TPF coordinator does; any violation raises `MalformedEnvelope`."""
    what = "result"
    obj = parse_object(data, what)
    reject_unknown(obj, _RESULT_KEYS + _IGNORED_RESULT_KEYS, what)
    outcome = required_str(obj, "outcome", what)
    raw_outputs = obj.get("outputPayloads")
    if raw_outputs is None:
        raw_outputs = []
    if not isinstance(raw_outputs, list):
        raise MalformedEnvelope("result.outputPayloads must be an array")
    outputs: list[Envelope] = []
    for position, raw in enumerate(raw_outputs):
        outputs.append(_envelope(raw, f"result.outputPayloads[{position}]"))
    raw_suspension = obj.get("awaitSuspension")
    suspension = None if raw_suspension is None else json_object(raw_suspension, what)
    raw_failure = obj.get("failure")
    failure = None
    if raw_failure is not None:
        failure_obj = json_object(raw_failure, "result.failure")
        reject_unknown(failure_obj, _FAILURE_KEYS, "result.failure")
        failure = Failure(
            required_str(failure_obj, "failureClass", "result.failure"),
            optional_str(failure_obj, "message", "result.failure"),
        )
    result = Result(
        outcome=outcome,
        output_payloads=tuple(outputs),
        await_suspension=suspension,
        failure=failure,
        terminal_output_published=boolean(obj, "terminalOutputPublished", what),
        terminal_input_passthrough=boolean(obj, "terminalInputPassthrough", what),
    )
    _check_result(result)
    return result


def _envelope(raw: object, what: str) -> Envelope:
    """A nested payload envelope: exactly its three keys, each a non-null string (§2)."""
    obj = json_object(raw, what)
    reject_unknown(obj, _ENVELOPE_KEYS, what)
    return Envelope(
        required_str(obj, "payloadTypeId", what),
        required_str(obj, "payloadEncoding", what),
        required_str(obj, "payload", what),
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
        check_suspension(result.await_suspension)
