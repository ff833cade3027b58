"""ReleaseService through a real registry process on real Postgres (and moto for S3)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.support.grpc_errors import expect_error
from tests.support.registry_client import registry_client
from tests.support.release_artifacts import (
    PIPELINE_ID,
    build_release,
    sha256_digest,
    tpf_contract,
    write_jar,
)
from tpf.registry.v1 import release_pb2
from tpf.registry.v1 import release_service_pb2 as pb

pytestmark = pytest.mark.e2e

TENANT = "restaurant-demo"


def register_request(path: Path, pipeline: str = PIPELINE_ID) -> pb.RegisterReleaseRequest:
    return pb.RegisterReleaseRequest(
        tenant_id=TENANT, pipeline_id=pipeline, release_descriptor_path=str(path)
    )


async def test_register_get_list_and_reregister_idempotently(registry: Any, tmp_path: Path) -> None:
    built = build_release(tmp_path)
    async with registry_client(registry.target) as client:
        first = await client.releases.RegisterRelease(register_request(built.descriptor_path))
        release = first.release
        assert not first.duplicate
        assert release.release_version == built.release_version
        assert release.contract_version == built.contract_version
        assert release.status == release_pb2.RELEASE_STATUS_REGISTERED
        assert release.primary_artifact_id == "restaurant-approval-monolith"
        assert release.primary_artifact_digest == built.digest
        assert release.primary_artifact_checksum == built.digest
        assert release.primary_artifact_size_bytes == built.jar_path.stat().st_size
        stored = Path(release.primary_artifact_uri.removeprefix("file://"))
        assert stored.name == built.digest.removeprefix("sha256:") + ".jar"
        assert sha256_digest(stored) == built.digest
        assert [s.authored_name for s in release.contract.steps] == [
            "Validate Order Request",
            "Create Pending Approval",
            "Await Restaurant Decision",
            "Finalize Restaurant Decision",
        ]
        assert release.contract.contract_hash == built.contract["contractHash"]
        assert release.descriptor.artifacts[0].uri == str(built.jar_path)

        again = await client.releases.RegisterRelease(register_request(built.descriptor_path))
        assert again.duplicate
        assert again.release.created_at_epoch_ms == release.created_at_epoch_ms

        got = await client.releases.GetRelease(
            pb.GetReleaseRequest(
                tenant_id=TENANT, pipeline_id=PIPELINE_ID, release_version=built.release_version
            )
        )
        assert got.release == release
        listed = await client.releases.ListReleases(
            pb.ListReleasesRequest(tenant_id=TENANT, pipeline_id=PIPELINE_ID)
        )
        assert [r.release_version for r in listed.releases] == [built.release_version]
        assert listed.next_page_token == ""


async def test_same_version_with_other_content_is_already_exists(
    registry: Any, tmp_path: Path
) -> None:
    built = build_release(tmp_path, release_version="v1")
    other = build_release(tmp_path / "rebuilt", release_version="v1", salt="b")
    # The same contract in a rebuilt jar: only the digest differs.
    rebuilt = build_release(tmp_path / "samecontract", release_version="v1", filler=10)
    async with registry_client(registry.target) as client:
        await client.releases.RegisterRelease(register_request(built.descriptor_path))
        for conflicting in (other, rebuilt):
            await expect_error(
                client.releases.RegisterRelease(register_request(conflicting.descriptor_path)),
                grpc.StatusCode.ALREADY_EXISTS,
                "RELEASE_VERSION_CONFLICT",
            )
        got = await client.releases.GetRelease(
            pb.GetReleaseRequest(tenant_id=TENANT, pipeline_id=PIPELINE_ID, release_version="v1")
        )
        assert got.release.primary_artifact_digest == built.digest


async def test_inline_descriptor_with_uploaded_artifact_bytes(
    registry: Any, tmp_path: Path
) -> None:
    built = build_release(tmp_path, release_version="sha256:" + "1" * 64)
    descriptor = json.loads(json.dumps(built.descriptor))
    descriptor["artifacts"][0]["uri"] = "upload:restaurant-approval-monolith"
    async with registry_client(registry.target) as client:
        response = await client.releases.RegisterRelease(
            pb.RegisterReleaseRequest(
                tenant_id=TENANT,
                pipeline_id=PIPELINE_ID,
                release_descriptor_json=json.dumps(descriptor),
                uploaded_artifacts=[
                    pb.UploadedArtifact(
                        artifact_id="restaurant-approval-monolith",
                        content=built.jar_path.read_bytes(),
                    )
                ],
            )
        )
    assert response.release.release_version == "sha256:" + "1" * 64
    assert response.release.primary_artifact_checksum == built.digest


async def test_file_uri_and_remote_kinds(registry: Any, tmp_path: Path) -> None:
    built = build_release(tmp_path)
    descriptor = json.loads(json.dumps(built.descriptor))
    descriptor["releaseVersion"] = "with-image"
    descriptor["artifacts"][0]["uri"] = built.jar_path.as_uri()
    descriptor["artifacts"].insert(
        0,
        {
            "artifactId": "image",
            "kind": "container-image",
            "uri": "registry.example/restaurant:1",
            "digest": "sha256:" + "9" * 64,
        },
    )
    async with registry_client(registry.target) as client:
        response = await client.releases.RegisterRelease(
            pb.RegisterReleaseRequest(
                tenant_id=TENANT,
                pipeline_id=PIPELINE_ID,
                release_descriptor_json=json.dumps(descriptor),
            )
        )
    release = response.release
    # The primary artifact is the last one carrying a contract, not the first listed.
    assert release.primary_artifact_id == "restaurant-approval-monolith"
    assert [(a.artifact_id, a.stored_uri == "") for a in release.artifacts] == [
        ("image", True),
        ("restaurant-approval-monolith", False),
    ]


def _descriptor_file(tmp_path: Path, doc: Any) -> Path:
    path = tmp_path / f"descriptor-{len(list(tmp_path.glob('descriptor-*')))}.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


async def test_bad_registrations_name_the_problem_and_store_nothing(
    registry: Any, tmp_path: Path
) -> None:
    built = build_release(tmp_path)
    good = built.descriptor

    def variant(**artifact: Any) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(json.dumps(good))
        doc["artifacts"][0].update(artifact)
        return doc

    no_contract = write_jar(tmp_path / "nocontract.jar", None)
    wrong_pipeline = write_jar(tmp_path / "other.jar", tpf_contract(pipeline_id="other.pipeline"))
    bad_contract = write_jar(tmp_path / "badcontract.jar", b'{"schemaVersion": 1, "oops": true}')
    v9 = tpf_contract()
    v9["schemaVersion"] = 9
    v9_jar = write_jar(tmp_path / "v9.jar", v9)
    not_zip = tmp_path / "notzip.jar"
    not_zip.write_text("plain text")
    cases: list[tuple[pb.RegisterReleaseRequest, grpc.StatusCode, str]] = [
        (
            register_request(_descriptor_file(tmp_path, variant(digest="sha256:" + "0" * 64))),
            grpc.StatusCode.INVALID_ARGUMENT,
            "ARTIFACT_DIGEST_MISMATCH",
        ),
        (
            register_request(
                _descriptor_file(
                    tmp_path, variant(uri=str(no_contract), digest=sha256_digest(no_contract))
                )
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "CONTRACT_MISSING",
        ),
        (
            register_request(
                _descriptor_file(tmp_path, variant(uri=str(not_zip), digest=sha256_digest(not_zip)))
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "CONTRACT_MISSING",
        ),
        (
            register_request(
                _descriptor_file(
                    tmp_path,
                    variant(uri=str(wrong_pipeline), digest=sha256_digest(wrong_pipeline)),
                )
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "CONTRACT_MISMATCH",
        ),
        (
            register_request(
                _descriptor_file(
                    tmp_path, variant(uri=str(bad_contract), digest=sha256_digest(bad_contract))
                )
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "CONTRACT_INVALID",
        ),
        (
            register_request(
                _descriptor_file(tmp_path, variant(uri=str(v9_jar), digest=sha256_digest(v9_jar)))
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "CONTRACT_INVALID",
        ),
        (
            register_request(_descriptor_file(tmp_path, "{ not json")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "DESCRIPTOR_INVALID",
        ),
        (
            register_request(_descriptor_file(tmp_path, {**good, "schemaVersion": 2})),
            grpc.StatusCode.INVALID_ARGUMENT,
            "DESCRIPTOR_INVALID",
        ),
        (
            register_request(_descriptor_file(tmp_path, {**good, "scope": "x"})),
            grpc.StatusCode.INVALID_ARGUMENT,
            "DESCRIPTOR_INVALID",
        ),
        (
            register_request(_descriptor_file(tmp_path, variant(uri=str(tmp_path / "gone.jar")))),
            grpc.StatusCode.FAILED_PRECONDITION,
            "ARTIFACT_UNREADABLE",
        ),
        (
            register_request(_descriptor_file(tmp_path, variant(kind="wheel"))),
            grpc.StatusCode.INVALID_ARGUMENT,
            "ARTIFACT_KIND_UNSUPPORTED",
        ),
        (
            register_request(tmp_path / "missing-descriptor.json"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "DESCRIPTOR_UNREADABLE",
        ),
        (
            register_request(Path("relative/pipeline-release.json")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "DESCRIPTOR_UNREADABLE",
        ),
        (
            register_request(built.descriptor_path, pipeline="another.pipeline"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "CONTRACT_MISMATCH",
        ),
        (
            pb.RegisterReleaseRequest(tenant_id=TENANT, pipeline_id=PIPELINE_ID),
            grpc.StatusCode.INVALID_ARGUMENT,
            "FIELD_REQUIRED",
        ),
        (
            pb.RegisterReleaseRequest(pipeline_id=PIPELINE_ID),
            grpc.StatusCode.INVALID_ARGUMENT,
            "FIELD_REQUIRED",
        ),
        (
            pb.RegisterReleaseRequest(
                tenant_id=TENANT,
                pipeline_id=PIPELINE_ID,
                release_descriptor_path=str(built.descriptor_path),
                policy=release_pb2.ReleasePolicy(
                    default_retry=release_pb2.RetryPolicy(max_retries=-1)
                ),
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "FIELD_OUT_OF_RANGE",
        ),
    ]
    async with registry_client(registry.target) as client:
        for request, code, reason in cases:
            found = await expect_error(client.releases.RegisterRelease(request), code, reason)
            assert found.domain == "tpf.registry"
        listed = await client.releases.ListReleases(
            pb.ListReleasesRequest(tenant_id=TENANT, pipeline_id=PIPELINE_ID)
        )
        assert list(listed.releases) == []


async def test_s3_artifacts_register_into_an_s3_store(
    start_service: Any, registry_env: dict[str, str], moto_server: Any, tmp_path: Path
) -> None:
    from aiobotocore.session import get_session

    built = build_release(tmp_path)
    env = {
        **registry_env,
        **moto_server.client_env,
        "TPF_S3_ENDPOINT_URL": moto_server.endpoint_url,
        "TPF_ARTIFACT_STORE": "s3://tpf-artifacts/tpf/releases/",
    }
    session = get_session()
    async with session.create_client(
        "s3",
        endpoint_url=moto_server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ) as s3:
        for bucket in ("source-bucket", "tpf-artifacts"):
            await s3.create_bucket(Bucket=bucket)
        await s3.put_object(
            Bucket="source-bucket", Key="builds/restaurant.jar", Body=built.jar_path.read_bytes()
        )
        registry = start_service("tpf_registry", env)
        descriptor = json.loads(json.dumps(built.descriptor))
        descriptor["artifacts"][0]["uri"] = "s3://source-bucket/builds/restaurant.jar"
        async with registry_client(registry.target) as client:
            response = await client.releases.RegisterRelease(
                pb.RegisterReleaseRequest(
                    tenant_id=TENANT,
                    pipeline_id=PIPELINE_ID,
                    release_descriptor_json=json.dumps(descriptor),
                )
            )
            hex_digest = built.digest.removeprefix("sha256:")
            expected_key = f"tpf/releases/sha256/{hex_digest}.jar"
            assert response.release.primary_artifact_uri == f"s3://tpf-artifacts/{expected_key}"
            head = await s3.head_object(Bucket="tpf-artifacts", Key=expected_key)
            assert head["Metadata"]["sha256"] == hex_digest
            activated = await client.releases.ActivateRelease(
                pb.ActivateReleaseRequest(
                    tenant_id=TENANT,
                    pipeline_id=PIPELINE_ID,
                    release_version=built.release_version,
                )
            )
            assert activated.release.status == release_pb2.RELEASE_STATUS_ACTIVE

            descriptor["releaseVersion"] = "missing-object"
            descriptor["artifacts"][0]["uri"] = "s3://source-bucket/builds/nothing.jar"
            await expect_error(
                client.releases.RegisterRelease(
                    pb.RegisterReleaseRequest(
                        tenant_id=TENANT,
                        pipeline_id=PIPELINE_ID,
                        release_descriptor_json=json.dumps(descriptor),
                    )
                ),
                grpc.StatusCode.FAILED_PRECONDITION,
                "ARTIFACT_UNREADABLE",
            )
            # Tampering with the stored copy makes activation refuse it.
            await s3.put_object(Bucket="tpf-artifacts", Key=expected_key, Body=b"tampered")
            await expect_error(
                client.releases.ActivateRelease(
                    pb.ActivateReleaseRequest(
                        tenant_id=TENANT,
                        pipeline_id=PIPELINE_ID,
                        release_version=built.release_version,
                    )
                ),
                grpc.StatusCode.FAILED_PRECONDITION,
                "ARTIFACT_VERIFICATION_FAILED",
            )


async def test_activation_pins_one_release_and_keeps_history(registry: Any, tmp_path: Path) -> None:
    first = build_release(tmp_path / "one", release_version="v1")
    second = build_release(tmp_path / "two", release_version="v2", salt="two")
    async with registry_client(registry.target) as client:
        for built in (first, second):
            await client.releases.RegisterRelease(register_request(built.descriptor_path))
        await expect_error(
            client.releases.GetActiveRelease(
                pb.GetActiveReleaseRequest(tenant_id=TENANT, pipeline_id=PIPELINE_ID)
            ),
            grpc.StatusCode.NOT_FOUND,
            "RELEASE_NOT_FOUND",
        )

        async def activate(version: str, reason: str = "") -> pb.ActivateReleaseResponse:
            result: pb.ActivateReleaseResponse = await client.releases.ActivateRelease(
                pb.ActivateReleaseRequest(
                    tenant_id=TENANT,
                    pipeline_id=PIPELINE_ID,
                    release_version=version,
                    reason=reason,
                )
            )
            return result

        one = await activate("v1", "first rollout")
        assert one.release.status == release_pb2.RELEASE_STATUS_ACTIVE
        assert one.release.activated_at_epoch_ms > 0
        assert one.activation.previous_release_version == ""
        assert one.activation.activated_by == "ops"
        assert one.activation.reason == "first rollout"
        same = await activate("v1")
        assert not same.HasField("activation")
        two = await activate("v2")
        assert two.activation.previous_release_version == "v1"
        active = await client.releases.GetActiveRelease(
            pb.GetActiveReleaseRequest(tenant_id=TENANT, pipeline_id=PIPELINE_ID)
        )
        assert active.release.release_version == "v2"
        demoted = await client.releases.GetRelease(
            pb.GetReleaseRequest(tenant_id=TENANT, pipeline_id=PIPELINE_ID, release_version="v1")
        )
        assert demoted.release.status == release_pb2.RELEASE_STATUS_REGISTERED
        # A demoted release keeps its old activation time, as in TPF.
        assert demoted.release.activated_at_epoch_ms == one.release.activated_at_epoch_ms
        await activate("v1", "rollback")
        history = await client.releases.ListActivations(
            pb.ListActivationsRequest(tenant_id=TENANT, pipeline_id=PIPELINE_ID, page_size=2)
        )
        assert [(a.release_version, a.previous_release_version) for a in history.activations] == [
            ("v1", "v2"),
            ("v2", "v1"),
        ]
        rest = await client.releases.ListActivations(
            pb.ListActivationsRequest(
                tenant_id=TENANT,
                pipeline_id=PIPELINE_ID,
                page_size=2,
                page_token=history.next_page_token,
            )
        )
        assert [a.release_version for a in rest.activations] == ["v1"]
        assert rest.next_page_token == ""
        await expect_error(activate("v404"), grpc.StatusCode.NOT_FOUND, "RELEASE_NOT_FOUND")
        await expect_error(
            client.releases.ListActivations(
                pb.ListActivationsRequest(
                    tenant_id=TENANT, pipeline_id="other", page_token=history.next_page_token
                )
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "PAGE_TOKEN_INVALID",
        )


async def test_activation_refuses_a_tampered_stored_artifact(registry: Any, tmp_path: Path) -> None:
    built = build_release(tmp_path)
    async with registry_client(registry.target) as client:
        response = await client.releases.RegisterRelease(register_request(built.descriptor_path))
        stored = Path(response.release.primary_artifact_uri.removeprefix("file://"))
        await asyncio.to_thread(stored.write_bytes, b"x")
        await expect_error(
            client.releases.ActivateRelease(
                pb.ActivateReleaseRequest(
                    tenant_id=TENANT,
                    pipeline_id=PIPELINE_ID,
                    release_version=built.release_version,
                )
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
            "ARTIFACT_VERIFICATION_FAILED",
        )


async def test_list_releases_pages_oldest_first(registry: Any, tmp_path: Path) -> None:
    built = build_release(tmp_path)
    async with registry_client(registry.target) as client:
        for n in range(5):
            doc = json.loads(json.dumps(built.descriptor))
            doc["releaseVersion"] = f"v{n}"
            await client.releases.RegisterRelease(
                pb.RegisterReleaseRequest(
                    tenant_id=TENANT,
                    pipeline_id=PIPELINE_ID,
                    release_descriptor_json=json.dumps(doc),
                )
            )
        seen: list[str] = []
        token = ""
        while True:
            page = await client.releases.ListReleases(
                pb.ListReleasesRequest(
                    tenant_id=TENANT, pipeline_id=PIPELINE_ID, page_size=2, page_token=token
                )
            )
            seen += [r.release_version for r in page.releases]
            token = page.next_page_token
            if not token:
                break
        assert seen == [f"v{n}" for n in range(5)]
        await expect_error(
            client.releases.ListReleases(
                pb.ListReleasesRequest(tenant_id=TENANT, pipeline_id=PIPELINE_ID, page_size=-1)
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "FIELD_OUT_OF_RANGE",
        )
        await expect_error(
            client.releases.ListReleases(
                pb.ListReleasesRequest(
                    tenant_id=TENANT, pipeline_id=PIPELINE_ID, page_token="garbage!"
                )
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "PAGE_TOKEN_INVALID",
        )
