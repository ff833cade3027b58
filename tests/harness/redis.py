"""The `redis_server` fixture: a throwaway redis-server, or the one in TPF_TEST_REDIS_URL."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.harness.ports import free_port
from tests.harness.processes import ChildProcess, ProcessExited
from tests.harness.wait import WaitTimeout, wait_until_sync

EXTERNAL_URL_ENV = "TPF_TEST_REDIS_URL"
_HOST = "127.0.0.1"
_START_TIMEOUT_S = 20.0


class RedisServer:
    """Handle on the test Redis: `.url`, and `.kill()` / `.restart()` when we own the process.

    Our redis-server keeps nothing on disk (`--save '' --appendonly no`), so a restart comes
    back empty, like a Redis that lost its memory.
    """

    def __init__(self, *, url: str, process: ChildProcess | None) -> None:
        self._url = url
        self._process = process

    @property
    def url(self) -> str:
        return self._url

    @property
    def can_control(self) -> bool:
        """False for an external server (TPF_TEST_REDIS_URL): kill/restart tests must skip."""
        return self._process is not None

    def require_control(self) -> None:
        if not self.can_control:
            pytest.skip(f"Redis is external ({EXTERNAL_URL_ENV}); cannot kill or restart it")

    def kill(self) -> None:
        """SIGKILL redis-server."""
        self._controlled().kill()

    def restart(self) -> None:
        """Stop (SIGKILL if still running) and start again on the same port; data is gone."""
        process = self._controlled()
        process.kill()
        _start_and_wait(process, self._url)

    def ensure_running(self) -> None:
        """Start the server again if a test killed it and did not restart it."""
        if self._process is not None and not self._process.is_running:
            _start_and_wait(self._process, self._url)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()

    def _controlled(self) -> ChildProcess:
        if self._process is None:
            raise RuntimeError(f"Redis is external ({EXTERNAL_URL_ENV}); cannot control it")
        return self._process


def redis_ping(url: str, *, timeout_s: float = 1.0) -> bool:
    """Send PING in RESP over a raw socket; True when the answer is +PONG."""
    parts = urlsplit(url)
    with socket.create_connection(
        (parts.hostname or _HOST, parts.port or 6379), timeout=timeout_s
    ) as conn:
        conn.sendall(b"*1\r\n$4\r\nPING\r\n")
        return conn.recv(64) == b"+PONG\r\n"


def _start_and_wait(process: ChildProcess, url: str) -> None:
    process.start()

    def answers_ping() -> bool:
        process.raise_if_exited("redis-server")
        return redis_ping(url)

    try:
        wait_until_sync(
            answers_ping, timeout_s=_START_TIMEOUT_S, what="redis PONG", ignore=(OSError,)
        )
    except (WaitTimeout, ProcessExited) as error:
        process.kill()
        raise RuntimeError(f"redis-server did not start:\n{process.log_tail()}") from error


def _redis_command(port: int, workdir: Path) -> list[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(f"redis-server not found; run `make system-deps` or set {EXTERNAL_URL_ENV}")
    return [
        binary,
        "--port",
        str(port),
        "--bind",
        _HOST,
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
        "--daemonize",
        "no",
    ]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One Redis for the whole run, on a free port, so tests never touch a developer's Redis.

    Set TPF_TEST_REDIS_URL to use an existing server instead (then `can_control` is False).
    A test that kills it restarts it before it ends.
    """
    external_url = os.environ.get(EXTERNAL_URL_ENV)
    if external_url:
        yield RedisServer(url=external_url, process=None)
        return
    workdir = tmp_path_factory.mktemp("redis")
    port = free_port(_HOST)
    process = ChildProcess(_redis_command(port, workdir), log_path=workdir / "redis.log")
    server = RedisServer(url=f"redis://{_HOST}:{port}/0", process=process)
    _start_and_wait(process, server.url)
    try:
        yield server
    finally:
        server.stop()
