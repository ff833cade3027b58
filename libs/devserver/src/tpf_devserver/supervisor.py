"""Run each service as its own child process, wait for gRPC health, keep it running (a child
that exits is started again, see restarts.py), stop them all together."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tpf_devserver.restarts import Keeper, ServiceFailed, describe_exit
from tpf_store.embedded import EmbeddedPostgres, EmbeddedPostgresError

__all__ = [
    "RunningService",
    "ServiceFailed",
    "ServiceSpec",
    "Supervisor",
    "grpc_listening",
    "http_ok",
    "is_serving",
]

# How long a service may take to become ready, at the first start and after a crash.
READY_TIMEOUT_S = 60.0
# How long each service gets to stop after SIGTERM before it is killed.
STOP_GRACE_S = 10.0


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
    # Run after each restart once the child is ready (moto starts empty: create the queues).
    after_restart: Callable[[], object] | None = None

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    def is_ready(self) -> bool:
        return self.ready() if self.ready is not None else is_serving(self.target)


@dataclass
class RunningService:
    """A service's current process; a keeper replaces it when the service is restarted."""

    spec: ServiceSpec
    process: subprocess.Popen[bytes]
    log_path: Path
    restarts: int = 0


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


class _ServiceChild:
    """A service as its keeper sees it (restarts.Restartable)."""

    def __init__(self, service: RunningService) -> None:
        self._service = service

    @property
    def name(self) -> str:
        return self._service.spec.name

    @property
    def log_location(self) -> str:
        return str(self._service.log_path)

    def exit_code(self) -> int | None:
        return self._service.process.poll()

    def restart(self, stopping: threading.Event) -> str:
        service = self._service
        # Anything the dead process left in its session (it ran in a new one) goes with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(service.process.pid, signal.SIGKILL)
        service.restarts += 1
        service.process = _spawn(service.spec, service.log_path, f"restart {service.restarts}")
        _wait_until_ready(service, READY_TIMEOUT_S, stopping)
        if not stopping.is_set() and service.spec.after_restart is not None:
            service.spec.after_restart()
        return f"pid {service.process.pid}, restart {service.restarts}"


class _PostgresChild:
    """The embedded Postgres as its keeper sees it: start() also recovers from a crash."""

    name = "postgres"

    def __init__(self, server: EmbeddedPostgres) -> None:
        self._server = server

    @property
    def log_location(self) -> str:
        return str(self._server.log_path)

    def exit_code(self) -> int | None:
        return self._server.exit_code()

    def restart(self, stopping: threading.Event) -> str:
        try:
            self._server.start()
        except EmbeddedPostgresError as error:
            raise ServiceFailed(str(error)) from None
        return f"pid {self._server.pid}"


def _spawn(spec: ServiceSpec, log_path: Path, why: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, **spec.env}
    if spec.kind == "grpc":
        env["TPF_GRPC_PORT"] = str(spec.port)
    with log_path.open("ab") as log:
        # A line of ours between runs, so a reader of the log sees where each one begins.
        log.write(f"--- tpf-dev: starting {spec.name} ({why})\n".encode())
        log.flush()
        return subprocess.Popen(
            [sys.executable, "-m", spec.module, *spec.args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Own process group: Ctrl-C in the terminal reaches only us; we stop children.
            start_new_session=True,
        )


def _wait_until_ready(
    service: RunningService, timeout_s: float, stopping: threading.Event | None = None
) -> None:
    spec, process, log_path = service.spec, service.process, service.log_path
    deadline = time.monotonic() + timeout_s
    pause_s = 0.05
    while not spec.is_ready():
        if process.poll() is not None:
            raise ServiceFailed(
                f"{spec.name} exited ({describe_exit(process.returncode)}); log {log_path}:\n"
                + _tail(log_path)
            )
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise ServiceFailed(
                f"{spec.name} not healthy after {timeout_s:.0f}s; log {log_path}:\n"
                + _tail(log_path)
            )
        if stopping is not None and stopping.is_set():
            return
        time.sleep(pause_s)
        pause_s = min(pause_s * 1.5, 0.5)


@dataclass
class Supervisor:
    """Starts the services, keeps each running (and the embedded Postgres, when given one),
    and stops them all: services newest first, one after the other, Postgres last."""

    log_dir: Path
    running: list[RunningService] = field(default_factory=list)
    _postgres: EmbeddedPostgres | None = field(default=None, init=False)
    _keepers: list[Keeper] = field(default_factory=list, init=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False)

    def keep_postgres(self, server: EmbeddedPostgres) -> None:
        """Restart `server` whenever it exits (it runs already); stop it after the services."""
        self._postgres = server
        self._keep(_PostgresChild(server))

    def start(self, spec: ServiceSpec, *, timeout_s: float = READY_TIMEOUT_S) -> RunningService:
        """Start `spec` and wait until it is ready (ServiceFailed if it does not get there);
        from then on it is restarted whenever it exits."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{spec.name}.log"
        service = RunningService(spec, _spawn(spec, log_path, "first start"), log_path)
        self.running.append(service)
        _wait_until_ready(service, timeout_s)
        self._keep(_ServiceChild(service))
        return service

    def stop_all(
        self, *, waves: Sequence[Collection[str]] = (), grace_s: float = STOP_GRACE_S
    ) -> None:
        """Stop restarting, then stop the services: wave by wave (SIGTERM to a wave's services
        together, then wait for them; SIGKILL after `grace_s`), those in no wave after them one
        at a time newest first, so a service does not outlive what it depends on; Postgres last.
        """
        self._stopping.set()
        for keeper in self._keepers:
            keeper.join()
        self._keepers.clear()
        named = {name for wave in waves for name in wave}
        ordered = [[s for s in self.running if s.spec.name in wave] for wave in waves]
        ordered += [[s] for s in reversed(self.running) if s.spec.name not in named]
        for wave_services in ordered:
            for service in wave_services:
                if service.process.poll() is None:
                    service.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            for service in wave_services:
                try:
                    service.process.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    service.process.kill()
                    service.process.wait()
        self.running.clear()
        if self._postgres is not None:
            self._postgres.stop()

    def _keep(self, child: _ServiceChild | _PostgresChild) -> None:
        keeper = Keeper(child, self._stopping)
        self._keepers.append(keeper)
        keeper.start()
