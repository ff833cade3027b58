"""What the registry needs from durable storage. Postgres implements it (store/postgres.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tpf_registry.domain.release import Activation, Release
from tpf_registry.domain.worker import HostDeclaration, Worker, WorkerProtocol, WorkerRegistration


@dataclass(frozen=True, slots=True)
class RegisterOutcome:
    """The stored release, and whether this call created it."""

    release: Release
    created: bool


class ReleaseStore(Protocol):
    """Releases, their artifacts and the activation history. Writes are atomic per call."""

    async def insert(
        self, release: Release, *, actor: str, contract_raw: bytes | None = None
    ) -> RegisterOutcome:
        """Insert the release with its artifacts and an event row, in one transaction.

        If the version exists already, nothing is written and the existing row is returned with
        `created=False`; the caller compares fingerprints.
        """

    async def get(self, tenant_id: str, pipeline_id: str, release_version: str) -> Release | None:
        """One release, or None."""

    async def get_active(self, tenant_id: str, pipeline_id: str) -> Release | None:
        """The ACTIVE release of the pipeline, or None."""

    async def list_after(
        self, tenant_id: str, pipeline_id: str, *, after_seq: int, limit: int
    ) -> list[tuple[int, Release]]:
        """Releases with insertion sequence greater than `after_seq`, oldest first."""

    async def activate(
        self,
        tenant_id: str,
        pipeline_id: str,
        release_version: str,
        *,
        actor: str,
        reason: str,
        now_ms: int,
    ) -> tuple[Release, Activation | None] | None:
        """Make the release ACTIVE and demote the previous one, with an activation record.

        Returns None if the release does not exist; `(release, None)` if it was active already.
        """

    async def list_activations_before(
        self, tenant_id: str, pipeline_id: str, *, before_sequence: int | None, limit: int
    ) -> list[Activation]:
        """Activations newest first, with sequence below `before_sequence` (None = from the top)."""


class WorkerStore(Protocol):
    """Worker records; their state is derived from the stored times, never stored."""

    async def upsert(self, registration: WorkerRegistration, *, actor: str, now_ms: int) -> Worker:
        """Create or replace the worker record (fresh heartbeat); a draining record stays
        draining."""

    async def heartbeat(
        self, tenant_id: str, pipeline_id: str, worker_id: str, *, now_ms: int, revived: bool
    ) -> Worker | None:
        """Record a heartbeat; `revived` logs an event (the worker was STALE or UNAVAILABLE)."""

    async def get(self, tenant_id: str, pipeline_id: str, worker_id: str) -> Worker | None:
        """One worker, or None."""

    async def drain(
        self, tenant_id: str, pipeline_id: str, worker_id: str, *, actor: str, now_ms: int
    ) -> Worker | None:
        """Mark the worker draining (idempotent); None if unknown."""

    async def undrain(
        self, tenant_id: str, pipeline_id: str, worker_id: str, *, actor: str, now_ms: int
    ) -> Worker | None:
        """End the worker's drain (idempotent); None if unknown."""

    async def delete(
        self, tenant_id: str, pipeline_id: str, worker_id: str, *, actor: str, now_ms: int
    ) -> Worker | None:
        """Remove the worker; returns the removed record, None if unknown."""

    async def list_after(
        self,
        tenant_id: str,
        pipeline_id: str,
        *,
        contract_version: str,
        release_version: str,
        after_worker_id: str,
        limit: int,
    ) -> list[Worker]:
        """Workers by id, after `after_worker_id`; empty filters match everything."""

    async def for_release(
        self,
        tenant_id: str,
        pipeline_id: str,
        release_version: str,
        *,
        protocol: WorkerProtocol | None,
        heartbeat_since_ms: int,
        now_ms: int,
    ) -> list[Worker]:
        """Non-draining workers of a release with a heartbeat at or after the given time;
        `local` ones only while a live host declaration serves them."""

    async def serve_local(
        self, declaration: HostDeclaration, *, now_ms: int, revive_before_ms: int | None
    ) -> list[Worker]:
        """Replace the host's declaration and heartbeat every `local` record it serves; records
        last heard of before `revive_before_ms` get a WORKER_REVIVED event."""
