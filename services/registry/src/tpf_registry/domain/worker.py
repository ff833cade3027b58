"""Workers: registration identity checks and the lifecycle derived from heartbeats."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlparse

from tpf_errors import FailedPrecondition, InvalidArgument
from tpf_registry.domain.release import Release

LOCAL_ENDPOINT = "in-process"


class WorkerState(StrEnum):
    """Effective worker state (TPF_WIRE §6.2), derived at read time, never stored."""

    HEALTHY = "HEALTHY"
    STALE = "STALE"
    DRAINING = "DRAINING"
    UNAVAILABLE = "UNAVAILABLE"


class WorkerProtocol(StrEnum):
    """Transports a dispatcher can use; the SQL CHECK on `workers.protocol` lists the same."""

    LOCAL = "local"
    GRPC = "grpc"
    REST = "rest"
    SQS = "sqs"


@dataclass(frozen=True, slots=True)
class LifecycleWindows:
    """How long without a heartbeat a worker stays HEALTHY, then STALE (0 disables each)."""

    stale_after_ms: int = 120_000
    unavailable_after_ms: int = 600_000


@dataclass(frozen=True, slots=True)
class Worker:
    tenant_id: str
    pipeline_id: str
    worker_id: str
    contract_version: str
    release_version: str
    protocol: WorkerProtocol
    endpoint: str
    artifact_id: str
    artifact_digest: str
    registered_at_epoch_ms: int
    last_heartbeat_at_epoch_ms: int
    draining_since_epoch_ms: int
    version: int

    def state(self, *, now_ms: int, windows: LifecycleWindows) -> WorkerState:
        return worker_state(
            draining_since_ms=self.draining_since_epoch_ms,
            last_heartbeat_ms=self.last_heartbeat_at_epoch_ms,
            now_ms=now_ms,
            windows=windows,
        )


def worker_state(
    *, draining_since_ms: int, last_heartbeat_ms: int, now_ms: int, windows: LifecycleWindows
) -> WorkerState:
    """The effective state of a worker record with these columns, at `now_ms`."""
    if draining_since_ms > 0:
        return WorkerState.DRAINING
    silent_ms = now_ms - last_heartbeat_ms
    if windows.unavailable_after_ms and silent_ms > windows.unavailable_after_ms:
        return WorkerState.UNAVAILABLE
    if windows.stale_after_ms and silent_ms > windows.stale_after_ms:
        return WorkerState.STALE
    return WorkerState.HEALTHY


@dataclass(frozen=True, slots=True)
class HostedBuild:
    """A pipeline build a dispatcher runs in-process; it serves every release of its contract."""

    pipeline_id: str
    contract_version: str
    artifact_digest: str = ""


@dataclass(frozen=True, slots=True)
class HostDeclaration:
    """What one dispatcher hosts and where (ServeLocalWorkers). None scopes mean "every"."""

    host_id: str
    pipelines: tuple[HostedBuild, ...]
    tenant_ids: tuple[str, ...] | None
    release_versions: tuple[str, ...] | None
    ttl_ms: int


@dataclass(frozen=True, slots=True)
class WorkerRegistration:
    """A validated registration request (values trimmed, protocol lower-cased)."""

    tenant_id: str
    pipeline_id: str
    worker_id: str
    contract_version: str
    release_version: str
    protocol: WorkerProtocol
    endpoint: str
    artifact_id: str
    artifact_digest: str


def parse_protocol(value: str) -> WorkerProtocol:
    text = value.strip().lower()
    try:
        return WorkerProtocol(text)
    except ValueError:
        raise InvalidArgument(
            "WORKER_PROTOCOL_UNSUPPORTED",
            f"Unsupported worker protocol {text!r}; use one of local, grpc, rest, sqs",
            protocol=text,
        ) from None


def normalize_endpoint(protocol: WorkerProtocol, endpoint: str) -> str:
    """Check the endpoint fits the protocol; `local` defaults to `in-process`."""
    endpoint = endpoint.strip()
    if protocol is WorkerProtocol.LOCAL:
        if endpoint and endpoint != LOCAL_ENDPOINT:
            raise InvalidArgument(
                "FIELD_INVALID",
                f"A local worker's endpoint must be {LOCAL_ENDPOINT!r}",
                field="endpoint",
                value=endpoint,
            )
        return LOCAL_ENDPOINT
    if not endpoint:
        raise InvalidArgument(
            "FIELD_REQUIRED",
            f"endpoint is required for a {protocol.value} worker",
            field="endpoint",
        )
    if protocol is WorkerProtocol.GRPC:
        host, sep, port = endpoint.rpartition(":")
        if "://" not in endpoint and (not sep or not host or not port.isdigit()):
            raise InvalidArgument(
                "FIELD_INVALID",
                "A grpc worker's endpoint must be host:port or a gRPC target URI",
                field="endpoint",
                value=endpoint,
            )
        return endpoint
    parsed = urlparse(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InvalidArgument(
            "FIELD_INVALID",
            f"A {protocol.value} worker's endpoint must be an http(s) URL",
            field="endpoint",
            value=endpoint,
        )
    return endpoint


def check_identity(registration: WorkerRegistration, release: Release) -> None:
    """A worker must host exactly the release it names (TPF_WIRE §8.4, checked up front)."""
    checks = [
        ("contractVersion", release.contract_version, registration.contract_version),
    ]
    # Artifact id and digest are compared only when the worker gives them, as TPF does.
    if registration.artifact_id:
        checks.append(("artifactId", release.primary_artifact_id, registration.artifact_id))
    if registration.artifact_digest:
        checks.append(
            ("artifactDigest", release.primary_artifact_digest, registration.artifact_digest)
        )
    for field, expected, actual in checks:
        if expected != actual:
            raise FailedPrecondition(
                "WORKER_IDENTITY_MISMATCH",
                f"Worker {registration.worker_id} {field} {actual} does not match release "
                f"{registration.release_version} ({field} {expected})",
                field=field,
                expected=expected,
                actual=actual,
            )
