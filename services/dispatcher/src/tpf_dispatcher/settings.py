"""DispatcherSettings: the TPF_* variables the dispatcher reads (documented in README)."""

from __future__ import annotations

import os
import socket

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from tpf_config import CommonSettings, env_var_name


def _default_dispatcher_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def split_list(value: str) -> tuple[str, ...]:
    """A comma-separated setting as its trimmed, non-empty items."""
    return tuple(item.strip() for item in value.split(",") if item.strip())


class DispatcherSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="TPF_")

    # Port of the dispatcher's own gRPC server (health + DispatcherService status).
    grpc_port: int = Field(default=50053, ge=0, le=65535)

    # The coordinator's WorkService, and the token presented to it (role `worker` or `admin`);
    # `env:`/`file:` references are resolved like TPF_AUTH_TOKENS secrets.
    coordinator_target: str = "127.0.0.1:50051"
    coordinator_token: str | None = Field(default=None, repr=False)
    # The registry (ResolveWorkers, GetRelease), and its token (any role).
    registry_target: str = "127.0.0.1:50052"
    registry_token: str | None = Field(default=None, repr=False)

    # Lease owner and history actor; stable for the process's life. Default `<host>:<pid>`.
    dispatcher_id: str = Field(default_factory=_default_dispatcher_id, min_length=1, max_length=128)
    # Most work items held at once; claims ask only for free slots (back-pressure). Larger
    # windows mean fewer, larger claim and completion batches (bench/README.md: 64/32 ran W2 at
    # under half the rate of 256/100). Remote workers see at most this many concurrent calls.
    max_in_flight: int = Field(default=256, ge=1, le=10_000)
    # Most items per ClaimWork call.
    claim_batch_size: int = Field(default=100, ge=1, le=1000)
    # ClaimWork long-poll wait, milliseconds (the coordinator refuses more than 60 s).
    claim_wait_ms: int = Field(default=5_000, ge=0, le=60_000)
    # Lease asked for each claim and each renewal, milliseconds.
    lease_ms: int = Field(default=30_000, ge=1_000, le=600_000)
    # How often leases of running work are renewed, milliseconds; unset means lease_ms / 3.
    renew_interval_ms: int | None = Field(default=None, ge=100)
    # Timeout of a worker call when the step declares none, seconds (TPF: PT30S).
    request_timeout_s: float = Field(default=30.0, gt=0)
    # Deadline of each call to the coordinator or registry, seconds (a ClaimWork adds its wait).
    rpc_timeout_s: float = Field(default=10.0, gt=0)
    # Most attempts of one claim or report while the coordinator answers UNAVAILABLE or not in
    # time (backoff 0.05 s doubling to 2 s between them: 8 attempts span about 5 s); a report
    # still undelivered then is dropped and its work requeued once its leases expire.
    coordinator_attempts: int = Field(default=8, ge=1, le=100)
    # How long outcomes are collected into one CompleteWork call, milliseconds.
    complete_linger_ms: int = Field(default=5, ge=0, le=1_000)
    # Keep the claim after a completed step and run the next one at once (one commit per step,
    # no claim between steps); the coordinator may refuse, and the step is then claimed anew.
    continue_claim: bool = True
    # Most outcomes per CompleteWork call.
    complete_batch_size: int = Field(default=200, ge=1, le=1000)
    # CompleteWork calls in flight at once: the next batch is sent while the coordinator
    # commits the previous one.
    complete_concurrency: int = Field(default=2, ge=1, le=16)
    # On SIGTERM: how long in-flight work may still finish and be reported, seconds.
    drain_timeout_s: float = Field(default=30.0, ge=0)
    # How long a registry answer (workers of a release, a release's step count) is reused.
    worker_cache_s: float = Field(default=5.0, ge=0)

    # Only claim work of these tenants / pipelines / release versions (comma-separated; empty
    # means any within the coordinator token's scope).
    tenant_ids: str = ""
    pipeline_ids: str = ""
    release_versions: str = ""

    # HMAC secret shared with rest/grpc/sqs workers (TPF_WIRE §9.4); `env:`/`file:` allowed.
    # Unset: remote workers cannot be called (each such call is reported as a failure).
    worker_shared_secret: str | None = Field(default=None, repr=False)
    # gRPC workers: plaintext channels (TPF's `worker.grpc.plaintext`), or TLS checked against
    # TPF_TLS_CA_FILE (the system's CAs without it). Unset: TLS exactly when TPF_TLS_CA_FILE is.
    worker_grpc_plaintext: bool | None = None
    # REST workers: connect timeout, seconds (TPF: PT2S).
    worker_rest_connect_timeout_s: float = Field(default=2.0, gt=0)

    # SQS workers: the response queue this dispatcher reads replies from (one per dispatcher is
    # not required: replies are demultiplexed by request id). Unset: sqs workers are unreachable.
    sqs_response_queue_url: str | None = None
    sqs_endpoint_url: str | None = None
    sqs_region: str = "us-east-1"
    sqs_access_key_id: str | None = Field(default=None, repr=False)
    sqs_secret_access_key: str | None = Field(default=None, repr=False)

    # Python pipelines run in-process, `package.module:ATTRIBUTE` comma-separated. Each serves
    # every `local` worker record of a release of its own contract (same pipeline id and contract
    # version, artifact digest equal where both name one), in the tenants this dispatcher claims.
    local_pipelines: str = ""
    # Tenants in which the dispatcher also registers a `local` record of its own for each hosted
    # pipeline, comma-separated; empty registers none (records registered by others are served
    # all the same).
    local_worker_tenants: str = ""
    # How often the dispatcher declares what it hosts and heartbeats the records it serves; a
    # dispatcher that stops declaring stops counting after three intervals.
    local_worker_heartbeat_s: float = Field(default=10.0, gt=0)

    # Extra failure classes that are not retryable, comma-separated. TPF also treats loadable
    # subclasses of NonRetryableException so; we cannot load Java classes, so list them here.
    # NonRetryableException itself and the SDK's input-decode failure are always classified.
    non_retryable_failure_classes: str = ""

    @model_validator(mode="after")
    def _renew_before_lease_ends(self) -> DispatcherSettings:
        if self.renew_interval_ms is not None and self.renew_interval_ms >= self.lease_ms:
            raise ValueError(
                f"{env_var_name(type(self), 'renew_interval_ms')} must be below "
                f"{env_var_name(type(self), 'lease_ms')} ({self.lease_ms}), or leases expire "
                "between renewals"
            )
        return self

    @property
    def effective_renew_interval_s(self) -> float:
        interval_ms = self.renew_interval_ms if self.renew_interval_ms else self.lease_ms // 3
        return interval_ms / 1000
