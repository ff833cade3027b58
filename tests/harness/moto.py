"""The `moto_server` fixture: a local AWS (SQS, S3, ...) for the SQS bridge and artifact store."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tests.harness.ports import free_port
from tests.harness.processes import ChildProcess, ProcessExited
from tests.harness.wait import WaitTimeout, wait_until_sync

_HOST = "127.0.0.1"
_START_TIMEOUT_S = 30.0


class MotoServer:
    """Handle on a moto_server process; its state lives in memory, so a restart empties it.

    moto accepts any credentials, but botocore refuses to sign a request without some. Clients
    take the fake ones below, either as keyword arguments (`client_kwargs`) or, for service
    processes, as environment variables (`client_env`); nothing is set in our own os.environ.
    """

    region = "us-east-1"
    access_key_id = "testing"
    secret_access_key = "testing"

    def __init__(self, *, port: int, process: ChildProcess) -> None:
        self._port = port
        self._process = process

    @property
    def endpoint_url(self) -> str:
        return f"http://{_HOST}:{self._port}"

    @property
    def can_control(self) -> bool:
        """Always True: there is no external-moto option."""
        return True

    @property
    def client_kwargs(self) -> dict[str, str]:
        """Keyword arguments for `session.create_client(service, **client_kwargs)`."""
        return {
            "endpoint_url": self.endpoint_url,
            "region_name": self.region,
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
        }

    @property
    def client_env(self) -> dict[str, str]:
        """Environment for a process whose AWS clients must talk to this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
        }

    def kill(self) -> None:
        """SIGKILL moto_server."""
        self._process.kill()

    def restart(self) -> None:
        """Stop (SIGKILL if still running) and start again on the same port, with no state."""
        self._process.kill()
        _start_and_wait(self._process, self.endpoint_url)

    def ensure_running(self) -> None:
        """Start the server again if a test killed it and did not restart it."""
        if not self._process.is_running:
            _start_and_wait(self._process, self.endpoint_url)

    def stop(self) -> None:
        self._process.terminate()


def _answers_http(endpoint_url: str) -> bool:
    try:
        with urllib.request.urlopen(endpoint_url, timeout=1.0):
            return True
    except urllib.error.HTTPError:
        return True  # an error status is still an answer: the server is up


def _start_and_wait(process: ChildProcess, endpoint_url: str) -> None:
    process.start()

    def is_ready() -> bool:
        process.raise_if_exited("moto_server")
        return _answers_http(endpoint_url)

    try:
        wait_until_sync(
            is_ready,
            timeout_s=_START_TIMEOUT_S,
            what="moto_server answering HTTP",
            ignore=(urllib.error.URLError, OSError),
        )
    except (WaitTimeout, ProcessExited) as error:
        process.kill()
        raise RuntimeError(f"moto_server did not start:\n{process.log_tail()}") from error


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto_server for the whole run, on a free port: real SQS/S3 wire protocol, no AWS.

    Started as `python -m moto.server` with our own interpreter, so it does not depend on the
    venv's bin/ being on PATH. Tests isolate themselves by naming queues and buckets uniquely.
    """
    workdir = tmp_path_factory.mktemp("moto")
    port = free_port(_HOST)
    process = ChildProcess(
        [sys.executable, "-m", "moto.server", "-H", _HOST, "-p", str(port)],
        log_path=workdir / "moto.log",
    )
    server = MotoServer(port=port, process=process)
    _start_and_wait(process, server.endpoint_url)
    try:
        yield server
    finally:
        server.stop()
