"""Release use cases: register (fetch, verify, store, validate, persist), activate, read."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from tpf_errors import AlreadyExists, InvalidArgument, NotFound
from tpf_registry.artifacts.contract_reader import read_embedded_contract
from tpf_registry.artifacts.roots import ReadableRoots
from tpf_registry.artifacts.staging import ArtifactFetcher, StagedArtifact, discard
from tpf_registry.artifacts.store import ArtifactStore
from tpf_registry.domain.clock import Clock
from tpf_registry.domain.contract import CONTRACT_PATH, PipelineContract, parse_contract
from tpf_registry.domain.descriptor import DescriptorArtifact, ReleaseDescriptor, parse_descriptor
from tpf_registry.domain.release import (
    Activation,
    Release,
    ReleasePolicy,
    ReleaseStatus,
    StoredArtifact,
    primary_artifact,
)
from tpf_registry.store.protocol import RegisterOutcome, ReleaseStore

log = logging.getLogger(__name__)

MAX_DESCRIPTOR_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class RegistrationRequest:
    tenant_id: str
    pipeline_id: str
    descriptor_path: str = ""
    descriptor_json: str = ""
    uploads: dict[str, bytes] = field(default_factory=dict)
    policy: ReleasePolicy = field(default_factory=ReleasePolicy)


@dataclass(frozen=True, slots=True)
class _FetchedArtifact:
    declared: DescriptorArtifact
    staged: StagedArtifact | None
    contract: PipelineContract | None
    contract_raw: bytes | None


def _unreadable_descriptor(path: str, message: str) -> InvalidArgument:
    return InvalidArgument("DESCRIPTOR_UNREADABLE", message, path=path)


def _mismatch(field_name: str, expected: str, actual: str, message: str) -> InvalidArgument:
    return InvalidArgument(
        "CONTRACT_MISMATCH", message, field=field_name, expected=expected, actual=actual
    )


class ReleaseRegistry:
    """Registers and activates releases; all durable state goes through `ReleaseStore`."""

    def __init__(
        self,
        *,
        store: ReleaseStore,
        artifact_store: ArtifactStore,
        fetcher: ArtifactFetcher,
        roots: ReadableRoots,
        clock: Clock,
    ) -> None:
        self._store = store
        self._artifact_store = artifact_store
        self._fetcher = fetcher
        self._roots = roots
        self._clock = clock

    async def register(self, request: RegistrationRequest, *, actor: str) -> RegisterOutcome:
        text, base_dir = await self._descriptor_text(request)
        descriptor = parse_descriptor(text)
        if descriptor.pipeline_id != request.pipeline_id:
            raise _mismatch(
                "pipelineId",
                request.pipeline_id,
                descriptor.pipeline_id,
                "Release descriptor pipelineId does not match request path",
            )
        staged: list[StagedArtifact] = []
        try:
            fetched = []
            for artifact in descriptor.artifacts:
                item = await self._fetch_and_validate(
                    artifact, descriptor, request.uploads, base_dir
                )
                if item.staged is not None:
                    staged.append(item.staged)
                fetched.append(item)
            stored = [await self._store_copy(item) for item in fetched]
            release, contract_raw = self._build_release(request, descriptor, fetched, tuple(stored))
            outcome = await self._store.insert(release, actor=actor, contract_raw=contract_raw)
        finally:
            await asyncio.to_thread(discard, staged)
        if not outcome.created:
            if outcome.release.metadata_fingerprint != release.metadata_fingerprint:
                raise AlreadyExists(
                    "RELEASE_VERSION_CONFLICT",
                    "Release version is already registered with different metadata; register "
                    "the changed build under a new releaseVersion",
                    releaseVersion=release.release_version,
                )
            log.info(
                "release already registered with identical metadata",
                extra={"tenant": request.tenant_id, "release_version": release.release_version},
            )
        else:
            log.info(
                "release registered",
                extra={"tenant": request.tenant_id, "release_version": release.release_version},
            )
        return outcome

    async def _descriptor_text(self, request: RegistrationRequest) -> tuple[str, Path | None]:
        if request.descriptor_path and request.descriptor_json:
            raise InvalidArgument(
                "FIELD_INVALID",
                "Send either releaseDescriptorPath or releaseDescriptorJson, not both",
                field="releaseDescriptorPath",
            )
        if request.descriptor_json:
            if len(request.descriptor_json) > MAX_DESCRIPTOR_BYTES:
                raise InvalidArgument(
                    "DESCRIPTOR_INVALID",
                    "Release descriptor is larger than 1 MiB",
                    detail="too large",
                )
            return request.descriptor_json, None
        path_text = request.descriptor_path.strip()
        if not path_text:
            raise InvalidArgument(
                "FIELD_REQUIRED",
                "releaseDescriptorPath is required",
                field="releaseDescriptorPath",
            )
        path = Path(path_text)
        if not path.is_absolute():
            raise _unreadable_descriptor(path_text, "releaseDescriptorPath must be absolute")
        path = self._roots.check(path, field="releaseDescriptorPath")
        try:
            data = await asyncio.to_thread(_read_small_file, path)
        except (OSError, UnicodeDecodeError):
            raise _unreadable_descriptor(
                path_text, "releaseDescriptorPath must point to a readable file"
            ) from None
        return data, path.parent

    async def _fetch_and_validate(
        self,
        artifact: DescriptorArtifact,
        descriptor: ReleaseDescriptor,
        uploads: dict[str, bytes],
        base_dir: Path | None,
    ) -> _FetchedArtifact:
        if not artifact.kind.is_fetched:
            return _FetchedArtifact(artifact, None, None, None)
        staged = await self._fetcher.fetch(
            artifact_id=artifact.artifact_id, uri=artifact.uri, uploads=uploads, base_dir=base_dir
        )
        try:
            actual = f"sha256:{staged.sha256_hex}"
            if actual != artifact.digest:
                # The file's actual hash is not echoed: it would tell a caller the digest of a
                # file they may not be able to read themselves.
                raise InvalidArgument(
                    "ARTIFACT_DIGEST_MISMATCH",
                    f"Release artifact digest does not match local file checksum "
                    f"(artifact {artifact.artifact_id}: declared {artifact.digest})",
                    artifactId=artifact.artifact_id,
                    expectedDigest=artifact.digest,
                )
            raw = await asyncio.to_thread(read_embedded_contract, staged.path)
            if raw is None:
                if artifact.kind.requires_contract:
                    raise InvalidArgument(
                        "CONTRACT_MISSING",
                        f"Release JAR artifact is missing {CONTRACT_PATH} "
                        f"(artifact {artifact.artifact_id})",
                        artifactId=artifact.artifact_id,
                    )
                return _FetchedArtifact(artifact, staged, None, None)
            contract = parse_contract(raw, artifact_id=artifact.artifact_id)
            if contract.pipeline_id != descriptor.pipeline_id:
                raise _mismatch(
                    "pipelineId",
                    descriptor.pipeline_id,
                    contract.pipeline_id,
                    "Release artifact contract pipelineId does not match release descriptor",
                )
            if contract.contract_version != descriptor.contract_version:
                raise _mismatch(
                    "contractVersion",
                    descriptor.contract_version,
                    contract.contract_version,
                    "Release artifact contractVersion does not match release descriptor",
                )
            return _FetchedArtifact(artifact, staged, contract, raw)
        except BaseException:
            staged.path.unlink(missing_ok=True)
            raise

    async def _store_copy(self, item: _FetchedArtifact) -> StoredArtifact:
        declared = item.declared
        if item.staged is None:
            return StoredArtifact(
                artifact_id=declared.artifact_id,
                kind=declared.kind.value,
                digest=declared.digest,
                source_uri=declared.uri,
                stored_uri="",
                size_bytes=0,
                has_contract=False,
            )
        stored_uri = await self._artifact_store.put(item.staged)
        return StoredArtifact(
            artifact_id=declared.artifact_id,
            kind=declared.kind.value,
            digest=declared.digest,
            source_uri=declared.uri,
            stored_uri=stored_uri,
            size_bytes=item.staged.size_bytes,
            has_contract=item.contract is not None,
        )

    def _build_release(
        self,
        request: RegistrationRequest,
        descriptor: ReleaseDescriptor,
        fetched: list[_FetchedArtifact],
        stored: tuple[StoredArtifact, ...],
    ) -> tuple[Release, bytes | None]:
        primary = primary_artifact(stored)
        primary_fetch = next(f for f in fetched if f.declared.artifact_id == primary.artifact_id)
        checksum = f"sha256:{primary_fetch.staged.sha256_hex}" if primary_fetch.staged else ""
        now_ms = self._clock.now_ms()
        release = Release(
            tenant_id=request.tenant_id,
            pipeline_id=request.pipeline_id,
            release_version=descriptor.release_version,
            contract_version=descriptor.contract_version,
            status=ReleaseStatus.REGISTERED,
            version=0,
            descriptor=descriptor,
            contract=primary_fetch.contract,
            policy=request.policy,
            artifacts=stored,
            primary_artifact_id=primary.artifact_id,
            primary_artifact_digest=primary.digest,
            primary_artifact_uri=primary.stored_uri,
            primary_artifact_size_bytes=primary.size_bytes,
            primary_artifact_checksum=checksum,
            created_at_epoch_ms=now_ms,
            updated_at_epoch_ms=now_ms,
            activated_at_epoch_ms=0,
        )
        return release, primary_fetch.contract_raw

    async def activate(
        self,
        tenant_id: str,
        pipeline_id: str,
        release_version: str,
        *,
        actor: str,
        reason: str,
    ) -> tuple[Release, Activation | None]:
        release = await self.get(tenant_id, pipeline_id, release_version)
        # As TPF: refuse to activate a release whose stored artifact went missing or changed.
        if release.primary_artifact_uri:
            await self._artifact_store.verify(
                artifact_id=release.primary_artifact_id,
                uri=release.primary_artifact_uri,
                size_bytes=release.primary_artifact_size_bytes,
                sha256_hex=release.primary_artifact_checksum.removeprefix("sha256:"),
            )
        result = await self._store.activate(
            tenant_id,
            pipeline_id,
            release_version,
            actor=actor,
            reason=reason,
            now_ms=self._clock.now_ms(),
        )
        if result is None:
            raise _release_not_found(release_version)
        if result[1] is not None:
            log.info(
                "release activated",
                extra={"tenant": tenant_id, "release_version": release_version, "actor": actor},
            )
        return result

    async def get(self, tenant_id: str, pipeline_id: str, release_version: str) -> Release:
        release = await self._store.get(tenant_id, pipeline_id, release_version)
        if release is None:
            raise _release_not_found(release_version)
        return release

    async def get_active(self, tenant_id: str, pipeline_id: str) -> Release:
        release = await self._store.get_active(tenant_id, pipeline_id)
        if release is None:
            raise NotFound(
                "RELEASE_NOT_FOUND",
                f"No active release is registered for pipeline {pipeline_id}",
                releaseVersion="active",
                pipelineId=pipeline_id,
            )
        return release

    async def list_releases(
        self, tenant_id: str, pipeline_id: str, *, after_seq: int, limit: int
    ) -> list[tuple[int, Release]]:
        return await self._store.list_after(
            tenant_id, pipeline_id, after_seq=after_seq, limit=limit
        )

    async def list_activations(
        self, tenant_id: str, pipeline_id: str, *, before_sequence: int | None, limit: int
    ) -> list[Activation]:
        return await self._store.list_activations_before(
            tenant_id, pipeline_id, before_sequence=before_sequence, limit=limit
        )


def _release_not_found(release_version: str) -> NotFound:
    return NotFound(
        "RELEASE_NOT_FOUND",
        f"Release {release_version} is not registered for this pipeline",
        releaseVersion=release_version,
    )


def _read_small_file(path: Path) -> str:
    if not path.is_file():
        raise FileNotFoundError(path)
    if path.stat().st_size > MAX_DESCRIPTOR_BYTES:
        raise OSError("descriptor larger than 1 MiB")
    return path.read_text(encoding="utf-8")
