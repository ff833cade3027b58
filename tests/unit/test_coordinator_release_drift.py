"""Release drift rules: which worker serves which release, and when a release can be retired."""

from __future__ import annotations

import dataclasses
import importlib.resources
import re
from typing import Any

import pytest

from tpf_coordinator.domain.model import ExecutionStatus
from tpf_coordinator.domain.release_drift import (
    NON_TERMINAL_STATUSES,
    DriftInputs,
    ReleaseIdentity,
    RetirementVerdict,
    WorkerRecord,
    build_report,
    retirement_of,
    serves,
)

PIPELINE = "org.example.pipeline"
V1 = ReleaseIdentity("v1", PIPELINE, "sha256:c1", "sha256:a1")
V2 = ReleaseIdentity("v2", PIPELINE, "sha256:c2", "sha256:a2")


def worker(worker_id: str, release: ReleaseIdentity, **changes: Any) -> WorkerRecord:
    record = WorkerRecord(
        worker_id=worker_id,
        pipeline_id=release.pipeline_id,
        contract_version=release.contract_version,
        release_version=release.release_version,
        protocol="grpc",
        endpoint="127.0.0.1:1",
        artifact_id="app",
        artifact_digest=release.primary_artifact_digest,
        state="HEALTHY",
        registered_at_epoch_ms=1,
        last_heartbeat_at_epoch_ms=1,
        draining_since_epoch_ms=0,
    )
    return dataclasses.replace(record, **changes)


def test_a_worker_serves_every_release_of_its_contract_whatever_its_label() -> None:
    relabelled = dataclasses.replace(V1, release_version="1.0.0")
    assert serves(worker("w", V1), relabelled)
    assert not serves(worker("w", V1), V2)
    assert not serves(worker("w", V1, pipeline_id="other"), V1)


def test_artifact_digests_are_compared_only_when_both_sides_name_one() -> None:
    assert not serves(worker("w", V1, artifact_digest="sha256:other"), V1)
    assert serves(worker("w", V1, artifact_digest=""), V1)
    assert serves(worker("w", V1), dataclasses.replace(V1, primary_artifact_digest=""))


@pytest.mark.parametrize(
    ("is_active", "pinned", "healthy", "verdict", "safe"),
    [
        (False, 0, (), RetirementVerdict.NOTHING_PINNED, True),
        (False, 3, ("w1",), RetirementVerdict.PINNED_AND_SERVED, True),
        (False, 3, (), RetirementVerdict.PINNED_AND_UNSERVED, False),
        (True, 0, ("w1",), RetirementVerdict.ACTIVE, False),
    ],
)
def test_retirement_verdicts(
    is_active: bool, pinned: int, healthy: tuple[str, ...], verdict: RetirementVerdict, safe: bool
) -> None:
    retirement = retirement_of(
        "v1", is_active=is_active, pinned_count=pinned, healthy_worker_ids=healthy
    )
    assert (retirement.verdict, retirement.is_safe) == (verdict, safe)
    assert "v1" in retirement.detail
    if pinned:
        assert f"{pinned} non-terminal executions" in retirement.detail


def inputs(**changes: object) -> DriftInputs:
    base = DriftInputs(
        tenant_id="t",
        pipeline_id=PIPELINE,
        active=V2,
        workers=[worker("w2", V2), worker("w1", V1)],
        releases={"v1": V1, "v2": V2},
        pinned={
            "v1": {ExecutionStatus.WAIT_RETRY: 1, ExecutionStatus.WAITING_EXTERNAL: 2},
            "v0": {ExecutionStatus.QUEUED: 5},
        },
        healthy_worker_ids={"v1": ("w1",), "v2": ("w2",)},
        observed_at_ms=42,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]  # test overrides


def test_report_lists_active_first_then_most_pinned_with_statuses_in_enum_order() -> None:
    report = build_report(inputs())
    assert report.active_release_version == "v2"
    assert [r.release_version for r in report.releases] == ["v2", "v0", "v1"]
    v2, v0, v1 = report.releases
    assert (v2.retirement.verdict, v2.pinned_count) == (RetirementVerdict.ACTIVE, 0)
    # v0 is pinned but the registry no longer knows it and nobody serves it.
    assert v0.identity is None
    assert v0.retirement.verdict is RetirementVerdict.PINNED_AND_UNSERVED
    assert list(v1.pinned_by_status.items()) == [
        (ExecutionStatus.WAITING_EXTERNAL, 2),
        (ExecutionStatus.WAIT_RETRY, 1),
    ]
    assert v1.retirement.verdict is RetirementVerdict.PINNED_AND_SERVED


def test_workers_say_whether_they_serve_the_active_release_and_what_they_alone_serve() -> None:
    report = build_report(inputs())
    assert [w.worker.worker_id for w in report.workers] == ["w1", "w2"]
    w1, w2 = report.workers
    assert (w1.serves_active_release, w1.last_healthy_worker_for) == (False, ("v1",))
    # The active release needs a worker even with nothing pinned.
    assert (w2.serves_active_release, w2.last_healthy_worker_for) == (True, ("v2",))
    second = build_report(inputs(healthy_worker_ids={"v1": ("w1", "w3"), "v2": ("w2",)}))
    assert second.workers[0].last_healthy_worker_for == ()


def test_a_requested_release_is_reported_even_when_nothing_names_it() -> None:
    v9 = ReleaseIdentity("v9", PIPELINE, "sha256:c9", "")
    report = build_report(
        inputs(requested_release_version="v9", releases={"v1": V1, "v2": V2, "v9": v9})
    )
    [asked] = [r for r in report.releases if r.release_version == "v9"]
    assert asked.retirement.verdict is RetirementVerdict.NOTHING_PINNED


def test_without_an_active_release_no_worker_serves_it() -> None:
    report = build_report(inputs(active=None))
    assert report.active_release_version == ""
    assert not any(w.serves_active_release for w in report.workers)
    assert not any(r.is_active for r in report.releases)


def test_the_index_and_the_query_name_exactly_the_non_terminal_statuses_in_order() -> None:
    from tpf_coordinator.store.release_drift_postgres import COUNT_PINNED_NON_TERMINAL

    expected = [status.value for status in NON_TERMINAL_STATUSES]
    assert expected == ["QUEUED", "RUNNING", "WAITING_EXTERNAL", "WAIT_RETRY"]
    migration = (
        importlib.resources.files("tpf_coordinator")
        / "migrations"
        / "0005_executions_pinned_non_terminal.sql"
    ).read_text(encoding="utf-8")
    predicate = re.search(r"WHERE status IN \(([^)]*)\)", migration)
    assert predicate is not None
    assert re.findall(r"'([A-Z_]+)'", predicate.group(1)) == expected
    query = COUNT_PINNED_NON_TERMINAL.as_string(None)
    in_list = re.search(r"status IN \(([^)]*)\)", query)
    assert in_list is not None
    assert re.findall(r"'([A-Z_]+)'", in_list.group(1)) == expected
