"""Release identity rules: fingerprint, primary artifact, and status enums in three places."""

from __future__ import annotations

import re
from dataclasses import replace
from importlib import resources

from tests.unit.registry_samples import sample_release
from tpf.registry.v1 import release_pb2, worker_pb2
from tpf_registry.domain.release import (
    ReleasePolicy,
    ReleaseStatus,
    RetryPolicy,
    StoredArtifact,
    primary_artifact,
)
from tpf_registry.domain.worker import WorkerProtocol, WorkerState
from tpf_registry.servicers.convert import RELEASE_STATUS_TO_PROTO, WORKER_STATE_TO_PROTO


def test_fingerprint_ignores_lifecycle_but_not_immutable_metadata() -> None:
    release = sample_release()
    active = release.activated(now_ms=99)
    assert active.metadata_fingerprint == release.metadata_fingerprint
    assert (
        replace(release, primary_artifact_checksum="sha256:" + "c" * 64).metadata_fingerprint
        != release.metadata_fingerprint
    )
    other_policy = ReleasePolicy(default_retry=RetryPolicy(max_retries=0))
    assert replace(release, policy=other_policy).metadata_fingerprint != (
        release.metadata_fingerprint
    )


def test_primary_artifact_is_the_last_with_a_contract_else_the_first() -> None:
    def art(name: str, has_contract: bool) -> StoredArtifact:
        return StoredArtifact(name, "jar", "d", "u", "s", 1, has_contract)

    assert primary_artifact((art("a", False), art("b", True), art("c", True))).artifact_id == "c"
    assert primary_artifact((art("a", False), art("b", False))).artifact_id == "a"


def _sql_check_values(column: str) -> set[str]:
    sql = (resources.files("tpf_registry") / "migrations" / "0001_registry.sql").read_text()
    match = re.search(rf"{column}\s+text\s+NOT NULL CHECK \({column} IN \(([^)]*)\)\)", sql)
    assert match, column
    return {v.strip().strip("'") for v in match.group(1).split(",")}


def test_release_status_agrees_in_python_proto_and_sql() -> None:
    assert {s.value for s in ReleaseStatus} == _sql_check_values("status")
    assert set(RELEASE_STATUS_TO_PROTO) == set(ReleaseStatus)
    proto_names = {
        n.removeprefix("RELEASE_STATUS_")
        for n in release_pb2.ReleaseStatus.DESCRIPTOR.values_by_name
        if not n.endswith("UNSPECIFIED")
    }
    assert proto_names == {s.value for s in ReleaseStatus}


def test_worker_protocols_and_states_agree() -> None:
    assert {p.value for p in WorkerProtocol} == _sql_check_values("protocol")
    proto_states = {
        n.removeprefix("WORKER_STATE_")
        for n in worker_pb2.WorkerState.DESCRIPTOR.values_by_name
        if not n.endswith("UNSPECIFIED")
    }
    assert (
        proto_states == {s.value for s in WorkerState} == {s.value for s in WORKER_STATE_TO_PROTO}
    )
