"""Worker replicas sharing their nonces through a real redis-server: a signed request replayed
to another replica is refused; with Redis gone each replica still refuses replays to itself."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from org.pipelineframework.orchestrator.grpc import transition_worker_pb2_grpc as pb_grpc
from redis.asyncio import Redis

from tests.harness.redis import RedisServer
from tests.integration.worker.test_transports import (
    CAPABILITY,
    SECRET,
    command,
    echo,
    grpc_request,
    raw_execute,
)
from tpf_worker.nonces import RedisNonceCache
from tpf_worker.protocol.command import encode_command
from tpf_worker.transports.grpc import GrpcWorkerServer


@pytest.fixture
async def replicas(redis_server: RedisServer) -> AsyncIterator[list[str]]:
    """Two gRPC worker replicas whose nonce caches share one Redis (keys of this test only)."""
    await asyncio.to_thread(redis_server.ensure_running)
    prefix = f"tpf:worker-nonce:test-{uuid.uuid4().hex}:"
    caches = [RedisNonceCache(Redis.from_url(redis_server.url), prefix=prefix) for _ in range(2)]
    servers = [
        GrpcWorkerServer(echo, CAPABILITY, shared_secret=SECRET, nonces=cache) for cache in caches
    ]
    ports = [await server.start("127.0.0.1", 0) for server in servers]
    yield [f"127.0.0.1:{port}" for port in ports]
    for server in servers:
        await server.stop(1.0)
    for cache in caches:
        await cache.close()


async def execute(endpoint: str, request: Any) -> None:
    async with grpc.aio.insecure_channel(endpoint) as channel:
        await pb_grpc.TransitionWorkerServiceStub(channel).Execute(request, timeout=5)


async def test_a_request_replayed_to_another_replica_is_refused(replicas: list[str]) -> None:
    first, second = replicas
    request = grpc_request(encode_command(command()))
    await execute(first, request)
    error = await raw_execute(second, request)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    # Fresh requests go through either replica.
    await execute(second, grpc_request(encode_command(command())))


async def test_without_redis_each_replica_still_refuses_its_own_replays(
    replicas: list[str], redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    redis_server.require_control()
    first, second = replicas
    await asyncio.to_thread(redis_server.kill)
    try:
        request = grpc_request(encode_command(command()))
        await execute(first, request)
        assert (await raw_execute(first, request)).code() == grpc.StatusCode.UNAUTHENTICATED
        assert "nonces are checked in this replica's memory only" in caplog.text
        # Known limit while Redis is down: the other replica cannot know this nonce.
        await execute(second, request)
    finally:
        await asyncio.to_thread(redis_server.restart)
