"""The command line every service shares: commands, --help listing the settings, --version."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tpf_config.service_cli import parse_service_args
from tpf_coordinator.settings import CoordinatorSettings
from tpf_registry.settings import RegistrySettings

SERVICES = {
    "tpf_registry": ("tpf-registry", "TPF_REGISTRY_ARTIFACT_ROOTS"),
    "tpf_coordinator": ("tpf-coordinator", "TPF_REGISTRY_TARGET"),
    "tpf_dispatcher": ("tpf-dispatcher", "TPF_LOCAL_PIPELINES"),
    "tpf_gateway": ("tpf-gateway", "TPF_GATEWAY_FORWARD_CALLER_TOKEN"),
    "tpf_sqs_bridge": ("tpf-sqs-bridge", "TPF_SQS_MAX_RECEIVES"),
}


def test_no_command_serves() -> None:
    assert parse_service_args("tpf-coordinator", CoordinatorSettings, []) == "serve"
    commands = ("serve", "migrate")
    assert parse_service_args("tpf-registry", RegistrySettings, [], commands=commands) == "serve"


@pytest.mark.parametrize("name", ["serve", "migrate"])
def test_a_named_command_is_chosen(name: str) -> None:
    commands = ("serve", "migrate")
    assert parse_service_args("tpf-registry", RegistrySettings, [name], commands=commands) == name


def test_an_unknown_command_is_refused_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse_service_args(
            "tpf-registry", RegistrySettings, ["migrat"], commands=("serve", "migrate")
        )
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "usage: tpf-registry" in err
    assert "invalid choice: 'migrat'" in err


@pytest.mark.parametrize("module", sorted(SERVICES))
def test_help_prints_every_setting_and_starts_nothing(module: str) -> None:
    """With no database, tokens or ports configured, --help still answers at once, exit 0."""
    prog, a_setting = SERVICES[module]
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "TPF_DATABASE_URL": "postgresql://nowhere.invalid/x"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {prog}")
    for variable in (
        "TPF_LOG_LEVEL",
        "TPF_GRPC_PORT" if module != "tpf_gateway" else "TPF_GATEWAY_PORT",
        a_setting,
    ):
        assert f"\n  {variable} (default: " in done.stdout, variable
    assert done.stderr == "", "nothing started, nothing logged"
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("module", sorted(SERVICES))
def test_version_names_the_service(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", module, "--version"], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout.split()[0]) == (0, SERVICES[module][0])
    assert done.stdout.split()[1][0].isdigit()


@pytest.mark.parametrize(("module", "prog"), [("tpf_cli", "tpf"), ("tpf_worker", "tpf-worker")])
def test_the_cli_and_the_worker_say_their_version(module: str, prog: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", module, "--version"], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout.split()[0]) == (0, prog)
