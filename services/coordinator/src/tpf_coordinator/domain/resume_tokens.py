"""Signed resume tokens for await completions, in TPF's format (TPF_WIRE §5.4).

`base64url(payloadJson) "." base64url(HMAC-SHA256(secret, first part's ASCII))`, URL-safe alphabet
without padding. The payload is compact JSON with the keys `tenantId, interactionId, correlationId,
executionId, stepId, deadlineEpochMs, issuedAtEpochMs` in that order and non-ASCII written as raw
UTF-8, so tokens we issue are byte-identical to TPF's. Validation follows TPF's checks and order,
and answers every failure with reason RESUME_TOKEN_INVALID; a missing secret is a configuration
error (ValueError → INTERNAL), as TPF answers 500.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from tpf_errors import InvalidArgument

# TPF refuses longer tokens before reading lookup hints from them.
MAX_TOKEN_CHARS = 8192

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_LONG_TEXT = re.compile(r"[+-]?[0-9]+")
_STRING_CLAIMS = (
    ("tenantId", "tenant_id"),
    ("interactionId", "interaction_id"),
    ("correlationId", "correlation_id"),
    ("executionId", "execution_id"),
    ("stepId", "step_id"),
)


@dataclass(frozen=True, slots=True)
class ResumeTokenClaims:
    """What a token is bound to: one interaction of one await of one execution, and a deadline.

    As an `expected` value for `verify`, `issued_at_epoch_ms` is ignored (TPF does not check it).
    """

    tenant_id: str
    interaction_id: str
    correlation_id: str
    execution_id: str
    step_id: str
    deadline_epoch_ms: int
    issued_at_epoch_ms: int = 0


def issue(
    secret: bytes,
    *,
    tenant_id: str,
    interaction_id: str,
    correlation_id: str,
    execution_id: str,
    step_id: str,
    deadline_epoch_ms: int,
    issued_at_epoch_ms: int,
) -> str:
    payload = {
        "tenantId": tenant_id,
        "interactionId": interaction_id,
        "correlationId": correlation_id,
        "executionId": execution_id,
        "stepId": step_id,
        "deadlineEpochMs": deadline_epoch_ms,
        "issuedAtEpochMs": issued_at_epoch_ms,
    }
    payload_json = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    encoded_payload = _encode(payload_json.encode("utf-8"))
    return f"{encoded_payload}.{_encode(_sign(secret, encoded_payload))}"


def read_unverified(token: str) -> ResumeTokenClaims:
    """The claims of a token, NOT verified: a lookup hint only, to find the interaction to
    `verify` the token against. Requires non-blank `tenantId` and `interactionId` (as TPF)."""
    if len(token) > MAX_TOKEN_CHARS:
        raise _rejected("Invalid resume token size")
    encoded_payload, _ = _split(token)
    payload = _decode_payload(encoded_payload)
    tenant_id = payload.get("tenantId")
    interaction_id = payload.get("interactionId")
    if not isinstance(tenant_id, str) or not tenant_id.strip():
        raise _rejected("Invalid resume token lookup hints")
    if not isinstance(interaction_id, str) or not interaction_id.strip():
        raise _rejected("Await resume token does not contain an interaction id")

    def text(key: str) -> str:
        value = payload.get(key)
        return value if isinstance(value, str) else ""

    def number(key: str) -> int:
        try:
            return _read_long(payload, key)
        except InvalidArgument:
            return 0

    return ResumeTokenClaims(
        tenant_id=tenant_id.strip(),
        interaction_id=interaction_id.strip(),
        correlation_id=text("correlationId"),
        execution_id=text("executionId"),
        step_id=text("stepId"),
        deadline_epoch_ms=number("deadlineEpochMs"),
        issued_at_epoch_ms=number("issuedAtEpochMs"),
    )


def verify(secret: bytes, token: str, *, expected: ResumeTokenClaims, now_ms: int) -> None:
    """Accept `token` for the interaction described by `expected` at `now_ms`, or raise
    InvalidArgument RESUME_TOKEN_INVALID."""
    encoded_payload, encoded_signature = _split(token)
    expected_signature = _sign(secret, encoded_payload)
    try:
        supplied_signature = _decode(encoded_signature)
        payload_bytes = _decode(encoded_payload)
    except ValueError:
        raise _rejected("Malformed await resume token") from None
    if not hmac.compare_digest(expected_signature, supplied_signature):
        raise _rejected("Invalid await resume token signature")
    payload = _parse_payload(payload_bytes)
    for claim, attribute in _STRING_CLAIMS:
        if payload.get(claim) != getattr(expected, attribute):
            raise _rejected(f"Await resume token {claim} mismatch", claim=claim)
    deadline_epoch_ms = _read_long(payload, "deadlineEpochMs")
    if deadline_epoch_ms != expected.deadline_epoch_ms:
        raise _rejected("Await resume token deadline mismatch", claim="deadlineEpochMs")
    if now_ms > deadline_epoch_ms:
        raise _rejected(
            "Await resume token is expired", deadlineEpochMs=deadline_epoch_ms, nowEpochMs=now_ms
        )


def _rejected(message: str, **metadata: str | int) -> InvalidArgument:
    return InvalidArgument("RESUME_TOKEN_INVALID", message, **metadata)


def _sign(secret: bytes, encoded_payload: str) -> bytes:
    if not secret:
        raise ValueError("a resume token secret must be configured to issue or check tokens")
    return hmac.new(secret, encoded_payload.encode("utf-8"), hashlib.sha256).digest()


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(part: str) -> bytes:
    """Strict base64url, padded or not (Java's URL decoder); anything else is a ValueError."""
    if not _BASE64URL.fullmatch(part):
        raise ValueError("not base64url")
    unpadded = part.rstrip("=")
    padded = unpadded + "=" * (-len(unpadded) % 4)
    if len(unpadded) % 4 == 1 or (len(part) != len(unpadded) and part != padded):
        raise ValueError("bad base64url length or padding")
    try:
        return base64.urlsafe_b64decode(padded)
    except binascii.Error as error:
        raise ValueError(str(error)) from error


def _split(token: str) -> tuple[str, str]:
    if not token.strip():
        raise _rejected("resumeToken must not be blank")
    parts = token.split(".")
    if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
        raise _rejected("Malformed await resume token")
    return parts[0], parts[1]


def _decode_payload(encoded_payload: str) -> dict[str, Any]:
    try:
        payload_bytes = _decode(encoded_payload)
    except ValueError:
        raise _rejected("Malformed await resume token payload") from None
    return _parse_payload(payload_bytes)


def _parse_payload(payload_bytes: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(payload_bytes)
    except ValueError:
        raise _rejected("Malformed await resume token payload") from None
    if not isinstance(payload, dict):
        raise _rejected("Malformed await resume token payload")
    return payload


def _read_long(payload: dict[str, Any], key: str) -> int:
    """TPF's readLong: a JSON number (truncated to an integer) or a decimal integer string."""
    value = payload.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if isinstance(value, str) and value.strip():
        if _LONG_TEXT.fullmatch(value):
            return int(value)
        raise _rejected(f"Await resume token {key} is invalid", claim=key)
    raise _rejected(f"Await resume token {key} is missing", claim=key)
