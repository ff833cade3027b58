"""Releases: the record TPF calls `PipelineReleaseRecord`, and the rules of registration."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from tpf_registry.domain.contract import PipelineContract
from tpf_registry.domain.descriptor import ReleaseDescriptor


class ReleaseStatus(StrEnum):
    """Release lifecycle; the SQL CHECK on `releases.status` lists the same names."""

    REGISTERED = "REGISTERED"
    ACTIVE = "ACTIVE"


class DispatchMode(StrEnum):
    """One step per worker command, or a whole segment up to the next await."""

    STEP = "STEP"
    SEGMENT = "SEGMENT"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retry policy of a step; `None` fields take TPF's defaults (TPF_WIRE §10)."""

    max_retries: int | None = None
    initial_delay_ms: int | None = None
    multiplier: float | None = None
    max_delay_ms: int | None = None
    jitter: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "maxRetries": self.max_retries,
            "initialDelayMs": self.initial_delay_ms,
            "multiplier": self.multiplier,
            "maxDelayMs": self.max_delay_ms,
            "jitter": self.jitter,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RetryPolicy:
        return cls(
            max_retries=raw.get("maxRetries"),
            initial_delay_ms=raw.get("initialDelayMs"),
            multiplier=raw.get("multiplier"),
            max_delay_ms=raw.get("maxDelayMs"),
            jitter=raw.get("jitter"),
        )


@dataclass(frozen=True, slots=True)
class ReleasePolicy:
    """How executions of a release are retried and dispatched (our extension to TPF)."""

    default_retry: RetryPolicy = field(default_factory=RetryPolicy)
    step_retry: tuple[tuple[str, RetryPolicy], ...] = ()
    dispatch_mode: DispatchMode = DispatchMode.STEP

    def to_json(self) -> dict[str, Any]:
        return {
            "defaultRetry": self.default_retry.to_json(),
            "stepRetry": {name: policy.to_json() for name, policy in self.step_retry},
            "dispatchMode": self.dispatch_mode.value,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ReleasePolicy:
        return cls(
            default_retry=RetryPolicy.from_json(raw.get("defaultRetry") or {}),
            step_retry=tuple(
                sorted(
                    (name, RetryPolicy.from_json(value))
                    for name, value in (raw.get("stepRetry") or {}).items()
                )
            ),
            dispatch_mode=DispatchMode(raw.get("dispatchMode") or DispatchMode.STEP.value),
        )


@dataclass(frozen=True, slots=True)
class StoredArtifact:
    """One descriptor artifact after fetching: where the registry's copy lives."""

    artifact_id: str
    kind: str
    digest: str
    source_uri: str
    stored_uri: str
    size_bytes: int
    has_contract: bool


@dataclass(frozen=True, slots=True)
class Release:
    tenant_id: str
    pipeline_id: str
    release_version: str
    contract_version: str
    status: ReleaseStatus
    version: int
    descriptor: ReleaseDescriptor
    contract: PipelineContract | None
    policy: ReleasePolicy
    artifacts: tuple[StoredArtifact, ...]
    primary_artifact_id: str
    primary_artifact_digest: str
    primary_artifact_uri: str
    primary_artifact_size_bytes: int
    primary_artifact_checksum: str
    created_at_epoch_ms: int
    updated_at_epoch_ms: int
    activated_at_epoch_ms: int

    @property
    def metadata_fingerprint(self) -> str:
        """sha256 of everything immutable about a release.

        Two registrations of one version are the same release iff their fingerprints match
        (TPF: "identical immutable metadata": versions, primary artifact id/digest/stored
        copy/size/checksum, the whole descriptor incl. artifact URIs, the whole contract); we
        include the policy as well, since it changes how executions behave.
        """
        material = {
            "contractVersion": self.contract_version,
            "descriptor": self.descriptor.to_json(),
            "contract": self.contract.to_record_json() if self.contract else None,
            "policy": self.policy.to_json(),
            "primary": [
                self.primary_artifact_id,
                self.primary_artifact_digest,
                self.primary_artifact_uri,
                self.primary_artifact_size_bytes,
                self.primary_artifact_checksum,
            ],
        }
        canonical = json.dumps(material, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def activated(self, *, now_ms: int) -> Release:
        return replace(
            self,
            status=ReleaseStatus.ACTIVE,
            version=self.version + 1,
            activated_at_epoch_ms=now_ms,
            updated_at_epoch_ms=now_ms,
        )


def primary_artifact(artifacts: tuple[StoredArtifact, ...]) -> StoredArtifact:
    """TPF's rule: the last artifact that carries a contract; if none does, the first."""
    with_contract = [a for a in artifacts if a.has_contract]
    return with_contract[-1] if with_contract else artifacts[0]


@dataclass(frozen=True, slots=True)
class Activation:
    """One activation: who made which release active, replacing which."""

    tenant_id: str
    pipeline_id: str
    sequence: int
    release_version: str
    previous_release_version: str
    activated_by: str
    reason: str
    activated_at_epoch_ms: int
