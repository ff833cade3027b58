"""The worker-protocol JSON codecs: TPF's exact keys and order, strict decoding, "only" rules."""

import json
from typing import Any

import pytest

from tpf_envelope import Envelope
from tpf_worker.protocol.capability import Capability, decode_capability, encode_capability
from tpf_worker.protocol.command import Command, decode_command, encode_command
from tpf_worker.protocol.malformed import InvalidCommand, MalformedEnvelope
from tpf_worker.protocol.result import Result, decode_result, encode_result

_ENVELOPE = Envelope("java.lang.String", "application/tpf-transition+json", '"hi"')
_COMMAND = Command(
    tenant_id="t1",
    execution_id="e1",
    pipeline_id="p",
    contract_version="c1",
    release_version="r1",
    current_step_index=0,
    stop_before_step_index=-1,
    attempt=0,
    result_shape="SINGLE",
    execution_version=3,
    transition_key="e1:0:0",
    trace_id="e1:0:0",
    payload_type_id=_ENVELOPE.payload_type_id,
    payload_encoding=_ENVELOPE.payload_encoding,
    payload=_ENVELOPE.payload,
)


def _command_obj(**changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(encode_command(_COMMAND))
    obj.update(changes)
    return obj


def test_command_is_written_with_tpf_keys_in_order_and_compact() -> None:
    text = encode_command(_COMMAND).decode()
    assert list(json.loads(text)) == [
        "tenantId", "executionId", "pipelineId", "contractVersion", "releaseVersion",
        "currentStepIndex", "stopBeforeStepIndex", "attempt", "resultShape", "executionVersion",
        "transitionKey", "traceId", "payloadTypeId", "payloadEncoding", "payload",
    ]  # fmt: skip
    assert ", " not in text and '": ' not in text
    assert decode_command(text) == _COMMAND
    assert _COMMAND.input_envelope() == _ENVELOPE


def test_command_with_unknown_key_is_malformed() -> None:
    with pytest.raises(MalformedEnvelope, match="unknown field 'extra'"):
        decode_command(json.dumps(_command_obj(extra=1)))


@pytest.mark.parametrize(
    "text", ["", "not json", "[1]", "null", '{"tenantId": NaN}', '{"tenantId": 5}']
)
def test_command_that_does_not_bind_is_malformed(text: str) -> None:
    with pytest.raises(MalformedEnvelope):
        decode_command(text)


def test_unknown_result_shape_fails_binding_not_validation() -> None:
    with pytest.raises(MalformedEnvelope) as raised:
        decode_command(json.dumps(_command_obj(resultShape="MULTI")))
    assert not isinstance(raised.value, InvalidCommand)


@pytest.mark.parametrize(
    "changes",
    [
        {"tenantId": None},
        {"payload": None},
        {"traceId": None},
        {"transitionKey": "  "},
        {"attempt": -1},
        {"executionVersion": -1},
        {"currentStepIndex": 2, "stopBeforeStepIndex": 1},
    ],
)
def test_command_breaking_worker_validation_is_invalid(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidCommand):
        decode_command(json.dumps(_command_obj(**changes)))


def test_missing_keys_bind_like_tpf_records() -> None:
    obj = _command_obj()
    for key in ("contractVersion", "releaseVersion", "stopBeforeStepIndex", "attempt"):
        del obj[key]
    command = decode_command(json.dumps(obj))
    assert command.contract_version == "local-contract"
    assert command.release_version == "local-contract"
    assert command.stop_before_step_index == 0  # not -1: TPF binds a missing int as 0
    assert command.attempt == 0


def test_blank_release_version_defaults_to_contract_version() -> None:
    command = decode_command(json.dumps(_command_obj(releaseVersion=" ")))
    assert command.release_version == "c1"


def test_any_negative_stop_means_no_stop() -> None:
    command = decode_command(json.dumps(_command_obj(currentStepIndex=4, stopBeforeStepIndex=-7)))
    assert command.stop_before_step_index == -7


def test_completed_result_round_trips_with_tpf_keys() -> None:
    result = Result.completed([_ENVELOPE], terminal_output_published=True)
    obj = json.loads(encode_result(result))
    assert list(obj) == [
        "outcome", "outputPayloads", "awaitSuspension", "failure",
        "terminalOutputPublished", "terminalInputPassthrough",
    ]  # fmt: skip
    assert obj["outputPayloads"] == [
        {"payloadTypeId": "java.lang.String", "payloadEncoding": _ENVELOPE.payload_encoding,
         "payload": '"hi"'}
    ]  # fmt: skip
    assert decode_result(encode_result(result)) == result


def test_failed_result_round_trips_with_null_message() -> None:
    result = Result.failed("java.lang.IllegalStateException", None)
    obj = json.loads(encode_result(result))
    assert obj["failure"] == {"failureClass": "java.lang.IllegalStateException", "message": None}
    assert decode_result(encode_result(result)) == result


def _suspension() -> dict[str, Any]:
    return {
        "tenantId": "t1",
        "executionId": "e1",
        "unitId": "u1",
        "stepIndex": 2,
        "unit": {"tenantId": "t1", "unitId": "u1", "status": "WAITING_EXTERNAL", "version": 1},
        "interactions": [
            {"interactionId": "i1", "requestPayload": {"anything": {"goes": [1, 2.5]}}}
        ],
    }


def test_waiting_result_keeps_suspension_and_exact_numbers() -> None:
    text = json.dumps({"outcome": "WAITING_EXTERNAL", "awaitSuspension": _suspension()})
    decoded = decode_result(text.replace("2.5", "2.50"))
    assert b"2.50" in encode_result(decoded)
    assert decoded.outcome == "WAITING_EXTERNAL"
    assert decoded.await_suspension is not None
    assert decoded.await_suspension["unitId"] == "u1"


@pytest.mark.parametrize(
    "where",
    [
        lambda s: s.update(extra=1),
        lambda s: s["unit"].update(extra=1),
        lambda s: s["interactions"][0].update(extra=1),
    ],
)
def test_unknown_keys_in_nested_suspension_records_are_refused(where: Any) -> None:
    suspension = _suspension()
    where(suspension)
    text = json.dumps({"outcome": "WAITING_EXTERNAL", "awaitSuspension": suspension})
    with pytest.raises(MalformedEnvelope, match="unknown field 'extra'"):
        decode_result(text)
    with pytest.raises(MalformedEnvelope):
        encode_result(Result.waiting(suspension))


def test_unknown_key_in_failure_or_output_envelope_is_refused() -> None:
    with pytest.raises(MalformedEnvelope):
        decode_result(
            '{"outcome":"FAILED","failure":{"failureClass":"X","message":null,"cause":"y"}}'
        )
    with pytest.raises(MalformedEnvelope):
        decode_result(
            '{"outcome":"COMPLETED","outputPayloads":[{"payloadTypeId":"a",'
            '"payloadEncoding":"b","payload":"c","x":1}]}'
        )


def test_decoded_output_items_is_ignored_and_missing_keys_are_tolerated() -> None:
    result = decode_result('{"outcome":"COMPLETED","decodedOutputItems":[1,2]}')
    assert result == Result.completed([])


@pytest.mark.parametrize(
    "obj",
    [
        {"outcome": "FAILED", "failure": {"failureClass": "X"}, "outputPayloads": [
            {"payloadTypeId": "a", "payloadEncoding": "b", "payload": "c"}]},
        {"outcome": "COMPLETED", "terminalOutputPublished": True,
         "terminalInputPassthrough": True},
        {"outcome": "COMPLETED", "failure": {"failureClass": "X"}},
        {"outcome": "FAILED"},
        {"outcome": "WAITING_EXTERNAL"},
        {"outcome": "COMPLETED", "awaitSuspension": {}},
        {"outcome": "FAILED", "failure": {"failureClass": "X"}, "terminalOutputPublished": True},
        {"outcome": "RETRY"},
        {"outputPayloads": []},
    ],
)  # fmt: skip
def test_results_breaking_the_only_rules_are_invalid(obj: dict[str, Any]) -> None:
    with pytest.raises(MalformedEnvelope):
        decode_result(json.dumps(obj))


def test_encoding_an_invalid_result_is_refused() -> None:
    with pytest.raises(MalformedEnvelope):
        encode_result(Result("FAILED", output_payloads=(_ENVELOPE,)))


def test_capability_round_trips_with_tpf_keys() -> None:
    capability = Capability("p", "c1", "r1", artifact_id="a", provider_name="grpc")
    obj = json.loads(encode_capability(capability))
    assert list(obj) == [
        "protocolVersion", "providerName", "pipelineId", "contractVersion", "releaseVersion",
        "artifactId", "artifactDigest", "payloadEncodings", "workerProtocols",
    ]  # fmt: skip
    assert obj["payloadEncodings"] == ["application/tpf-transition-envelope+json"]
    assert obj["artifactDigest"] == ""
    assert decode_capability(encode_capability(capability)) == capability


def test_capability_with_unknown_key_is_refused() -> None:
    obj = json.loads(encode_capability(Capability("p", "c", "r")))
    obj["extra"] = True
    with pytest.raises(MalformedEnvelope):
        decode_capability(json.dumps(obj))
