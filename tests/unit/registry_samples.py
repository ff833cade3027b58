"""Domain values for registry unit tests."""

from __future__ import annotations

import json

from tests.support.release_artifacts import tpf_contract
from tpf_registry.domain.contract import parse_contract
from tpf_registry.domain.descriptor import parse_descriptor
from tpf_registry.domain.release import Release, ReleasePolicy, ReleaseStatus, StoredArtifact


def sample_release() -> Release:
    contract = parse_contract(json.dumps(tpf_contract()).encode(), artifact_id="a")
    digest = "sha256:" + "b" * 64
    descriptor = parse_descriptor(
        json.dumps(
            {
                "schemaVersion": 1,
                "pipelineId": contract.pipeline_id,
                "contractVersion": contract.contract_version,
                "releaseVersion": contract.contract_version,
                "artifacts": [
                    {"artifactId": "a", "kind": "jar", "uri": "/a.jar", "digest": digest}
                ],
            }
        )
    )
    artifact = StoredArtifact("a", "jar", digest, "/a.jar", "file:///s/b.jar", 10, True)
    return Release(
        tenant_id="t",
        pipeline_id=contract.pipeline_id,
        release_version=contract.contract_version,
        contract_version=contract.contract_version,
        status=ReleaseStatus.REGISTERED,
        version=0,
        descriptor=descriptor,
        contract=contract,
        policy=ReleasePolicy(),
        artifacts=(artifact,),
        primary_artifact_id="a",
        primary_artifact_digest=digest,
        primary_artifact_uri="file:///s/b.jar",
        primary_artifact_size_bytes=10,
        primary_artifact_checksum=digest,
        created_at_epoch_ms=1,
        updated_at_epoch_ms=1,
        activated_at_epoch_ms=0,
    )
