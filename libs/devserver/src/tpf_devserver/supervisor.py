"""Run each service as its own child process, wait for gRPC health, stop them all together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


@dataclass
class ServiceSpec:
    """One child process: `python -m <module> <args>`, ready when `ready()` says so.

    Our gRPC services are ready when their health check answers SERVING (the default); others
    (the example worker, the REST gateway) bring their own check.
    """

    name: str
    module: str
    port: int
    env: dict[str, str]
    host: str = "127.0.0.1"
    args: Sequence[str] = ()
    kind: str = "grpc"
    ready: Callable[[], bool] | None = None

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    def is_ready(self) -> bool:
        return self.ready() if self.ready is not None else is_serving(self.target)


@dataclass
class RunningService:
    spec: ServiceSpec
    process: subprocess.Popen[bytes]
    log_path: Path


class ServiceFailed(RuntimeError):
    """A service exited or did not become healthy; the message holds its log tail."""


def _tail(path: Path, limit: int = 3000) -> str:
    try:
        return path.read_bytes()[-limit:].decode(errors="replace")
    except FileNotFoundError:
        return ""


def http_ok(url: str, timeout_s: float = 1.0) -> Callable[[], bool]:
    """A readiness check: GET `url` answers 2xx."""

    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                return 200 <= int(response.status) < 300
        except (urllib.error.URLError, OSError):
            return False

    return check


def grpc_listening(target: str, timeout_s: float = 1.0) -> Callable[[], bool]:
    """A readiness check for gRPC servers without a health service (TPF's worker protocol)."""

    def check() -> bool:
        with grpc.insecure_channel(target) as channel:
            try:
                grpc.channel_ready_future(channel).result(timeout=timeout_s)
            except grpc.FutureTimeoutError:
                return False
        return True

    return check


def is_serving(target: str, timeout_s: float = 1.0) -> bool:
    with grpc.insecure_channel(target) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout_s
            )
        except grpc.RpcError:
            return False
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


@dataclass
class Supervisor:
    log_dir: Path
    running: list[RunningService] = field(default_factory=list)

    def start(self, spec: ServiceSpec, *, timeout_s: float = 60.0) -> RunningService:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{spec.name}.log"
        env = {**os.environ, **spec.env}
        if spec.kind == "grpc":
            env["TPF_GRPC_PORT"] = str(spec.port)
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", spec.module, *spec.args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Own process group: Ctrl-C in the terminal reaches only us; we stop children.
                start_new_session=True,
            )
        service = RunningService(spec, process, log_path)
        self.running.append(service)
        deadline = time.monotonic() + timeout_s
        pause_s = 0.05
        while not spec.is_ready():
            if process.poll() is not None:
                raise ServiceFailed(
                    f"{spec.name} exited with {process.returncode}; log {log_path}:\n"
                    + _tail(log_path)
                )
            if time.monotonic() > deadline:
                raise ServiceFailed(
                    f"{spec.name} not healthy after {timeout_s:.0f}s; log {log_path}:\n"
                    + _tail(log_path)
                )
            time.sleep(pause_s)
            pause_s = min(pause_s * 1.5, 0.5)
        return service

    def first_exited(self) -> RunningService | None:
        return next((s for s in self.running if s.process.poll() is not None), None)

    def stop_all(self, *, grace_s: float = 15.0) -> None:
        """SIGTERM every service (newest first), then SIGKILL what is left after the grace."""
        for service in reversed(self.running):
            if service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for service in reversed(self.running):
            remaining = max(0.0, deadline - time.monotonic())
            try:
                service.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                service.process.kill()
                service.process.wait()
        self.running.clear()
