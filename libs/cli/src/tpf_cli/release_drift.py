"""`tpf releases drift`: what runs where for one pipeline, and whether a release can be retired.

Answered by the coordinator (it counts the pinned executions and asks the registry), so the
command takes the coordinator's connection options.
"""

from __future__ import annotations

from tpf.coordinator.v1 import release_drift_service_pb2 as pb
from tpf_cli import output
from tpf_cli.connection import Coordinator
from tpf_cli.errors import CliError
from tpf_cli.output import Report


def _verdict(retirement: pb.Retirement) -> str:
    return output.enum_label(
        pb.RetirementVerdict.DESCRIPTOR, retirement.verdict, "RETIREMENT_VERDICT_"
    )


def _safety(retirement: pb.Retirement) -> str:
    return "safe" if retirement.safe else "UNSAFE"


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _worker_rows(workers: list[pb.DriftWorker]) -> str:
    if not workers:
        return "no workers registered"
    rows = [
        [
            drift.worker.worker_id,
            output.worker_state(drift.worker),
            drift.worker.protocol,
            output.short_version(drift.worker.release_version),
            output.short_version(drift.worker.contract_version),
            _yes_no(drift.serves_active_release),
            ", ".join(map(output.short_version, drift.last_healthy_worker_for)) or "-",
        ]
        for drift in workers
    ]
    headers = ["WORKER", "STATE", "PROTOCOL", "RELEASE", "CONTRACT", "SERVES ACTIVE", "LAST FOR"]
    return output.table(headers, rows)


def _pinned(release: pb.DriftRelease) -> str:
    parts = [
        f"{output.execution_status(count.status)}={count.count}"
        for count in release.pinned_by_status
    ]
    return ", ".join(parts) or "-"


def _release_rows(releases: list[pb.DriftRelease]) -> str:
    if not releases:
        return "no releases"
    rows = [
        [
            release.release_version,
            _yes_no(release.active),
            output.short_version(release.contract_version) or "-",
            str(release.pinned_executions),
            _pinned(release),
            ", ".join(release.healthy_worker_ids) or "-",
            f"{_safety(release.retirement)} ({_verdict(release.retirement)})",
        ]
        for release in releases
    ]
    headers = ["RELEASE", "ACTIVE", "CONTRACT", "PINNED", "BY STATUS", "HEALTHY WORKERS", "RETIRE"]
    return output.table(headers, rows)


def drift_text(response: pb.GetReleaseDriftResponse) -> str:
    active = response.active_release_version or "none"
    verdicts = [
        f"retire {output.short_version(release.release_version)}: {_safety(release.retirement)}: "
        f"{release.retirement.detail}"
        for release in response.releases
    ]
    return "\n\n".join(
        [
            f"pipeline {response.pipeline_id} of tenant {response.tenant_id} at "
            f"{output.timestamp(response.observed_at_epoch_ms)}\nactive release: {active}",
            _worker_rows(list(response.workers)),
            _release_rows(list(response.releases)),
            "\n".join(verdicts),
        ]
    )


async def drift(coordinator: Coordinator, *, release_version: str) -> Report:
    """The drift report; with `release_version`, the exit code says whether that release can be
    retired (0 safe, 1 unsafe), so a deploy script can wait on it."""
    response = await coordinator.release_drift.GetReleaseDrift(
        pb.GetReleaseDriftRequest(
            tenant_id=coordinator.tenant_id,
            pipeline_id=coordinator.pipeline_id,
            release_version=release_version,
        ),
        timeout=coordinator.timeout_s,
    )
    exit_code = 0
    if release_version:
        asked = next((r for r in response.releases if r.release_version == release_version), None)
        if asked is None:
            raise CliError(f"the coordinator's answer does not cover release {release_version}")
        exit_code = 0 if asked.retirement.safe else 1
    return Report(response, drift_text(response), exit_code=exit_code)
