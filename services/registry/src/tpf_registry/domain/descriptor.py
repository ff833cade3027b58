"""Release descriptors (`pipeline-release.json`), parsed as strictly as TPF parses them.

TPF_WIRE §8.2: schema version exactly 1, unknown keys rejected, every artifact with id, kind, uri
and a `sha256:` digest; `stepIds` and `capabilities` optional lists of strings.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tpf_errors import InvalidArgument
from tpf_registry.domain.json_shape import (
    ShapeError,
    expect_object,
    optional_int,
    optional_str_list,
    reject_unknown_keys,
    required_str,
)

DIGEST_PATTERN = re.compile(r"^sha256:[0-9a-f]{64}$")

_TOP_KEYS = frozenset(
    {"schemaVersion", "pipelineId", "contractVersion", "releaseVersion", "artifacts"}
)
_ARTIFACT_KEYS = frozenset({"artifactId", "kind", "uri", "digest", "stepIds", "capabilities"})


class ArtifactKind(StrEnum):
    """Artifact kinds TPF knows; the value is the descriptor spelling (lower-case)."""

    LOCAL_FILE = "local-file"
    JAR = "jar"
    NATIVE_BINARY = "native-binary"
    CONTAINER_IMAGE = "container-image"
    LAMBDA_ZIP = "lambda-zip"
    LAMBDA_IMAGE = "lambda-image"
    EXTERNAL_ENDPOINT = "external-endpoint"

    @property
    def is_fetched(self) -> bool:
        """Whether the registry fetches, verifies and stores the artifact's bytes."""
        return self not in _REMOTE_KINDS

    @property
    def requires_contract(self) -> bool:
        return self is ArtifactKind.JAR


_REMOTE_KINDS = frozenset(
    {ArtifactKind.CONTAINER_IMAGE, ArtifactKind.LAMBDA_IMAGE, ArtifactKind.EXTERNAL_ENDPOINT}
)


@dataclass(frozen=True, slots=True)
class DescriptorArtifact:
    artifact_id: str
    kind: ArtifactKind
    uri: str
    digest: str
    step_ids: tuple[str, ...]
    capabilities: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "artifactId": self.artifact_id,
            "kind": self.kind.value,
            "uri": self.uri,
            "digest": self.digest,
            "stepIds": list(self.step_ids),
            "capabilities": list(self.capabilities),
        }


@dataclass(frozen=True, slots=True)
class ReleaseDescriptor:
    schema_version: int
    pipeline_id: str
    contract_version: str
    release_version: str
    artifacts: tuple[DescriptorArtifact, ...]

    def to_json(self) -> dict[str, Any]:
        """The descriptor with defaults filled, in TPF's key order."""
        return {
            "schemaVersion": self.schema_version,
            "pipelineId": self.pipeline_id,
            "contractVersion": self.contract_version,
            "releaseVersion": self.release_version,
            "artifacts": [artifact.to_json() for artifact in self.artifacts],
        }


def _invalid(detail: str) -> InvalidArgument:
    return InvalidArgument(
        "DESCRIPTOR_INVALID",
        f"Invalid pipeline release descriptor JSON: {detail}",
        detail=detail,
    )


def parse_descriptor(text: str | bytes) -> ReleaseDescriptor:
    """Parse and validate a descriptor; raises InvalidArgument naming the problem."""
    try:
        raw = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _invalid(f"not valid JSON ({error})") from error
    try:
        return _parse(raw)
    except ShapeError as error:
        raise _invalid(str(error)) from error


def _parse(raw: Any) -> ReleaseDescriptor:
    top = expect_object(raw, "descriptor")
    reject_unknown_keys(top, _TOP_KEYS, "descriptor")
    schema_version = optional_int(top, "schemaVersion", "descriptor")
    if schema_version != 1:
        raise ShapeError(f"Unsupported release descriptor schemaVersion {schema_version}")
    artifacts_raw = top.get("artifacts")
    if not isinstance(artifacts_raw, list) or not artifacts_raw:
        raise ShapeError("descriptor.artifacts must be a non-empty array")
    artifacts = tuple(
        _parse_artifact(item, f"artifacts[{index}]") for index, item in enumerate(artifacts_raw)
    )
    seen: set[str] = set()
    for artifact in artifacts:
        if artifact.artifact_id in seen:
            raise ShapeError(f"duplicate artifactId {artifact.artifact_id}")
        seen.add(artifact.artifact_id)
    return ReleaseDescriptor(
        schema_version=1,
        pipeline_id=required_str(top, "pipelineId", "descriptor").strip(),
        contract_version=required_str(top, "contractVersion", "descriptor").strip(),
        release_version=required_str(top, "releaseVersion", "descriptor").strip(),
        artifacts=artifacts,
    )


def _parse_artifact(value: Any, where: str) -> DescriptorArtifact:
    obj = expect_object(value, where)
    reject_unknown_keys(obj, _ARTIFACT_KEYS, where)
    kind_text = required_str(obj, "kind", where).strip().lower()
    try:
        kind = ArtifactKind(kind_text)
    except ValueError:
        raise InvalidArgument(
            "ARTIFACT_KIND_UNSUPPORTED",
            f"Unsupported release artifact kind {kind_text}; use one of "
            + ", ".join(k.value for k in ArtifactKind),
            kind=kind_text,
        ) from None
    digest = required_str(obj, "digest", where).strip()
    if not DIGEST_PATTERN.match(digest):
        raise InvalidArgument(
            "FIELD_INVALID",
            "Release artifact digest must use sha256:<64 lower-case hex>",
            field=f"{where}.digest",
            value=digest,
        )
    return DescriptorArtifact(
        artifact_id=required_str(obj, "artifactId", where).strip(),
        kind=kind,
        uri=required_str(obj, "uri", where).strip(),
        digest=digest,
        step_ids=optional_str_list(obj, "stepIds", where),
        capabilities=optional_str_list(obj, "capabilities", where),
    )
