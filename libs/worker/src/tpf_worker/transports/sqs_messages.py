"""The JSON bodies of TPF's SQS worker request and reply messages (TPF_WIRE §9.6).

Both are strict like every worker document: exactly the documented keys, in TPF's order. The
signature covers `requestId + "\\n" + envelope`, with METHOD `SQS` and a fixed PATH per direction.
"""

import json
from dataclasses import dataclass
from typing import Any, Final

from tpf_envelope import ENVELOPE_ENCODING
from tpf_worker.protocol.malformed import MalformedEnvelope
from tpf_worker.protocol.version import PROTOCOL_VERSION
from tpf_worker.signing import Signed, Verifier, sign

__all__ = [
    "REQUEST_PATH",
    "RESPONSE_PATH",
    "SIGNATURE_METHOD",
    "SqsReply",
    "SqsRequest",
    "decode_reply",
    "decode_request",
    "encode_reply",
    "encode_request",
    "signed_bytes",
]

SIGNATURE_METHOD: Final = "SQS"
REQUEST_PATH: Final = "/pipeline/worker/transitions/sqs/request"
RESPONSE_PATH: Final = "/pipeline/worker/transitions/sqs/response"

_REQUEST_KEYS: Final = (
    "requestId",
    "protocolVersion",
    "commandEncoding",
    "commandEnvelope",
    "timestamp",
    "nonce",
    "signature",
)
_REPLY_KEYS: Final = (
    "requestId",
    "protocolVersion",
    "resultEncoding",
    "resultEnvelope",
    "timestamp",
    "nonce",
    "signature",
)


def signed_bytes(request_id: str, envelope: str) -> bytes:
    """The bytes a message signature covers."""
    return f"{request_id}\n{envelope}".encode()


@dataclass(frozen=True, slots=True)
class SqsRequest:
    """A worker request; fields may be None when the sender left them out."""

    request_id: str | None
    protocol_version: str | None
    command_encoding: str | None
    command_envelope: str | None
    timestamp: str | None
    nonce: str | None
    signature: str | None

    def is_supported(self) -> bool:
        return (
            self.protocol_version == PROTOCOL_VERSION and self.command_encoding == ENVELOPE_ENCODING
        )

    async def verify(self, verifier: Verifier, *, record_nonce: bool) -> None:
        """Raises `SignatureRejected` (see `Verifier.verify`)."""
        await verifier.verify(
            SIGNATURE_METHOD,
            REQUEST_PATH,
            self.timestamp,
            self.nonce,
            self.signature,
            signed_bytes(self.request_id or "", self.command_envelope or ""),
            record_nonce=record_nonce,
        )


@dataclass(frozen=True, slots=True)
class SqsReply:
    """A worker reply; fields may be None when the sender left them out."""

    request_id: str | None
    protocol_version: str | None
    result_encoding: str | None
    result_envelope: str | None
    timestamp: str | None
    nonce: str | None
    signature: str | None

    def is_supported(self) -> bool:
        return (
            self.protocol_version == PROTOCOL_VERSION and self.result_encoding == ENVELOPE_ENCODING
        )

    async def verify(self, verifier: Verifier) -> None:
        """Raises `SignatureRejected` (see `Verifier.verify`)."""
        await verifier.verify(
            SIGNATURE_METHOD,
            RESPONSE_PATH,
            self.timestamp,
            self.nonce,
            self.signature,
            signed_bytes(self.request_id or "", self.result_envelope or ""),
        )


def _strict_object(body: str, keys: tuple[str, ...], what: str) -> dict[str, str | None]:
    try:
        parsed: Any = json.loads(body)
    except ValueError as error:
        raise MalformedEnvelope(f"{what} is not valid JSON: {error}") from None
    if not isinstance(parsed, dict):
        raise MalformedEnvelope(f"{what} must be a JSON object")
    unknown = [key for key in parsed if key not in keys]
    if unknown:
        raise MalformedEnvelope(f"{what} has unknown field {unknown[0]!r}")
    fields: dict[str, str | None] = {}
    for key in keys:
        value = parsed.get(key)
        if value is not None and not isinstance(value, str):
            raise MalformedEnvelope(f"{what}.{key} must be a string")
        fields[key] = value
    return fields


def encode_request(secret: str, request_id: str, command_json: str) -> str:
    signed = sign(secret, SIGNATURE_METHOD, REQUEST_PATH, signed_bytes(request_id, command_json))
    return _encode(_REQUEST_KEYS, request_id, command_json, signed)


def decode_request(body: str) -> SqsRequest:
    fields = _strict_object(body, _REQUEST_KEYS, "SQS worker request")
    return SqsRequest(*(fields[key] for key in _REQUEST_KEYS))


def encode_reply(secret: str, request_id: str, result_json: str) -> str:
    signed = sign(secret, SIGNATURE_METHOD, RESPONSE_PATH, signed_bytes(request_id, result_json))
    return _encode(_REPLY_KEYS, request_id, result_json, signed)


def decode_reply(body: str) -> SqsReply:
    fields = _strict_object(body, _REPLY_KEYS, "SQS worker reply")
    return SqsReply(*(fields[key] for key in _REPLY_KEYS))


def _encode(keys: tuple[str, ...], request_id: str, envelope: str, signed: Signed) -> str:
    values = (
        request_id,
        PROTOCOL_VERSION,
        ENVELOPE_ENCODING,
        envelope,
        signed.timestamp,
        signed.nonce,
        signed.signature,
    )
    return json.dumps(dict(zip(keys, values, strict=True)), separators=(",", ":"))
