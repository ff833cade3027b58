"""RegistrySettings: the TPF_* variables the registry reads (documented in README)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from tpf_config import CommonSettings
from tpf_registry.artifacts.roots import parse_roots


class RegistrySettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="TPF_")

    grpc_port: int = Field(default=50052, ge=0, le=65535)
    # Apply pending migrations before serving. Set false where `tpf-registry migrate` runs once
    # per rollout (deploy/k8s/overlays/production: an init container); the server then only
    # checks that the schema is current and stops with a message naming the command if not.
    migrate_on_start: bool = True
    # Directories descriptors and artifact files may be read from (absolute, `:`-separated).
    # Empty means the data dir only; `make dev` adds its release directory and the temp dir.
    # Anything else is refused with PERMISSION_DENIED PATH_NOT_ALLOWED.
    registry_artifact_roots: str = ""
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

    @field_validator("registry_artifact_roots")
    @classmethod
    def _roots_are_absolute(cls, value: str) -> str:
        parse_roots(value)
        return value

    def artifact_roots(self) -> tuple[Path, ...]:
        """The configured roots, or the data dir when none are."""
        return parse_roots(self.registry_artifact_roots) or (self.data_dir.absolute(),)
