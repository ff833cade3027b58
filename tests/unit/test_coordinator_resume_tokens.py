"""Signed resume tokens in TPF's format (TPF_WIRE §5.4): issue, read, verify."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import replace
from typing import Any

import pytest

from tpf_coordinator.domain.resume_tokens import (
    ResumeTokenClaims,
    issue,
    read_unverified,
    verify,
)
from tpf_errors import InvalidArgument

SECRET = b"restaurant-resume-secret"
CLAIMS = ResumeTokenClaims(
    tenant_id="restaurant-demo",
    interaction_id="5b0c7a43-1f0e-4a59-8d3c-2f6e9b1a7c55",
    correlation_id="0e9d2a8f-3c41-3b7e-9f10-6a5b4c3d2e1f",
    execution_id="e-1",
    step_id="ProcessAwaitRestaurantDecisionService",
    deadline_epoch_ms=1_766_414_145_999,
    issued_at_epoch_ms=1_766_412_345_999,
)
NOW = 1_766_412_400_000


def issue_token(claims: ResumeTokenClaims = CLAIMS, secret: bytes = SECRET) -> str:
    return issue(
        secret,
        tenant_id=claims.tenant_id,
        interaction_id=claims.interaction_id,
        correlation_id=claims.correlation_id,
        execution_id=claims.execution_id,
        step_id=claims.step_id,
        deadline_epoch_ms=claims.deadline_epoch_ms,
        issued_at_epoch_ms=claims.issued_at_epoch_ms,
    )


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def signed(payload: bytes, secret: bytes = SECRET) -> str:
    """A token built independently of the module, from TPF_WIRE §5.4."""
    first = b64url(payload)
    return f"{first}.{b64url(hmac.new(secret, first.encode(), hashlib.sha256).digest())}"


def rejected(message: str) -> pytest.RaisesExc[InvalidArgument]:
    return pytest.raises(InvalidArgument, match=f"^{message}$")


def test_issued_token_is_tpfs_format_byte_for_byte() -> None:
    payload = (
        '{"tenantId":"restaurant-demo","interactionId":"5b0c7a43-1f0e-4a59-8d3c-2f6e9b1a7c55",'
        '"correlationId":"0e9d2a8f-3c41-3b7e-9f10-6a5b4c3d2e1f","executionId":"e-1",'
        '"stepId":"ProcessAwaitRestaurantDecisionService","deadlineEpochMs":1766414145999,'
        '"issuedAtEpochMs":1766412345999}'
    )
    token = issue_token()
    assert token == signed(payload.encode())
    assert "=" not in token


def test_non_ascii_claims_are_written_as_raw_utf8() -> None:
    token = issue_token(replace(CLAIMS, tenant_id="café"))
    first = token.split(".")[0]
    assert "café".encode() in base64.urlsafe_b64decode(first + "=" * (-len(first) % 4))


def test_round_trip() -> None:
    token = issue_token()
    assert read_unverified(token) == CLAIMS
    verify(SECRET, token, expected=CLAIMS, now_ms=NOW)


def test_verify_ignores_issued_at_of_the_expected_claims() -> None:
    verify(SECRET, issue_token(), expected=replace(CLAIMS, issued_at_epoch_ms=0), now_ms=NOW)


def test_token_is_valid_up_to_and_including_its_deadline() -> None:
    verify(SECRET, issue_token(), expected=CLAIMS, now_ms=CLAIMS.deadline_epoch_ms)
    with rejected("Await resume token is expired") as raised:
        verify(SECRET, issue_token(), expected=CLAIMS, now_ms=CLAIMS.deadline_epoch_ms + 1)
    assert raised.value.reason == "RESUME_TOKEN_INVALID"


def test_padded_base64url_is_accepted() -> None:
    first, second = issue_token().split(".")
    padded = f"{first}{'=' * (-len(first) % 4)}.{second}{'=' * (-len(second) % 4)}"
    assert padded != issue_token()
    verify(SECRET, padded, expected=CLAIMS, now_ms=NOW)
    assert read_unverified(padded) == CLAIMS


def test_wrong_secret_is_rejected() -> None:
    with rejected("Invalid await resume token signature"):
        verify(b"other", issue_token(), expected=CLAIMS, now_ms=NOW)


def test_tampered_payload_is_rejected() -> None:
    first, second = issue_token().split(".")
    payload = json.loads(base64.urlsafe_b64decode(first + "=" * (-len(first) % 4)))
    payload["deadlineEpochMs"] += 3_600_000
    forged = b64url(json.dumps(payload, separators=(",", ":")).encode()) + "." + second
    with rejected("Invalid await resume token signature"):
        verify(SECRET, forged, expected=CLAIMS, now_ms=NOW)


def test_tampered_signature_is_rejected() -> None:
    first, second = issue_token().split(".")
    flipped = ("A" if second[0] != "A" else "B") + second[1:]
    with rejected("Invalid await resume token signature"):
        verify(SECRET, f"{first}.{flipped}", expected=CLAIMS, now_ms=NOW)


@pytest.mark.parametrize(
    ("field", "claim"),
    [
        ("tenant_id", "tenantId"),
        ("interaction_id", "interactionId"),
        ("correlation_id", "correlationId"),
        ("execution_id", "executionId"),
        ("step_id", "stepId"),
    ],
)
def test_each_string_claim_must_match(field: str, claim: str) -> None:
    changed: dict[str, Any] = {field: "something-else"}
    expected = replace(CLAIMS, **changed)
    with rejected(f"Await resume token {claim} mismatch") as raised:
        verify(SECRET, issue_token(), expected=expected, now_ms=NOW)
    assert raised.value.metadata == {"claim": claim}


def test_deadline_must_match_the_stored_one() -> None:
    expected = replace(CLAIMS, deadline_epoch_ms=CLAIMS.deadline_epoch_ms + 1)
    with rejected("Await resume token deadline mismatch"):
        verify(SECRET, issue_token(), expected=expected, now_ms=NOW)


def test_deadline_may_be_a_numeric_string_as_tpf_reads_it() -> None:
    payload = json.loads(json.dumps({**_wire(CLAIMS), "deadlineEpochMs": "1766414145999"}))
    verify(SECRET, signed(json.dumps(payload).encode()), expected=CLAIMS, now_ms=NOW)


def test_missing_deadline_is_rejected() -> None:
    payload = {key: value for key, value in _wire(CLAIMS).items() if key != "deadlineEpochMs"}
    with rejected("Await resume token deadlineEpochMs is missing"):
        verify(SECRET, signed(json.dumps(payload).encode()), expected=CLAIMS, now_ms=NOW)


@pytest.mark.parametrize(
    "token",
    ["", "   ", "onlyonepart", "a.b.c", ".sig", "payload.", " . ", "a+b.c/d", "ab$.cd"],
)
def test_malformed_tokens_are_rejected(token: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        verify(SECRET, token, expected=CLAIMS, now_ms=NOW)
    assert raised.value.reason == "RESUME_TOKEN_INVALID"
    with pytest.raises(InvalidArgument):
        read_unverified(token)


def test_signed_garbage_payload_is_rejected() -> None:
    with rejected("Malformed await resume token payload"):
        verify(SECRET, signed(b"not json"), expected=CLAIMS, now_ms=NOW)
    with rejected("Malformed await resume token payload"):
        verify(SECRET, signed(b"[1, 2]"), expected=CLAIMS, now_ms=NOW)


def test_read_unverified_needs_tenant_and_interaction_and_a_sane_size() -> None:
    no_interaction = {**_wire(CLAIMS), "interactionId": "  "}
    with rejected("Await resume token does not contain an interaction id"):
        read_unverified(signed(json.dumps(no_interaction).encode()))
    with rejected("Invalid resume token lookup hints"):
        read_unverified(signed(json.dumps({**_wire(CLAIMS), "tenantId": 5}).encode()))
    with rejected("Invalid resume token size"):
        read_unverified("a" * 8_193)


def test_read_unverified_does_not_check_the_signature() -> None:
    assert read_unverified(issue_token(secret=b"unknown")).interaction_id == CLAIMS.interaction_id


def test_a_missing_secret_is_a_configuration_error_not_a_bad_token() -> None:
    with pytest.raises(ValueError):
        issue_token(secret=b"")
    with pytest.raises(ValueError):
        verify(b"", issue_token(), expected=CLAIMS, now_ms=NOW)


def _wire(claims: ResumeTokenClaims) -> dict[str, object]:
    return {
        "tenantId": claims.tenant_id,
        "interactionId": claims.interaction_id,
        "correlationId": claims.correlation_id,
        "executionId": claims.execution_id,
        "stepId": claims.step_id,
        "deadlineEpochMs": claims.deadline_epoch_ms,
        "issuedAtEpochMs": claims.issued_at_epoch_ms,
    }
