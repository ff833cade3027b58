"""The `tpf` command line, run as a real process against a real registry process."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_registry_releases import TENANT
from tests.harness.ports import free_port
from tests.harness.services import minimal_environment
from tests.support.registry_client import ADMIN
from tests.support.release_artifacts import ARTIFACT_ID, PIPELINE_ID, BuiltRelease, build_release

pytestmark = pytest.mark.e2e

_CLI_TIMEOUT_S = 60


@dataclass(frozen=True)
class Tpf:
    """Runs `python -m tpf_cli` in `cwd`, configured through the environment as a user would."""

    target: str
    cwd: Path

    def __call__(self, *args: str, token: str | None = ADMIN) -> subprocess.CompletedProcess[str]:
        env = {
            **minimal_environment(),
            "TPF_REGISTRY_TARGET": self.target,
            "TPF_TENANT": TENANT,
            "TPF_PIPELINE": PIPELINE_ID,
        }
        if token is not None:
            env["TPF_TOKEN"] = token
        return subprocess.run(
            [sys.executable, "-m", "tpf_cli", *args],
            env=env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=_CLI_TIMEOUT_S,
            check=False,
        )

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))


def assert_fails(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {expected}"), result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def tpf(registry: Any, tmp_path: Path) -> Tpf:
    return Tpf(target=registry.target, cwd=tmp_path)


def table_rows(text: str) -> list[list[str]]:
    """Cells of an aligned table (columns are two or more spaces apart), header first."""
    return [
        [cell.strip() for cell in line.split("  ") if cell.strip()] for line in text.splitlines()
    ]


def register_by_path(tpf: Tpf, built: BuiltRelease) -> None:
    relative = built.descriptor_path.relative_to(tpf.cwd)
    out = tpf.ok("releases", "register", "--descriptor", str(relative))
    assert out.startswith(f"registered release {built.release_version}\n")


def test_register_list_activate_and_read_history(tpf: Tpf, tmp_path: Path) -> None:
    first = build_release(tmp_path / "first")
    # Upload mode: the artifact URI is relative to the descriptor, as on a build machine.
    second = build_release(
        tmp_path / "second", release_version="v2", salt="b", uri="restaurant-approvalb.jar"
    )

    # A relative descriptor path is sent absolute, as the registry requires.
    register_by_path(tpf, first)
    again = tpf.ok("releases", "register", "--descriptor", str(first.descriptor_path))
    assert again.startswith(f"release {first.release_version} was already registered")
    uploaded = tpf.json(
        "releases", "register", "--descriptor", str(second.descriptor_path), "--upload"
    )
    assert uploaded["release"]["releaseVersion"] == "v2"
    assert uploaded["release"]["primaryArtifactChecksum"] == second.digest
    stored_descriptor = uploaded["release"]["descriptor"]
    assert stored_descriptor["artifacts"][0]["uri"] == f"upload:{ARTIFACT_ID}"

    header, *rows = table_rows(tpf.ok("releases", "list"))
    assert header == ["VERSION", "STATUS", "CONTRACT", "CREATED"]
    short_contract = first.contract_version[: len("sha256:") + 12]
    assert [row[:3] for row in rows] == [
        [first.release_version, "REGISTERED", short_contract],
        ["v2", "REGISTERED", second.contract_version[: len("sha256:") + 12]],
    ]
    # One release per page: the CLI follows next_page_token to the end.
    listed = tpf.json("releases", "list", "--page-size", "1")
    assert [r["releaseVersion"] for r in listed["releases"]] == [first.release_version, "v2"]
    assert "nextPageToken" not in listed

    activated = tpf.ok("releases", "activate", "v2", "--reason", "cli rollout")
    assert activated.startswith("activated release v2 (previously none; activation 1)\n")
    assert "status:           ACTIVE" in activated
    rolled_back = tpf.json("releases", "activate", first.release_version, "--reason", "rollback")
    assert rolled_back["activation"]["previousReleaseVersion"] == "v2"
    assert rolled_back["release"]["status"] == "RELEASE_STATUS_ACTIVE"
    repeated = tpf.ok("releases", "activate", first.release_version)
    assert repeated.startswith(f"release {first.release_version} was already active\n")

    active = tpf.ok("releases", "active")
    assert f"release version:  {first.release_version}\n" in active
    assert "status:           ACTIVE\n" in active
    assert tpf.json("releases", "get", "v2")["release"]["status"] == "RELEASE_STATUS_REGISTERED"

    header, *rows = table_rows(tpf.ok("releases", "activations"))
    assert header == ["SEQ", "RELEASE", "PREVIOUS", "BY", "ACTIVATED", "REASON"]
    assert [(row[0], row[1], row[2], row[-1]) for row in rows] == [
        ("2", first.release_version, "v2", "rollback"),
        ("1", "v2", "-", "cli rollout"),
    ]
    history = tpf.json("releases", "activations", "--page-size", "1")["activations"]
    assert [a["sequence"] for a in history] == ["2", "1"]
    assert {a["activatedBy"] for a in history} == {"ops"}


def test_get_of_unknown_release_is_not_found(tpf: Tpf) -> None:
    result = tpf("releases", "get", "no-such-version")
    assert_fails(result, "NOT_FOUND RELEASE_NOT_FOUND: ")
    assert "releaseVersion=no-such-version" in result.stderr
    assert_fails(tpf("releases", "active"), "NOT_FOUND RELEASE_NOT_FOUND: ")


def test_worker_identity_is_filled_from_the_release(tpf: Tpf, tmp_path: Path) -> None:
    built = build_release(tmp_path / "release", release_version="v1")
    register_by_path(tpf, built)

    local = tpf.json(
        "workers",
        "register",
        "--worker-id",
        "restaurant-local-worker",
        "--release",
        "v1",
        "--protocol",
        "LOCAL",
    )["worker"]
    assert local["contractVersion"] == built.contract_version
    assert local["artifactId"] == ARTIFACT_ID
    assert local["artifactDigest"] == built.digest
    assert (local["protocol"], local["endpoint"]) == ("local", "in-process")
    assert local["state"] == "WORKER_STATE_HEALTHY"
    grpc_worker = tpf.ok(
        "workers",
        "register",
        "--worker-id",
        "grpc-worker",
        "--release",
        "v1",
        "--protocol",
        "grpc",
        "--endpoint",
        "127.0.0.1:50061",
    )
    assert grpc_worker.startswith("registered worker grpc-worker\n")
    assert f"artifact digest:  {built.digest}\n" in grpc_worker
    mismatch = tpf(
        "workers",
        "register",
        "--worker-id",
        "stranger",
        "--release",
        "v1",
        "--protocol",
        "local",
        "--artifact-digest",
        "sha256:" + "0" * 64,
    )
    assert_fails(mismatch, "FAILED_PRECONDITION WORKER_IDENTITY_MISMATCH: ")

    header, *rows = table_rows(tpf.ok("workers", "list"))
    assert header == ["WORKER", "STATE", "PROTOCOL", "ENDPOINT", "RELEASE", "LAST HEARTBEAT"]
    assert [row[:5] for row in rows] == [
        ["grpc-worker", "HEALTHY", "grpc", "127.0.0.1:50061", "v1"],
        ["restaurant-local-worker", "HEALTHY", "local", "in-process", "v1"],
    ]
    assert tpf.ok("workers", "list", "--release", "v9") == "no workers\n"

    # A `local` record resolves only while a running dispatcher serves it; none runs here.
    resolved = tpf.json("workers", "resolve", "--release", "v1")["workers"]
    assert [w["workerId"] for w in resolved] == ["grpc-worker"]
    header, *rows = table_rows(tpf.ok("workers", "resolve", "--release", "v1"))
    assert [row[0] for row in rows] == ["grpc-worker"]

    drained = tpf.ok("workers", "drain", "grpc-worker")
    assert drained.startswith("draining worker grpc-worker\n")
    assert "state:            DRAINING\n" in drained
    assert "state:            DRAINING\n" in tpf.ok("workers", "heartbeat", "grpc-worker")

    assert tpf.json("workers", "resolve", "--release", "v1").get("workers", []) == []
    # The worker's process restarting (registering again) does not end the drain.
    register_grpc = ("workers", "register", "--worker-id", "grpc-worker", "--release", "v1")
    again = tpf.ok(*register_grpc, "--protocol", "grpc", "--endpoint", "127.0.0.1:50061")
    assert "state:            DRAINING\n" in again
    assert tpf.json("workers", "resolve", "--release", "v1").get("workers", []) == []

    undrained = tpf.ok("workers", "undrain", "grpc-worker")
    assert undrained.startswith("undrained worker grpc-worker\n")
    assert "state:            HEALTHY\n" in undrained
    resolved = tpf.json("workers", "resolve", "--release", "v1")["workers"]
    assert [w["workerId"] for w in resolved] == ["grpc-worker"]

    assert tpf.ok("workers", "deregister", "grpc-worker").startswith("deregistered worker")
    assert_fails(tpf("workers", "undrain", "grpc-worker"), "NOT_FOUND WORKER_NOT_FOUND: ")
    assert_fails(tpf("workers", "drain", "grpc-worker"), "NOT_FOUND WORKER_NOT_FOUND: ")
    listed = tpf.json("workers", "list")["workers"]
    assert [w["workerId"] for w in listed] == ["restaurant-local-worker"]


def test_missing_token_is_unauthenticated(tpf: Tpf) -> None:
    assert_fails(tpf("releases", "list", token=None), "UNAUTHENTICATED TOKEN_MISSING: ")
    assert_fails(tpf("releases", "list", token="wrong"), "UNAUTHENTICATED TOKEN_INVALID: ")


def test_unreachable_registry_is_explained(tmp_path: Path) -> None:
    target = f"127.0.0.1:{free_port()}"
    result = Tpf(target=target, cwd=tmp_path)("releases", "list")
    assert_fails(result, f"cannot reach the registry at {target}")


def test_missing_tenant_is_a_usage_error(tmp_path: Path) -> None:
    result = Tpf(target="127.0.0.1:1", cwd=tmp_path)("releases", "list", "--tenant", "")
    assert result.returncode == 2
    assert "missing --tenant (or TPF_TENANT)" in result.stderr


def test_release_build_then_register_with_its_policy(tpf: Tpf, tmp_path: Path) -> None:
    """`tpf release build` output registers as is, dispatch mode and retries included."""
    built = tpf.json(
        "release",
        "build",
        "--pipeline",
        "restaurant_approval.pipeline:PIPELINE",
        "--out",
        str(tmp_path / "build"),
    )
    registered = tpf.json(
        "releases",
        "register",
        "--descriptor",
        built["descriptorPath"],
        "--policy",
        built["policyPath"],
    )
    release = registered["release"]
    assert release["releaseVersion"] == built["releaseVersion"]
    policy = json.loads(Path(built["policyPath"]).read_text())
    assert release["policy"]["dispatchMode"] == policy["dispatchMode"] == "DISPATCH_MODE_STEP"

    broken = tmp_path / "broken-policy.json"
    broken.write_text('{"dispatchMode": "SOMETIMES"}')
    assert_fails(
        tpf(
            "releases", "register", "--descriptor", built["descriptorPath"], "--policy", str(broken)
        ),
        "cannot use the policy file",
    )
