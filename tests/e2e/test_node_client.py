"""A Node.js client (clients/node) loading proto/ at run time, against a real registry process.

Proves that the protos are usable from another language as they stand: request and response
messages, enums, the bearer token, and the google.rpc.ErrorInfo in `grpc-status-details-bin`.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.harness.services import minimal_environment
from tests.support.registry_client import ADMIN, ADMIN_B
from tpf_devserver.demo_release import PIPELINE_ID, build_release

pytestmark = pytest.mark.e2e

CLIENT_DIR = Path(__file__).resolve().parents[2] / "clients" / "node"
# What `npm ci` installs from; node_modules is reused while their hash equals the stamp's.
_LOCK_INPUTS = ("package.json", "package-lock.json", ".npmrc")
_STAMP = "node_modules/.tpf-lock.sha256"
_NPM_CI_TIMEOUT_S = 300
_SCRIPT_TIMEOUT_S = 60
_MIN_NODE_MAJOR = 18
TENANT = "restaurant-demo"


def _well_known_types_dir() -> Path:
    """google/protobuf/*.proto as grpc_tools ships them (the ones `make setup` compiles with)."""
    spec = importlib.util.find_spec("grpc_tools")
    assert spec is not None and spec.origin is not None, "grpc_tools is not installed"
    return Path(spec.origin).parent / "_proto"


def _lock_hash() -> str:
    digest = hashlib.sha256()
    for name in _LOCK_INPUTS:
        digest.update(name.encode() + b"\0" + (CLIENT_DIR / name).read_bytes() + b"\0")
    return digest.hexdigest()


def _node_major(node: str) -> int:
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return int(version.strip().lstrip("v").split(".")[0])


@dataclass(frozen=True)
class NodeClient:
    """Runs clients/node/registry-smoke.mjs with `node` against `target`."""

    node: str

    def run(
        self, target: str, *args: str, token: str = ADMIN, tenant: str = TENANT
    ) -> subprocess.CompletedProcess[str]:
        command = [
            self.node,
            str(CLIENT_DIR / "registry-smoke.mjs"),
            "--target",
            target,
            "--token",
            token,
            "--tenant",
            tenant,
            "--pipeline",
            PIPELINE_ID,
            *args,
        ]
        return subprocess.run(
            command,
            cwd=CLIENT_DIR,
            env={**minimal_environment(), "TPF_PROTO_WKT_DIR": str(_well_known_types_dir())},
            capture_output=True,
            text=True,
            timeout=_SCRIPT_TIMEOUT_S,
            check=False,
        )

    def ok(self, target: str, *args: str, **kwargs: Any) -> Any:
        result = self.run(target, *args, **kwargs)
        assert result.returncode == 0, (result.stdout, result.stderr)
        assert result.stderr == ""
        [line] = result.stdout.splitlines()
        return json.loads(line)

    def error(self, target: str, *args: str, **kwargs: Any) -> Any:
        result = self.run(target, *args, **kwargs)
        assert result.returncode == 1, (result.stdout, result.stderr)
        assert result.stdout == ""
        [line] = result.stderr.splitlines()
        return json.loads(line)["error"]


@pytest.fixture(scope="session")
def node_client() -> Iterator[NodeClient]:
    """`npm ci` in clients/node once per session, skipped while node_modules matches the lock."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js client test needs `node` and `npm` on PATH (Node.js >= 18)")
    major = _node_major(node)
    if major < _MIN_NODE_MAJOR:
        pytest.skip(f"Node.js client test needs Node.js >= {_MIN_NODE_MAJOR}, found {major}")
    # A lock file beside node_modules, so that concurrent sessions never install at once.
    with (CLIENT_DIR / ".npm-ci.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        expected = _lock_hash()
        stamp = CLIENT_DIR / _STAMP
        if not stamp.exists() or stamp.read_text().strip() != expected:
            result = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=CLIENT_DIR,
                env=os.environ.copy(),
                capture_output=True,
                text=True,
                timeout=_NPM_CI_TIMEOUT_S,
                check=False,
            )
            assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"
            stamp.write_text(expected + "\n")
    yield NodeClient(node=node)


def test_node_client_registers_activates_and_reads_the_active_release(
    node_client: NodeClient, registry: Any, tmp_path: Path
) -> None:
    built = build_release(tmp_path)

    line = node_client.ok(registry.target, "--descriptor", str(built.descriptor_path))

    assert line == {
        "releaseVersion": built.release_version,
        "status": "RELEASE_STATUS_ACTIVE",
        "contractVersion": built.contract_version,
    }


def test_node_client_decodes_error_info_from_the_status_details_trailer(
    node_client: NodeClient, registry: Any
) -> None:
    unknown = node_client.error(
        registry.target, "--release-version", "v404", tenant="tenant-without-releases"
    )
    assert unknown["code"] == 5
    assert unknown["codeName"] == "NOT_FOUND"
    assert unknown["reason"] == "RELEASE_NOT_FOUND"
    assert unknown["domain"] == "tpf.registry"
    assert unknown["metadata"]["releaseVersion"] == "v404"
    assert unknown["details"]

    out_of_scope = node_client.error(registry.target, "--release-version", "v1", token=ADMIN_B)
    assert (out_of_scope["codeName"], out_of_scope["reason"]) == (
        "PERMISSION_DENIED",
        "TENANT_NOT_IN_SCOPE",
    )
