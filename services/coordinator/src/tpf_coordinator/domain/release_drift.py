"""Release drift: which worker serves which release, what is still pinned where, and whether a
release can be retired. Pure rules over what the registry and the executions table say."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from tpf_coordinator.domain.model import ExecutionStatus

# In the enum's order: the drift query and the partial index of migration 0005 list them so.
NON_TERMINAL_STATUSES: tuple[ExecutionStatus, ...] = tuple(
    status for status in ExecutionStatus if not status.is_terminal
)


@dataclass(frozen=True, slots=True)
class ReleaseIdentity:
    """What decides which workers serve a release."""

    release_version: str
    pipeline_id: str
    contract_version: str
    primary_artifact_digest: str


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """A registered worker as the registry lists it; `state` is the WorkerState name."""

    worker_id: str
    pipeline_id: str
    contract_version: str
    release_version: str
    protocol: str
    endpoint: str
    artifact_id: str
    artifact_digest: str
    state: str
    registered_at_epoch_ms: int
    last_heartbeat_at_epoch_ms: int
    draining_since_epoch_ms: int


def serves(worker: WorkerRecord, release: ReleaseIdentity) -> bool:
    """A worker serves every release of its own contract (and artifact, where both name one),
    whatever release-version label its record carries."""
    if (worker.pipeline_id, worker.contract_version) != (
        release.pipeline_id,
        release.contract_version,
    ):
        return False
    if worker.artifact_digest and release.primary_artifact_digest:
        return worker.artifact_digest == release.primary_artifact_digest
    return True


class RetirementVerdict(StrEnum):
    """Why a release may (or may not) be retired; proto `RetirementVerdict` without prefix."""

    NOTHING_PINNED = "NOTHING_PINNED"
    PINNED_AND_SERVED = "PINNED_AND_SERVED"
    PINNED_AND_UNSERVED = "PINNED_AND_UNSERVED"
    ACTIVE = "ACTIVE"

    @property
    def is_safe(self) -> bool:
        return self in (RetirementVerdict.NOTHING_PINNED, RetirementVerdict.PINNED_AND_SERVED)


@dataclass(frozen=True, slots=True)
class Retirement:
    verdict: RetirementVerdict
    detail: str

    @property
    def is_safe(self) -> bool:
        return self.verdict.is_safe


def _executions(count: int) -> str:
    return f"{count} non-terminal execution{'' if count == 1 else 's'}"


def retirement_of(
    release_version: str,
    *,
    is_active: bool,
    pinned_count: int,
    healthy_worker_ids: Sequence[str],
) -> Retirement:
    """Safe when nothing non-terminal is pinned to the release, or a healthy worker serves the
    release its pinned executions still need; never for the active release."""
    if is_active:
        return Retirement(
            RetirementVerdict.ACTIVE,
            f"release {release_version} is the active release: new submissions pin it; "
            "activate another release before retiring it",
        )
    if pinned_count == 0:
        return Retirement(
            RetirementVerdict.NOTHING_PINNED,
            f"no non-terminal execution is pinned to release {release_version}: nothing needs "
            "its workers any more",
        )
    if healthy_worker_ids:
        return Retirement(
            RetirementVerdict.PINNED_AND_SERVED,
            f"{_executions(pinned_count)} pinned to release {release_version}, served by "
            f"healthy worker {', '.join(healthy_worker_ids)}: they can finish; keep a healthy "
            "worker for it until none is pinned",
        )
    return Retirement(
        RetirementVerdict.PINNED_AND_UNSERVED,
        f"{_executions(pinned_count)} pinned to release {release_version} and no healthy worker "
        "serves it: they cannot progress; register or revive a worker for it (or cancel them) "
        "before retiring it",
    )


@dataclass(frozen=True, slots=True)
class ReleaseDrift:
    """One release: its identity (None if the registry does not know it), what is pinned to it,
    who serves it, and whether it can be retired."""

    release_version: str
    identity: ReleaseIdentity | None
    is_active: bool
    pinned_by_status: Mapping[ExecutionStatus, int]
    healthy_worker_ids: tuple[str, ...]
    retirement: Retirement

    @property
    def pinned_count(self) -> int:
        return sum(self.pinned_by_status.values())

    @property
    def needs_a_worker(self) -> bool:
        return self.is_active or self.pinned_count > 0


@dataclass(frozen=True, slots=True)
class WorkerDrift:
    worker: WorkerRecord
    serves_active_release: bool
    last_healthy_worker_for: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DriftReport:
    tenant_id: str
    pipeline_id: str
    active_release_version: str
    workers: tuple[WorkerDrift, ...]
    releases: tuple[ReleaseDrift, ...]
    observed_at_ms: int


def releases_of_interest(
    *,
    active_release_version: str,
    pinned_release_versions: Iterable[str],
    workers: Iterable[WorkerRecord],
    requested_release_version: str = "",
) -> list[str]:
    """The releases a drift report covers, each once (order is decided by `build_report`)."""
    versions = {active_release_version, requested_release_version, *pinned_release_versions}
    versions.update(worker.release_version for worker in workers)
    versions.discard("")
    return sorted(versions)


@dataclass(frozen=True, slots=True)
class DriftInputs:
    """What a report is computed from, as read from the registry and the executions table."""

    tenant_id: str
    pipeline_id: str
    active: ReleaseIdentity | None
    workers: Sequence[WorkerRecord]
    # Release version → the release, for every release of interest the registry knows.
    releases: Mapping[str, ReleaseIdentity]
    # Release version → non-terminal status → executions.
    pinned: Mapping[str, Mapping[ExecutionStatus, int]]
    # Release version → its healthy workers (ResolveWorkers), freshest first.
    healthy_worker_ids: Mapping[str, Sequence[str]]
    observed_at_ms: int
    requested_release_version: str = ""


def build_report(inputs: DriftInputs) -> DriftReport:
    active_version = inputs.active.release_version if inputs.active else ""
    versions = releases_of_interest(
        active_release_version=active_version,
        pinned_release_versions=inputs.pinned,
        workers=inputs.workers,
        requested_release_version=inputs.requested_release_version,
    )
    releases = []
    for version in versions:
        by_status = {
            status: count
            for status in NON_TERMINAL_STATUSES
            if (count := inputs.pinned.get(version, {}).get(status, 0)) > 0
        }
        healthy = tuple(inputs.healthy_worker_ids.get(version, ()))
        is_active = version == active_version
        releases.append(
            ReleaseDrift(
                release_version=version,
                identity=inputs.releases.get(version),
                is_active=is_active,
                pinned_by_status=by_status,
                healthy_worker_ids=healthy,
                retirement=retirement_of(
                    version,
                    is_active=is_active,
                    pinned_count=sum(by_status.values()),
                    healthy_worker_ids=healthy,
                ),
            )
        )
    releases.sort(key=lambda r: (not r.is_active, -r.pinned_count, r.release_version))
    sole_worker_of: dict[str, list[str]] = {}
    for release in releases:
        if release.needs_a_worker and len(release.healthy_worker_ids) == 1:
            sole_worker_of.setdefault(release.healthy_worker_ids[0], []).append(
                release.release_version
            )
    workers = tuple(
        WorkerDrift(
            worker=worker,
            serves_active_release=inputs.active is not None and serves(worker, inputs.active),
            last_healthy_worker_for=tuple(sole_worker_of.get(worker.worker_id, ())),
        )
        for worker in sorted(inputs.workers, key=lambda w: w.worker_id)
    )
    return DriftReport(
        tenant_id=inputs.tenant_id,
        pipeline_id=inputs.pipeline_id,
        active_release_version=active_version,
        workers=workers,
        releases=tuple(releases),
        observed_at_ms=inputs.observed_at_ms,
    )
