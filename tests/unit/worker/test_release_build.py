"""Release building: a deterministic TPF jar, contract and descriptor the registry accepts."""

from __future__ import annotations

import hashlib
import json
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from google.protobuf import json_format
from tpf_testkit.demo_release import tpf_contract

from restaurant_approval.pipeline import PIPELINE
from tpf.registry.v1 import release_pb2
from tpf_cli.__main__ import main
from tpf_registry.artifacts.contract_reader import read_embedded_contract
from tpf_registry.domain.contract import parse_contract
from tpf_registry.domain.descriptor import parse_descriptor
from tpf_worker import Pipeline, PipelineLoadError, RetryPolicy, build_release, identity_of
from tpf_worker.release import CONTRACT_PATH, contract_of, load_pipeline

SPEC = "restaurant_approval.pipeline:PIPELINE"


def test_two_builds_give_identical_bytes_digest_and_identity(tmp_path: Path) -> None:
    first = build_release(PIPELINE, tmp_path / "a")
    second = build_release(PIPELINE, tmp_path / "b")
    assert first.jar_path.read_bytes() == second.jar_path.read_bytes()
    assert first.digest == second.digest
    assert first.digest == "sha256:" + hashlib.sha256(first.jar_path.read_bytes()).hexdigest()
    assert first.identity == second.identity == identity_of(PIPELINE)
    assert first.release_version == first.digest
    assert first.jar_path.name == f"restaurant-approval-python-worker-{first.digest[7:19]}.jar"


def test_the_registry_parses_the_embedded_contract_and_the_descriptor(tmp_path: Path) -> None:
    built = build_release(PIPELINE, tmp_path, release_version="2026.08.1", artifact_id="ra")
    contract = parse_contract(read_embedded_contract(built.jar_path) or b"", artifact_id="ra")
    assert contract.pipeline_id == "org.pipelineframework.restaurantapproval"
    assert contract.contract_version == built.contract_version
    assert [s.authored_name for s in contract.steps] == [
        "Validate Order Request",
        "Create Pending Approval",
        "Await Restaurant Decision",
        "Finalize Restaurant Decision",
    ]
    assert contract.steps[2].is_await
    assert contract.steps[2].await_transport == "interaction-api"
    descriptor = parse_descriptor(built.descriptor_path.read_bytes())
    [artifact] = descriptor.artifacts
    assert (descriptor.release_version, artifact.artifact_id) == ("2026.08.1", "ra")
    assert artifact.digest == built.digest
    assert Path(artifact.uri) == built.jar_path
    assert built.jar_path.name == "ra-2026.08.1.jar"


def test_the_contract_has_every_key_tpf_writes_and_matches_the_demo_contract(
    tmp_path: Path,
) -> None:
    built = build_release(PIPELINE, tmp_path)
    with zipfile.ZipFile(built.jar_path) as jar:
        written = json.loads(jar.read(CONTRACT_PATH))
    demo = tpf_contract()
    assert list(written) == list(demo)
    assert [list(step) for step in written["steps"]] == [list(step) for step in demo["steps"]]
    assert written == demo


def test_the_contract_hash_is_the_sha256_of_the_compact_contract_without_version() -> None:
    contract = contract_of(PIPELINE)
    body = {k: v for k, v in contract.items() if k not in ("contractVersion", "contractHash")}
    compact = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    assert contract["contractHash"] == hashlib.sha256(compact.encode()).hexdigest()
    assert contract["contractVersion"] == "sha256:" + contract["contractHash"]


def test_the_policy_carries_dispatch_mode_and_step_retries(tmp_path: Path) -> None:
    pipeline = Pipeline(
        "org.pipelineframework.policy",
        dispatch_mode="segment",
        default_retry=RetryPolicy(max_retries=0),
    )
    pipeline.step(
        "Charge",
        service="ChargeService",
        input_type="java.util.Map",
        output_type="java.util.Map",
        retry=RetryPolicy(max_retries=5, initial_delay=timedelta(seconds=2), jitter=0.5),
    )(lambda value, ctx: value)
    built = build_release(pipeline, tmp_path)
    policy = json_format.ParseDict(
        json.loads(built.policy_path.read_text()), release_pb2.ReleasePolicy()
    )
    assert policy.dispatch_mode == release_pb2.DISPATCH_MODE_SEGMENT
    assert policy.default_retry.max_retries == 0
    assert policy.default_retry.HasField("max_retries")
    charge = policy.step_retry["Charge"]
    assert (charge.max_retries, charge.initial_delay.seconds, charge.jitter) == (5, 2, 0.5)
    assert not charge.HasField("multiplier")
    assert built.descriptor["artifacts"][0]["capabilities"] == [
        "local-transition-execution",
        "rest-transition-worker",
        "grpc-transition-worker",
        "sqs-transition-worker",
    ]


def test_load_pipeline_finds_the_example_and_explains_bad_specs() -> None:
    assert load_pipeline(SPEC) is PIPELINE
    for spec, fragment in (
        ("restaurant_approval.pipeline", "must look like"),
        ("no_such_module_here:PIPELINE", "cannot import"),
        ("restaurant_approval.pipeline:NOPE", "has no attribute"),
        ("restaurant_approval.pipeline:ARTIFACT_ID", "not a tpf_worker.Pipeline"),
    ):
        with pytest.raises(PipelineLoadError, match=fragment):
            load_pipeline(spec)


def test_tpf_release_build_prints_where_the_release_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["release", "build", "--pipeline", SPEC, "--out", str(tmp_path), "--json"])
    assert exited.value.code == 0
    printed = json.loads(capsys.readouterr().out)
    identity = identity_of(PIPELINE)
    assert printed["releaseVersion"] == identity.release_version
    assert printed["contractVersion"] == identity.contract_version
    assert printed["digest"] == identity.artifact_digest
    assert Path(printed["artifactPath"]).is_file()
    assert json.loads(Path(printed["descriptorPath"]).read_text())["releaseVersion"] == (
        identity.release_version
    )
    with pytest.raises(SystemExit) as exited:
        main(["release", "build", "--pipeline", "nope:X", "--out", str(tmp_path)])
    assert exited.value.code == 1
    assert "cannot import" in capsys.readouterr().err
