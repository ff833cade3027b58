"""The shared fixtures start real servers and can kill and restart them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import psycopg
import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import EndpointConnectionError
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.harness.moto import MotoServer
from tests.harness.postgres import PostgresServer, has_migrations
from tests.harness.redis import RedisServer
from tests.harness.services import ServiceStartError, StartService

SAMPLE_SERVICE = "tests.harness.sample_service"


def _redis(url: str, *command: str) -> bytes:
    """One RESP command over a raw socket; the raw reply."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    request = f"*{len(command)}\r\n".encode()
    for argument in command:
        request += f"${len(argument.encode())}\r\n{argument}\r\n".encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as conn:
        conn.sendall(request)
        return conn.recv(1024)


def test_redis_server_answers_commands(redis_server: RedisServer) -> None:
    key = f"k-{uuid.uuid4().hex}"

    assert _redis(redis_server.url, "PING") == b"+PONG\r\n"
    assert _redis(redis_server.url, "SET", key, "v") == b"+OK\r\n"
    assert _redis(redis_server.url, "GET", key) == b"$1\r\nv\r\n"


def test_redis_server_kill_and_restart_on_the_same_port(redis_server: RedisServer) -> None:
    redis_server.require_control()
    key = f"k-{uuid.uuid4().hex}"
    _redis(redis_server.url, "SET", key, "before")

    redis_server.kill()

    with pytest.raises(ConnectionRefusedError):
        _redis(redis_server.url, "PING")

    redis_server.restart()

    assert _redis(redis_server.url, "PING") == b"+PONG\r\n"
    # Nothing is persisted: a restarted Redis has lost its memory.
    assert _redis(redis_server.url, "GET", key) == b"$-1\r\n"


async def _queue_urls(moto_server: MotoServer) -> list[str]:
    # One attempt: botocore otherwise retries a refused connection for seconds.
    config = AioConfig(retries={"max_attempts": 1, "mode": "standard"})
    async with get_session().create_client(
        "sqs", config=config, **moto_server.client_kwargs
    ) as sqs:
        listed = await sqs.list_queues()
    urls: list[str] = listed.get("QueueUrls", [])
    return urls


async def test_moto_server_serves_sqs(moto_server: MotoServer) -> None:
    name = f"q-{uuid.uuid4().hex}"
    async with get_session().create_client("sqs", **moto_server.client_kwargs) as sqs:
        created = await sqs.create_queue(QueueName=name)
        await sqs.send_message(QueueUrl=created["QueueUrl"], MessageBody="hello")
        received = await sqs.receive_message(QueueUrl=created["QueueUrl"], WaitTimeSeconds=1)

    assert created["QueueUrl"].endswith(f"/{name}")
    assert [message["Body"] for message in received["Messages"]] == ["hello"]


async def test_moto_server_kill_and_restart_forgets_state(moto_server: MotoServer) -> None:
    name = f"q-{uuid.uuid4().hex}"
    async with get_session().create_client("sqs", **moto_server.client_kwargs) as sqs:
        await sqs.create_queue(QueueName=name)

    moto_server.kill()

    with pytest.raises(EndpointConnectionError):
        await _queue_urls(moto_server)

    moto_server.restart()

    assert not [url for url in await _queue_urls(moto_server) if url.endswith(f"/{name}")]


def test_moto_client_env_points_aws_clients_at_moto(moto_server: MotoServer) -> None:
    env = moto_server.client_env

    assert env["AWS_ENDPOINT_URL"] == moto_server.endpoint_url
    assert env["AWS_ACCESS_KEY_ID"] == moto_server.access_key_id
    assert env["AWS_DEFAULT_REGION"] == moto_server.region


async def test_database_is_fresh_and_migrated(
    database: str,
    postgres_server: PostgresServer,
    migration_components: list[tuple[str, str]],
) -> None:
    async with await psycopg.AsyncConnection.connect(database) as conn:
        cursor = await conn.execute("SELECT current_database()")
        assert await cursor.fetchone() == (urlsplit(database).path.lstrip("/"),)
        await conn.execute("CREATE TABLE only_mine (x int)")
        migrated = [name for name, package in migration_components if has_migrations(package)]
        if migrated:
            cursor = await conn.execute("SELECT DISTINCT component FROM schema_version")
            assert sorted(row[0] for row in await cursor.fetchall()) == sorted(migrated)

    if not postgres_server.can_control:
        return  # an external server may hold other runs' databases
    # Each earlier test's database was dropped when that test ended.
    async with await psycopg.AsyncConnection.connect(postgres_server.url, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 't\\_%%' AND datname <> %s",
            (urlsplit(database).path.lstrip("/"),),
        )
        others = [row[0] for row in await cursor.fetchall()]
    assert others == []


async def test_postgres_server_kill_and_restart_keeps_data(
    database: str, postgres_server: PostgresServer
) -> None:
    postgres_server.require_control()
    async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
        await conn.execute("CREATE TABLE kept (x int)")
        await conn.execute("INSERT INTO kept VALUES (42)")

    postgres_server.kill()

    with pytest.raises(psycopg.OperationalError):
        await psycopg.AsyncConnection.connect(database, connect_timeout=2)

    postgres_server.restart()

    async with await psycopg.AsyncConnection.connect(database) as conn:
        cursor = await conn.execute("SELECT x FROM kept")
        assert await cursor.fetchall() == [(42,)]


async def _health(target: str) -> int:
    # A private subchannel pool: otherwise channels to the same target share one connection
    # and its reconnect backoff, and a check right after a restart would still see the refusal
    # an earlier check got while the service was down.
    options = [("grpc.use_local_subchannel_pool", 1)]
    async with grpc.aio.insecure_channel(target, options=options) as channel:
        response = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=2
        )
    status: int = response.status
    return status


async def test_start_service_returns_a_serving_process_that_survives_kill_and_restart(
    start_service: StartService,
) -> None:
    service = start_service(SAMPLE_SERVICE, {})
    assert await _health(service.target) == health_pb2.HealthCheckResponse.SERVING
    first_pid = service.pid

    service.kill()

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _health(service.target)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE

    service.restart()

    assert service.pid != first_pid
    assert await _health(service.target) == health_pb2.HealthCheckResponse.SERVING
    assert service.terminate() == 0
    assert service.log_text().count("--- starting:") == 2


async def test_start_service_reports_an_early_exit_with_the_log_tail(
    start_service: StartService,
) -> None:
    marker = f"bad-config-{uuid.uuid4().hex}"

    with pytest.raises(ServiceStartError, match=marker) as failed:
        start_service(SAMPLE_SERVICE, {"TPF_SAMPLE_FAIL_AT_START": marker})

    assert "exited with code 3" in str(failed.value)


def test_start_service_passes_only_the_given_environment(
    start_service: StartService,
) -> None:
    service = start_service(SAMPLE_SERVICE, {"TPF_EXAMPLE": "1"})
    environ = Path(f"/proc/{service.pid}/environ").read_bytes().split(b"\0")

    assert b"TPF_EXAMPLE=1" in environ
    assert f"TPF_GRPC_PORT={service.port}".encode() in environ
    assert not [entry for entry in environ if entry.startswith(b"PYTEST_")]


def test_services_started_by_a_failing_test_are_stopped(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    inner_test = tmp_path / "test_inner.py"
    inner_test.write_text(
        textwrap.dedent(
            f"""
            from pathlib import Path

            def test_fails_after_starting_a_service(start_service):
                service = start_service({SAMPLE_SERVICE!r}, {{}})
                Path({str(pid_file)!r}).write_text(str(service.pid))
                raise AssertionError("deliberate failure")
            """
        )
    )
    repository_root = Path(__file__).resolve().parents[2]

    pytest_command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    pytest_command += ["-p", "tests.harness.services", "--basetemp", str(tmp_path / "inner")]
    pytest_command += [
        "--rootdir",
        str(repository_root),
        "-c",
        str(repository_root / "pyproject.toml"),
    ]
    inner = subprocess.run(
        [*pytest_command, str(inner_test)],
        cwd=repository_root,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert inner.returncode == 1, inner.stdout + inner.stderr
    assert "deliberate failure" in inner.stdout
    service_pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(service_pid, 0)
