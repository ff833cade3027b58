"""CoordinatorSettings: the TPF_* variables the coordinator reads (documented in README)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tpf_config import CommonSettings


class CoordinatorSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="TPF_")

    grpc_port: int = Field(default=50051, ge=0, le=65535)
    # Apply pending migrations before serving. Set false where `tpf-coordinator migrate` runs once
    # per rollout (deploy/k8s/overlays/production: an init container); the server then only
    # checks that the schema is current and stops with a message naming the command if not.
    migrate_on_start: bool = True
    # The release registry, for active releases, contracts and healthy workers.
    registry_target: str = "127.0.0.1:50052"
    # Token the coordinator presents to the registry (any role, every tenant); `env:`/`file:`
    # references are resolved like TPF_AUTH_TOKENS secrets.
    registry_token: str | None = Field(default=None, repr=False)
    # How long an active release / healthy-worker answer is reused before asking again.
    registry_cache_s: float = Field(default=2.0, ge=0)
    # Deadline of each call to the registry, seconds.
    registry_timeout_s: float = Field(default=5.0, gt=0)
    # TPF's idempotency-key policy (TPF_WIRE §10).
    idempotency_policy: Literal["OPTIONAL_CLIENT_KEY", "CLIENT_KEY_REQUIRED", "SERVER_KEY_ONLY"] = (
        "OPTIONAL_CLIENT_KEY"
    )
    # Payload type ids outside JDK/generic types must start with one of these (comma-separated).
    allowed_payload_prefixes: str = "org.pipelineframework."
    # Largest payload envelope accepted, in bytes (larger: RESOURCE_EXHAUSTED PAYLOAD_TOO_LARGE).
    max_payload_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # Payloads (inputs, step outputs, results) larger than this go to the payload store and the
    # row keeps a reference.
    payload_offload_bytes: int = Field(default=256 * 1024, ge=1024)
    # Where offloaded payloads live: a directory, a `file:` URI or `s3://bucket/prefix`.
    # Empty means `<data_dir>/payloads` (fine for one machine; use S3 for several replicas).
    payload_store: str = ""
    # S3 endpoint for an `s3://` payload store (empty = AWS); credentials from the AWS chain.
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    # Largest gRPC message; above max_payload_bytes so an oversized payload gets our reasoned
    # refusal, and room for CompleteWork batches carrying many outputs.
    grpc_max_message_bytes: int = Field(default=64 * 1024 * 1024, ge=4 * 1024 * 1024)
    # Default lease of a claim, and the longest a dispatcher may ask for.
    lease_ms: int = Field(default=30_000, ge=1_000)
    max_lease_ms: int = Field(default=600_000, ge=1_000)
    # Longest ClaimWork long-poll.
    max_claim_wait_ms: int = Field(default=30_000, ge=0)
    # Consecutive lease expiries on one step before it fails (poison-pill guard).
    max_lease_expiries: int = Field(default=3, ge=1)
    # Sweeper period and batch size (TPF: sweep-interval PT30S, sweep-limit 100).
    sweep_interval_ms: int = Field(default=1_000, ge=100)
    sweep_limit: int = Field(default=100, ge=1)
    # How long an interaction record lives after its deadline (TPF: ttlEpochS = deadline +
    # 1 day). Then it is EXPIRED: gone from the pending list, and a completion is NOT_FOUND.
    interaction_record_ttl_ms: int = Field(default=86_400_000, ge=0)
    # HMAC key of resume tokens (TPF: resume-token-secret); `env:`/`file:` references allowed.
    resume_token_secret: str | None = Field(default=None, repr=False)
    # Where terminal failures are published besides the dead_letters table: TPF's log line.
    dlq_log: bool = True
