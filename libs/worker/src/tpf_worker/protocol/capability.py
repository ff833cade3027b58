"""The capability document (§9.3): what a worker hosts and which protocols it speaks."""

from dataclasses import dataclass
from typing import Final

from tpf_envelope import ENVELOPE_ENCODING, JsonValue
from tpf_worker.protocol.strict_json import (
    json_bytes,
    optional_str,
    parse_object,
    reject_unknown,
    required_str,
    str_list,
)
from tpf_worker.protocol.version import PROTOCOL_VERSION

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
    return json_bytes(obj, "capability")


def decode_capability(data: bytes | str) -> Capability:
    """Read a capability document strictly; any violation raises `MalformedEnvelope`."""
    what = "capability"
    obj = parse_object(data, what)
    reject_unknown(obj, _CAPABILITY_KEYS, what)
    return Capability(
        protocol_version=required_str(obj, "protocolVersion", what),
        provider_name=optional_str(obj, "providerName", what) or "",
        pipeline_id=required_str(obj, "pipelineId", what),
        contract_version=required_str(obj, "contractVersion", what),
        release_version=required_str(obj, "releaseVersion", what),
        artifact_id=optional_str(obj, "artifactId", what) or "",
        artifact_digest=optional_str(obj, "artifactDigest", what) or "",
        payload_encodings=str_list(obj, "payloadEncodings", what),
        worker_protocols=str_list(obj, "workerProtocols", what),
    )
