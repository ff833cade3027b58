"""Our services as real processes (`python -m tpf_<name>`), ready when gRPC health says SERVING.

The `start_service` fixture is a factory, so a test can start several services (or several
replicas of one) and every one of them is stopped when the test ends, pass or fail.

The handle's methods block while they wait. From an async test under load, call them through
`await asyncio.to_thread(process.restart)` so the event loop keeps driving the load.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Protocol

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.harness.ports import free_port
from tests.harness.processes import ChildProcess, ProcessExited
from tests.harness.wait import WaitTimeout, wait_until_sync

GRPC_PORT_ENV = "TPF_GRPC_PORT"
_HOST = "127.0.0.1"
_READY_TIMEOUT_S = 30.0
_HEALTH_CHECK_TIMEOUT_S = 1.0
# gRPC backs off up to minutes between connection attempts to an address that refused; while
# a service boots we want to notice within milliseconds that it now listens.
_FAST_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 20),
    ("grpc.min_reconnect_backoff_ms", 20),
    ("grpc.max_reconnect_backoff_ms", 200),
]


class ServiceStartError(RuntimeError):
    """A service process exited, or never reported SERVING, during startup."""


class ServiceProcess:
    """Handle on one service process listening for gRPC on 127.0.0.1:`port`."""

    def __init__(
        self,
        module: str,
        *,
        port: int,
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path,
        ready_timeout_s: float = _READY_TIMEOUT_S,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self.module = module
        self.port = port
        self._ready_timeout_s = ready_timeout_s
        # TLS for the readiness check, for a service started with TPF_TLS_CERT_FILE.
        self._credentials = credentials
        self._process = ChildProcess(
            [sys.executable, "-m", module], log_path=log_path, env=env, cwd=cwd
        )

    @property
    def target(self) -> str:
        """gRPC target for `grpc.aio.insecure_channel`."""
        return f"{_HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def is_running(self) -> bool:
        return self._process.is_running

    @property
    def log_path(self) -> Path:
        return self._process.log_path

    def start(self) -> None:
        """Start the process and wait until its health check answers SERVING."""
        self._process.start()
        try:
            wait_until_sync(
                self._is_serving,
                timeout_s=self._ready_timeout_s,
                what=f"{self.module} health SERVING on {self.target}",
                ignore=(grpc.RpcError,),
            )
        except (WaitTimeout, ProcessExited) as error:
            self._process.kill()
            raise ServiceStartError(
                f"{self.module} did not become SERVING on {self.target}: {error}\n"
                f"{self.log_path} ends with:\n{self._process.log_tail()}"
            ) from error

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks run, as in a crash or an OOM kill."""
        self._process.kill()

    def terminate(self, timeout_s: float = 10.0) -> int:
        """SIGTERM and wait for a graceful exit (SIGKILL after `timeout_s`); the exit code."""
        return self._process.terminate(timeout_s)

    def restart(self) -> None:
        """Stop (SIGTERM if still running) and start again on the same port and environment."""
        if self._process.is_running:
            self._process.terminate()
        self.start()

    def stop(self) -> None:
        """terminate() if it was ever started; what the fixture runs at test end."""
        self._process.stop()

    def log_text(self) -> str:
        """Everything the process wrote to stdout and stderr, across restarts."""
        return self._process.log_text()

    def _is_serving(self) -> bool:
        self._process.raise_if_exited(self.module)
        with self._channel() as channel:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=_HEALTH_CHECK_TIMEOUT_S
            )
        serving: bool = response.status == health_pb2.HealthCheckResponse.SERVING
        return serving

    def _channel(self) -> grpc.Channel:
        if self._credentials is None:
            return grpc.insecure_channel(self.target, options=_FAST_RECONNECT)
        return grpc.secure_channel(self.target, self._credentials, options=_FAST_RECONNECT)


class StartService(Protocol):
    def __call__(
        self,
        module: str,
        env: Mapping[str, str],
        *,
        port: int | None = None,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> ServiceProcess: ...


def minimal_environment() -> dict[str, str]:
    """What a service needs from our environment; everything else it gets explicitly.

    Services read configuration only from TPF_* variables, so a developer's shell (a stray
    TPF_DATABASE_URL, AWS credentials) must not leak into a test's processes.
    """
    inherited = {
        key: os.environ[key] for key in ("PATH", "HOME", "TMPDIR", "LANG") if key in os.environ
    }
    return {**inherited, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}


@pytest.fixture
def start_service(tmp_path: Path, pytestconfig: pytest.Config) -> Iterator[StartService]:
    """Factory: `start_service("tpf_registry", {"TPF_DATABASE_URL": url})` → a ready process.

    Each process gets a free port in TPF_GRPC_PORT (unless `port` is given), runs with the
    repository root as working directory, and logs to a file in the test's tmp dir. All of them
    are stopped (SIGTERM, then SIGKILL) when the test ends. `credentials` (TLS) are what the
    readiness check connects with, for a service that serves TLS.
    """
    started: list[ServiceProcess] = []

    def start(
        module: str,
        env: Mapping[str, str],
        *,
        port: int | None = None,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> ServiceProcess:
        chosen_port = port if port is not None else free_port(_HOST)
        process = ServiceProcess(
            module,
            port=chosen_port,
            env={**minimal_environment(), **env, GRPC_PORT_ENV: str(chosen_port)},
            log_path=tmp_path / f"{module}-{len(started)}.log",
            cwd=pytestconfig.rootpath,
            credentials=credentials,
        )
        started.append(process)
        process.start()
        return process

    with contextlib.ExitStack() as cleanup:
        yield start
        # ExitStack runs every callback even if one raises: no process outlives the test.
        for process in started:
            cleanup.callback(process.stop)
