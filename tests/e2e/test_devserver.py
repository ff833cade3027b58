"""`make dev`'s launcher as a user runs it: up, reflection, the banner's walkthrough, Ctrl-C."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.harness.ports import free_port
from tests.harness.wait import wait_until_sync
from tpf_devserver.reflect import describe, list_services
from tpf_devserver.settings import DEMO_TOKEN

pytestmark = pytest.mark.e2e


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        children: list[psutil.Process] = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return children


def test_dev_suite_starts_serves_the_walkthrough_and_stops_cleanly(
    embedded_data_dir: Path, tmp_path: Path
) -> None:
    port = free_port()
    coordinator_port = free_port()
    env = {
        **os.environ,
        "TPF_DATA_DIR": str(embedded_data_dir),
        "TPF_REGISTRY_PORT": str(port),
        "TPF_COORDINATOR_PORT": str(coordinator_port),
    }
    env.pop("TPF_DATABASE_URL", None)
    output = tmp_path / "dev.out"
    with output.open("wb") as sink:
        dev = subprocess.Popen(
            [sys.executable, "-m", "tpf_devserver"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_sync(
            lambda: "Ctrl-C stops everything" in output.read_text() or dev.poll() is not None,
            timeout_s=120,
            what="the dev suite's banner",
        )
        banner = output.read_text()
        assert dev.poll() is None, banner
        assert f"127.0.0.1:{port}" in banner and DEMO_TOKEN in banner
        children = _descendants(dev.pid)
        assert children, "services run as child processes"

        services = list_services(f"127.0.0.1:{port}")
        assert {"tpf.registry.v1.ReleaseService", "tpf.registry.v1.WorkerService"} <= set(services)
        coordinator_services = list_services(f"127.0.0.1:{coordinator_port}")
        assert {
            "tpf.coordinator.v1.ExecutionService",
            "tpf.coordinator.v1.WorkService",
        } <= set(coordinator_services)
        assert any(
            line.startswith("rpc RegisterRelease(")
            for line in describe(f"127.0.0.1:{port}", "tpf.registry.v1.ReleaseService")
        )

        # Run the walkthrough the banner prints, command by command.
        cli_env = {
            **os.environ,
            "TPF_REGISTRY_TARGET": f"127.0.0.1:{port}",
            "TPF_TOKEN": DEMO_TOKEN,
            "TPF_TENANT": "restaurant-demo",
            "TPF_PIPELINE": "org.pipelineframework.restaurantapproval",
        }
        joined: list[str] = []
        for line in banner.splitlines():
            stripped = line.strip()
            if joined and joined[-1].endswith("\\"):
                joined[-1] = joined[-1][:-1] + " " + stripped
            elif stripped.startswith(".venv/bin/tpf "):
                joined.append(stripped)
        commands = [line.split(None, 1)[1] for line in joined]
        assert len(commands) >= 4, banner
        for command in commands:
            result = subprocess.run(
                [sys.executable, "-m", "tpf_cli", *shlex.split(command)],
                env=cli_env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode == 0, (command, result.stdout, result.stderr)
        active = subprocess.run(
            [sys.executable, "-m", "tpf_cli", "releases", "active"],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "ACTIVE" in active.stdout, active

        dev.send_signal(signal.SIGINT)
        assert dev.wait(timeout=60) == 0, output.read_text()
        wait_until_sync(
            lambda: not [c for c in children if c.is_running() and c.status() != "zombie"],
            timeout_s=30,
            what="no process left behind",
        )
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)
            dev.wait()
