"""Descriptor parsing follows TPF's strict rules (TPF_WIRE §8.2)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tpf_errors import InvalidArgument
from tpf_registry.domain.descriptor import ArtifactKind, parse_descriptor

DIGEST = "sha256:" + "a" * 64


def descriptor(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "schemaVersion": 1,
        "pipelineId": "p",
        "contractVersion": DIGEST,
        "releaseVersion": DIGEST,
        "artifacts": [{"artifactId": "a", "kind": "JAR", "uri": "/x.jar", "digest": DIGEST}],
    }
    base.update(overrides)
    return base


def test_valid_descriptor_fills_defaults_and_lowercases_kind() -> None:
    parsed = parse_descriptor(json.dumps(descriptor()))
    assert parsed.artifacts[0].kind is ArtifactKind.JAR
    assert parsed.to_json()["artifacts"][0]["stepIds"] == []
    assert parsed.release_version == DIGEST


@pytest.mark.parametrize(
    ("doc", "reason", "fragment"),
    [
        ("{not json", "DESCRIPTOR_INVALID", "not valid JSON"),
        (json.dumps(descriptor(scope="x")), "DESCRIPTOR_INVALID", 'Unrecognized field "scope"'),
        (json.dumps(descriptor(schemaVersion=2)), "DESCRIPTOR_INVALID", "schemaVersion 2"),
        (json.dumps(descriptor(artifacts=[])), "DESCRIPTOR_INVALID", "non-empty"),
        (json.dumps(descriptor(pipelineId=" ")), "DESCRIPTOR_INVALID", "pipelineId is required"),
        (
            json.dumps(
                descriptor(
                    artifacts=[{"artifactId": "a", "kind": "zip", "uri": "/x", "digest": DIGEST}]
                )
            ),
            "ARTIFACT_KIND_UNSUPPORTED",
            "Unsupported release artifact kind zip",
        ),
        (
            json.dumps(
                descriptor(
                    artifacts=[{"artifactId": "a", "kind": "jar", "uri": "/x", "digest": "md5:1"}]
                )
            ),
            "FIELD_INVALID",
            "sha256:",
        ),
        (
            json.dumps(
                descriptor(
                    artifacts=[
                        {
                            "artifactId": "a",
                            "kind": "jar",
                            "uri": "/x",
                            "digest": DIGEST,
                            "runtime": "java",
                        }
                    ]
                )
            ),
            "DESCRIPTOR_INVALID",
            'Unrecognized field "runtime"',
        ),
        (
            json.dumps(
                descriptor(
                    artifacts=[
                        {
                            "artifactId": "a",
                            "kind": "jar",
                            "uri": "/x",
                            "digest": DIGEST,
                            "stepIds": [None],
                        }
                    ]
                )
            ),
            "DESCRIPTOR_INVALID",
            "only strings",
        ),
        (json.dumps([1]), "DESCRIPTOR_INVALID", "JSON object"),
    ],
)
def test_bad_descriptors_are_refused_with_a_named_reason(
    doc: str, reason: str, fragment: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_descriptor(doc)
    assert caught.value.reason == reason
    assert fragment in caught.value.message


def test_upper_case_digest_is_refused_because_tpf_compares_lower_case_hex() -> None:
    doc = descriptor(
        artifacts=[{"artifactId": "a", "kind": "jar", "uri": "/x", "digest": "sha256:" + "A" * 64}]
    )
    with pytest.raises(InvalidArgument) as caught:
        parse_descriptor(json.dumps(doc))
    assert caught.value.reason == "FIELD_INVALID"


def test_remote_kinds_are_not_fetched() -> None:
    assert not ArtifactKind.CONTAINER_IMAGE.is_fetched
    assert ArtifactKind.LAMBDA_ZIP.is_fetched
    assert ArtifactKind.JAR.requires_contract
    assert not ArtifactKind.LOCAL_FILE.requires_contract
