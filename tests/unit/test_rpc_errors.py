"""TpfError and its mapping to a gRPC status with exactly one ErrorInfo."""

import base64
from collections.abc import Callable

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from tpf.common.v1 import error_reason_pb2
from tpf_errors import (
    Aborted,
    AlreadyExists,
    ErrorKind,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    TpfError,
    Unauthenticated,
    Unavailable,
    field_invalid,
    field_required,
)
from tpf_rpc.errors import (
    KIND_TO_CODE,
    MAX_MESSAGE_CHARS,
    MAX_METADATA_VALUE_CHARS,
    MAX_STATUS_BYTES,
    bounded,
    error_info_of,
    internal_error,
    is_known_reason,
    to_status,
)

GRPC_DETAILS_KEY = "grpc-status-details-bin"


def _decode(status: grpc.Status) -> status_pb2.Status:
    """The google.rpc.Status a client would read from the trailing metadata."""
    [value] = [value for key, value in status.trailing_metadata if key == GRPC_DETAILS_KEY]
    assert isinstance(value, bytes)
    return status_pb2.Status.FromString(value)


def _trailer_bytes(status: grpc.Status) -> int:
    """What the status costs in trailers: grpc-message percent-encoded, binary values in
    base64."""
    message = sum(
        1 if 0x20 <= b <= 0x7E and b != 0x25 else 3 for b in status.details.encode("utf-8")
    )
    values = sum(
        len(base64.b64encode(v)) if isinstance(v, bytes) else len(v)
        for _, v in status.trailing_metadata
    )
    return message + values


def _only_error_info(status: status_pb2.Status) -> error_details_pb2.ErrorInfo:
    assert len(status.details) == 1
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return info


@pytest.mark.parametrize(
    ("error_class", "kind", "reason"),
    [
        (InvalidArgument, ErrorKind.INVALID_ARGUMENT, "FIELD_INVALID"),
        (NotFound, ErrorKind.NOT_FOUND, "EXECUTION_NOT_FOUND"),
        (AlreadyExists, ErrorKind.ALREADY_EXISTS, "IDEMPOTENCY_KEY_REUSED"),
        (FailedPrecondition, ErrorKind.FAILED_PRECONDITION, "NO_ACTIVE_RELEASE"),
        (Aborted, ErrorKind.ABORTED, "STALE_FENCING_TOKEN"),
        (ResourceExhausted, ErrorKind.RESOURCE_EXHAUSTED, "PAYLOAD_TOO_LARGE"),
        (Unavailable, ErrorKind.UNAVAILABLE, "DATABASE_UNAVAILABLE"),
        (Unauthenticated, ErrorKind.UNAUTHENTICATED, "TOKEN_INVALID"),
        (PermissionDenied, ErrorKind.PERMISSION_DENIED, "ROLE_REQUIRED"),
    ],
)
def test_each_convenience_class_maps_to_its_kind_and_code(
    error_class: Callable[..., TpfError], kind: ErrorKind, reason: str
) -> None:
    error = error_class(reason, "Fix it.", someKey="v")
    assert error.kind is kind
    status = to_status(error, domain="tpf.test")
    assert status.code == grpc.StatusCode[kind.value]
    decoded = _decode(status)
    assert decoded.code == status.code.value[0]
    assert decoded.message == status.details == "Fix it."
    info = _only_error_info(decoded)
    assert (info.reason, info.domain, dict(info.metadata)) == (reason, "tpf.test", {"someKey": "v"})


def test_every_kind_has_a_grpc_code() -> None:
    assert set(KIND_TO_CODE) == set(ErrorKind)
    assert len(set(KIND_TO_CODE.values())) == len(ErrorKind)


def test_metadata_values_are_strings_and_may_be_named_like_the_arguments() -> None:
    error = Aborted(
        "STALE_FENCING_TOKEN",
        "Drop the work and claim again.",
        executionId="e-1",
        expectedVersion=3,
        currentVersion=4,
        message="a metadata key, not the message",
    )
    assert error.message == "Drop the work and claim again."
    assert error.metadata == {
        "executionId": "e-1",
        "expectedVersion": "3",
        "currentVersion": "4",
        "message": "a metadata key, not the message",
    }
    assert str(error) == "Drop the work and claim again."


@pytest.mark.parametrize(
    "reason", ["ERROR_REASON_TOKEN_MISSING", "token_missing", "Token-Missing", "", "A" * 64]
)
def test_malformed_reason_is_refused_at_construction(reason: str) -> None:
    with pytest.raises(ValueError, match="ErrorReason"):
        NotFound(reason, "x")


def test_reason_missing_from_the_proto_enum_is_refused_by_to_status() -> None:
    error = NotFound("RELEASE_GONE_FISHING", "x")
    with pytest.raises(ValueError, match=r"error_reason\.proto"):
        to_status(error, domain="tpf.test")


def test_unspecified_reason_is_refused() -> None:
    with pytest.raises(ValueError):
        to_status(NotFound("UNSPECIFIED", "x"), domain="tpf.test")


def test_known_reasons_follow_the_proto_enum() -> None:
    for name in error_reason_pb2.ErrorReason.keys():  # noqa: SIM118 - an EnumTypeWrapper, not a dict
        assert is_known_reason(name.removeprefix("ERROR_REASON_"))
    assert not is_known_reason("ERROR_REASON_TOKEN_MISSING")


def test_internal_error_carries_the_trace_id_in_message_and_metadata() -> None:
    status = to_status(internal_error("abc123"), domain="tpf.test")
    assert status.code == grpc.StatusCode.INTERNAL
    info = _only_error_info(_decode(status))
    assert info.reason == "INTERNAL"
    assert dict(info.metadata) == {"traceId": "abc123"}
    assert "abc123" in status.details


def test_field_helpers_build_invalid_argument_with_the_field_in_metadata() -> None:
    missing = field_required("pipeline_id")
    assert (missing.kind, missing.reason) == (ErrorKind.INVALID_ARGUMENT, "FIELD_REQUIRED")
    assert missing.metadata == {"field": "pipeline_id"}
    assert "pipeline_id" in missing.message

    invalid = field_invalid("digest", "must be sha256:<64 hex>")
    assert invalid.reason == "FIELD_INVALID"
    assert invalid.metadata == {"field": "digest", "detail": "must be sha256:<64 hex>"}
    assert "digest" in invalid.message and "sha256:<64 hex>" in invalid.message


def test_grpc_status_library_reads_back_what_to_status_wrote() -> None:
    status = to_status(NotFound("RELEASE_NOT_FOUND", "No 1.0.", releaseVersion="1.0"), domain="d.x")

    class FailedCall:
        def code(self) -> grpc.StatusCode:
            return status.code

        def details(self) -> str:
            return status.details

        def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
            return status.trailing_metadata

    parsed = rpc_status.from_call(FailedCall())
    assert _only_error_info(parsed).reason == "RELEASE_NOT_FOUND"


def test_empty_domain_is_refused() -> None:
    with pytest.raises(ValueError, match="domain"):
        to_status(NotFound("RELEASE_NOT_FOUND", "x"), domain="")


def test_bounded_keeps_short_text_and_cuts_long_text_with_a_marker() -> None:
    assert bounded("short", 10) == "short"
    cut = bounded("x" * 5_000, 100)
    assert len(cut) == 100
    assert cut.startswith("xxx") and cut.endswith("... [5000 characters, cut]")


def test_long_input_echoed_into_an_error_is_cut_in_message_and_metadata() -> None:
    long_id = "e" * 5_000
    status = to_status(
        NotFound("EXECUTION_NOT_FOUND", f"Execution not found: {long_id}", executionId=long_id),
        domain="tpf.test",
    )
    assert status.code == grpc.StatusCode.NOT_FOUND
    assert len(status.details) == MAX_MESSAGE_CHARS
    assert status.details.endswith("characters, cut]")
    info = _only_error_info(_decode(status))
    assert info.reason == "EXECUTION_NOT_FOUND"
    assert len(info.metadata["executionId"]) == MAX_METADATA_VALUE_CHARS
    assert _trailer_bytes(status) <= MAX_STATUS_BYTES


def test_a_message_of_characters_that_encode_long_is_shortened_to_fit_with_its_details() -> None:
    status = to_status(NotFound("EXECUTION_NOT_FOUND", "é😀" * 1_000), domain="tpf.test")
    assert _only_error_info(_decode(status)).reason == "EXECUTION_NOT_FOUND"
    assert _trailer_bytes(status) <= MAX_STATUS_BYTES


def test_details_too_large_for_the_trailers_degrade_to_the_plain_status() -> None:
    """Never INTERNAL: the code and (cut) message go out without the ErrorInfo."""
    metadata = {f"key{n}": "é" * 1_000 for n in range(40)}
    status = to_status(NotFound("EXECUTION_NOT_FOUND", "Not here.", **metadata), domain="d")
    assert status.code == grpc.StatusCode.NOT_FOUND
    assert status.details == "Not here."
    assert all(key != GRPC_DETAILS_KEY for key, _ in status.trailing_metadata)


def test_unavailable_tells_the_callers_channel_not_to_retry_on_top() -> None:
    unavailable = to_status(Unavailable("DATABASE_UNAVAILABLE", "Down."), domain="d")
    assert ("grpc-retry-pushback-ms", "-1") in unavailable.trailing_metadata
    not_found = to_status(NotFound("EXECUTION_NOT_FOUND", "No."), domain="d")
    assert all(key != "grpc-retry-pushback-ms" for key, _ in not_found.trailing_metadata)


def test_error_info_of_ignores_details_of_another_status() -> None:
    """A call whose status was replaced on the way (details of NOT_FOUND, code INTERNAL) has
    no ErrorInfo: a reason is not reported for the wrong code, and nothing raises."""
    written = to_status(NotFound("EXECUTION_NOT_FOUND", "No."), domain="d")
    mismatched = grpc.aio.AioRpcError(
        grpc.StatusCode.INTERNAL,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(*written.trailing_metadata),
        details="something else",
    )
    assert error_info_of(mismatched) is None
    matching = grpc.aio.AioRpcError(
        grpc.StatusCode.NOT_FOUND,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(*written.trailing_metadata),
        details="No.",
    )
    info = error_info_of(matching)
    assert info is not None and info.reason == "EXECUTION_NOT_FOUND"
