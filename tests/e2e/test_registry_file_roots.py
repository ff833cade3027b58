"""The registry reads descriptors and artifact files only under its configured roots
(TPF_REGISTRY_ARTIFACT_ROOTS); anything else is PERMISSION_DENIED PATH_NOT_ALLOWED, and a digest
mismatch does not reveal the file's actual hash. Against a real registry process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.support.grpc_errors import expect_error
from tests.support.registry_client import registry_client
from tests.support.release_artifacts import PIPELINE_ID, build_release
from tpf.registry.v1 import release_service_pb2 as rpb

pytestmark = pytest.mark.e2e


@pytest.fixture
def allowed(tmp_path: Path) -> Path:
    return tmp_path / "allowed"


@pytest.fixture
def registry(
    registry_env: dict[str, str], start_service: Any, allowed: Path, tmp_path: Path
) -> Any:
    allowed.mkdir()
    return start_service(
        "tpf_registry",
        {**registry_env, "TPF_REGISTRY_ARTIFACT_ROOTS": f"{tmp_path / 'nowhere'}:{allowed}"},
    )


def register(path: Path) -> rpb.RegisterReleaseRequest:
    return rpb.RegisterReleaseRequest(
        tenant_id="tenant-a", pipeline_id=PIPELINE_ID, release_descriptor_path=str(path)
    )


async def test_a_release_under_a_root_registers(registry: Any, allowed: Path) -> None:
    built = build_release(allowed / "release")
    async with registry_client(registry.target) as client:
        answer = await client.releases.RegisterRelease(register(built.descriptor_path))
    assert answer.release.release_version == built.release_version


async def test_a_descriptor_outside_every_root_is_refused(registry: Any, tmp_path: Path) -> None:
    built = build_release(tmp_path / "elsewhere")
    async with registry_client(registry.target) as client:
        error = await expect_error(
            client.releases.RegisterRelease(register(built.descriptor_path)),
            grpc.StatusCode.PERMISSION_DENIED,
            "PATH_NOT_ALLOWED",
        )
        assert error.metadata["field"] == "releaseDescriptorPath"
        assert str(tmp_path) not in error.message, "the roots and the path are not echoed"
        # Not even whether the file exists is told apart.
        missing = await expect_error(
            client.releases.RegisterRelease(register(tmp_path / "no" / "such.json")),
            grpc.StatusCode.PERMISSION_DENIED,
            "PATH_NOT_ALLOWED",
        )
        assert missing.message == error.message
        secret = await expect_error(
            client.releases.RegisterRelease(register(Path("/etc/shadow"))),
            grpc.StatusCode.PERMISSION_DENIED,
            "PATH_NOT_ALLOWED",
        )
        assert secret.metadata["field"] == "releaseDescriptorPath"


async def test_an_artifact_outside_every_root_is_refused(
    registry: Any, allowed: Path, tmp_path: Path
) -> None:
    outside = build_release(tmp_path / "elsewhere")
    # The descriptor is readable, but names a jar outside the roots (absolute path, file: URI
    # and a relative path climbing out of the descriptor's directory).
    for index, uri in enumerate(
        [
            str(outside.jar_path),
            outside.jar_path.as_uri(),
            f"../../elsewhere/{outside.jar_path.name}",
        ]
    ):
        built = build_release(allowed / f"r{index}", uri=uri)
        async with registry_client(registry.target) as client:
            error = await expect_error(
                client.releases.RegisterRelease(register(built.descriptor_path)),
                grpc.StatusCode.PERMISSION_DENIED,
                "PATH_NOT_ALLOWED",
            )
        assert error.metadata["field"] == "uri"


async def test_a_link_inside_a_root_to_a_file_outside_is_refused(
    registry: Any, allowed: Path, tmp_path: Path
) -> None:
    outside = build_release(tmp_path / "elsewhere")
    link = allowed / "linked.json"
    link.symlink_to(outside.descriptor_path)
    async with registry_client(registry.target) as client:
        await expect_error(
            client.releases.RegisterRelease(register(link)),
            grpc.StatusCode.PERMISSION_DENIED,
            "PATH_NOT_ALLOWED",
        )


async def test_a_digest_mismatch_does_not_reveal_the_files_hash(
    registry: Any, allowed: Path
) -> None:
    built = build_release(allowed / "release")
    declared = "sha256:" + "0" * 64
    descriptor = json.loads(built.descriptor_path.read_text())
    descriptor["artifacts"][0]["digest"] = declared
    built.descriptor_path.write_text(json.dumps(descriptor))
    async with registry_client(registry.target) as client:
        error = await expect_error(
            client.releases.RegisterRelease(register(built.descriptor_path)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "ARTIFACT_DIGEST_MISMATCH",
        )
    actual = built.digest.removeprefix("sha256:")
    assert actual not in error.message
    assert actual not in json.dumps(error.metadata)
    assert error.metadata["expectedDigest"] == declared
