"""Which coordinator refusals are permanent (reply + dead letter) and which are retried."""

from __future__ import annotations

import grpc
import pytest

from tpf_errors import ErrorKind, TpfError, field_required
from tpf_rpc.errors import to_status
from tpf_sqs_bridge.refusals import refusal_of_invalid_message, refusal_of_rpc_error


def rpc_error(kind: ErrorKind, reason: str) -> grpc.aio.AioRpcError:
    status = to_status(TpfError(kind, reason, f"{reason} happened", {"k": "v"}), domain="tpf.x")
    return grpc.aio.AioRpcError(
        status.code,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(*status.trailing_metadata),
        details=status.details,
    )


@pytest.mark.parametrize(
    ("kind", "reason", "is_permanent"),
    [
        (ErrorKind.INVALID_ARGUMENT, "PAYLOAD_UNDECODABLE", True),
        (ErrorKind.NOT_FOUND, "INTERACTION_NOT_FOUND", True),
        (ErrorKind.ALREADY_EXISTS, "IDEMPOTENCY_KEY_REUSED", True),
        (ErrorKind.FAILED_PRECONDITION, "NO_ACTIVE_RELEASE", True),
        (ErrorKind.PERMISSION_DENIED, "TENANT_NOT_IN_SCOPE", True),
        (ErrorKind.RESOURCE_EXHAUSTED, "PAYLOAD_TOO_LARGE", True),
        (ErrorKind.RESOURCE_EXHAUSTED, "RATE_LIMITED", False),
        (ErrorKind.UNAVAILABLE, "NO_WORKER_AVAILABLE", False),
        (ErrorKind.ABORTED, "VERSION_CONFLICT", False),
        (ErrorKind.UNAUTHENTICATED, "TOKEN_INVALID", False),
        (ErrorKind.INTERNAL, "INTERNAL", False),
    ],
)
def test_refusals_are_classified_by_code_and_reason(
    kind: ErrorKind, reason: str, is_permanent: bool
) -> None:
    refusal = refusal_of_rpc_error(rpc_error(kind, reason))
    assert (refusal.reason, refusal.is_permanent) == (reason, is_permanent)
    assert refusal.message == f"{reason} happened" and refusal.metadata == {"k": "v"}


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (grpc.StatusCode.DEADLINE_EXCEEDED, "The coordinator did not answer in time"),
        (grpc.StatusCode.UNAVAILABLE, "The coordinator cannot be reached"),
    ],
)
def test_a_failure_without_error_info_is_the_coordinator_being_unreachable(
    code: grpc.StatusCode, message: str
) -> None:
    error = grpc.aio.AioRpcError(
        code,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(),
        details="failed to connect to all addresses; last error: ipv4:10.0.0.7:50051",
    )
    refusal = refusal_of_rpc_error(error)
    assert (refusal.reason, refusal.code, refusal.message) == (
        "COORDINATOR_UNAVAILABLE",
        code.name,
        message,
    )
    assert (refusal.is_permanent, refusal.is_outage) == (False, True)


@pytest.mark.parametrize(
    ("reason", "is_outage"),
    [
        ("DATABASE_UNAVAILABLE", True),
        ("REGISTRY_UNAVAILABLE", True),
        ("ARTIFACT_STORE_UNAVAILABLE", True),
        # Nothing runs the pipeline: the sender is told once the receives are spent.
        ("NO_WORKER_AVAILABLE", False),
    ],
)
def test_a_dependency_being_down_is_an_outage_with_its_real_cause(
    reason: str, is_outage: bool
) -> None:
    refusal = refusal_of_rpc_error(rpc_error(ErrorKind.UNAVAILABLE, reason))
    assert (refusal.reason, refusal.is_permanent, refusal.is_outage) == (reason, False, is_outage)


def test_the_bridges_own_validation_is_permanent() -> None:
    refusal = refusal_of_invalid_message(field_required("tenantId"))
    assert (refusal.reason, refusal.code, refusal.is_permanent) == (
        "FIELD_REQUIRED",
        "INVALID_ARGUMENT",
        True,
    )
    assert refusal.metadata == {"field": "tenantId"}
