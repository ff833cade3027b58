"""RegistrySettings: the TPF_* variables the registry reads (documented in README)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tpf_config import CommonSettings


class RegistrySettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="TPF_")

    grpc_port: int = Field(default=50052, ge=0, le=65535)
    # Apply pending migrations before serving. Set false where `tpf-registry migrate` runs once
    # per rollout (deploy/k8s/overlays/production: an init container); the server then only
    # checks that the schema is current and stops with a message naming the command if not.
    migrate_on_start: bool = True
    # Where artifact copies live: a directory, a `file:` URI or `s3://bucket/prefix`.
    # Empty means `<data_dir>/releases` (TPF's layout: `<root>/artifacts/<sha256><ext>`).
    artifact_store: str = ""
    # S3 endpoint for `s3://` artifacts and the S3 store (empty = AWS); credentials come from
    # the standard AWS variables, profile or role.
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    # Worker lifecycle: HEALTHY → STALE after this long without a heartbeat (0 disables).
    worker_stale_after_s: float = Field(default=120.0, ge=0)
    # STALE → UNAVAILABLE after this long without a heartbeat (0 disables).
    worker_unavailable_after_s: float = Field(default=600.0, ge=0)
    # Largest gRPC message accepted (RegisterRelease may carry uploaded artifacts).
    grpc_max_message_bytes: int = Field(default=80 * 1024 * 1024, ge=4 * 1024 * 1024)
