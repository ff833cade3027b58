"""Worker state derives from heartbeats and drain (TPF_WIRE §6.2) and identity must match."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tpf_errors import FailedPrecondition, InvalidArgument
from tpf_registry.domain.worker import (
    LifecycleWindows,
    Worker,
    WorkerProtocol,
    WorkerState,
    normalize_endpoint,
    parse_protocol,
)

WINDOWS = LifecycleWindows(stale_after_ms=120_000, unavailable_after_ms=600_000)
WORKER = Worker(
    tenant_id="t",
    pipeline_id="p",
    worker_id="w",
    contract_version="c",
    release_version="r",
    protocol=WorkerProtocol.LOCAL,
    endpoint="in-process",
    artifact_id="",
    artifact_digest="",
    registered_at_epoch_ms=0,
    last_heartbeat_at_epoch_ms=1_000_000,
    draining_since_epoch_ms=0,
    version=0,
)


@pytest.mark.parametrize(
    ("silent_ms", "state"),
    [
        (0, WorkerState.HEALTHY),
        (120_000, WorkerState.HEALTHY),
        (120_001, WorkerState.STALE),
        (600_000, WorkerState.STALE),
        (600_001, WorkerState.UNAVAILABLE),
    ],
)
def test_state_follows_time_since_last_heartbeat(silent_ms: int, state: WorkerState) -> None:
    assert WORKER.state(now_ms=1_000_000 + silent_ms, windows=WINDOWS) is state


def test_draining_wins_over_everything() -> None:
    draining = replace(WORKER, draining_since_epoch_ms=5)
    assert draining.state(now_ms=10**12, windows=WINDOWS) is WorkerState.DRAINING


def test_zero_windows_disable_staleness() -> None:
    off = LifecycleWindows(stale_after_ms=0, unavailable_after_ms=0)
    assert WORKER.state(now_ms=10**12, windows=off) is WorkerState.HEALTHY


def test_protocols_are_lower_cased_and_unknown_ones_refused() -> None:
    assert parse_protocol(" GRPC ") is WorkerProtocol.GRPC
    with pytest.raises(InvalidArgument) as caught:
        parse_protocol("kafka")
    assert caught.value.reason == "WORKER_PROTOCOL_UNSUPPORTED"


@pytest.mark.parametrize(
    ("protocol", "endpoint", "expected"),
    [
        (WorkerProtocol.LOCAL, "", "in-process"),
        (WorkerProtocol.LOCAL, "in-process", "in-process"),
        (WorkerProtocol.GRPC, "worker:50061", "worker:50061"),
        (WorkerProtocol.GRPC, "dns:///worker:50061", "dns:///worker:50061"),
        (WorkerProtocol.REST, "http://w:8080", "http://w:8080"),
        (WorkerProtocol.SQS, "http://127.0.0.1:5000/123/q", "http://127.0.0.1:5000/123/q"),
    ],
)
def test_valid_endpoints(protocol: WorkerProtocol, endpoint: str, expected: str) -> None:
    assert normalize_endpoint(protocol, endpoint) == expected


@pytest.mark.parametrize(
    ("protocol", "endpoint", "reason"),
    [
        (WorkerProtocol.LOCAL, "http://x", "FIELD_INVALID"),
        (WorkerProtocol.GRPC, "", "FIELD_REQUIRED"),
        (WorkerProtocol.GRPC, "no-port", "FIELD_INVALID"),
        (WorkerProtocol.REST, "w:8080", "FIELD_INVALID"),
    ],
)
def test_invalid_endpoints(protocol: WorkerProtocol, endpoint: str, reason: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        normalize_endpoint(protocol, endpoint)
    assert caught.value.reason == reason


def test_identity_mismatch_names_the_field() -> None:
    from tests.unit.registry_samples import sample_release
    from tpf_registry.domain.worker import WorkerRegistration, check_identity

    release = sample_release()
    registration = WorkerRegistration(
        tenant_id="t",
        pipeline_id=release.pipeline_id,
        worker_id="w",
        contract_version=release.contract_version,
        release_version=release.release_version,
        protocol=WorkerProtocol.LOCAL,
        endpoint="in-process",
        artifact_id=release.primary_artifact_id,
        artifact_digest="sha256:" + "0" * 64,
    )
    with pytest.raises(FailedPrecondition) as caught:
        check_identity(registration, release)
    assert caught.value.reason == "WORKER_IDENTITY_MISMATCH"
    assert caught.value.metadata["field"] == "artifactDigest"
    check_identity(replace(registration, artifact_digest=""), release)
