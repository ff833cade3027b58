"""client_channel over a target naming several replicas: calls spread over all of them, and a
replica that stops is skipped without a failed call."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import grpc
import pytest

from tests.harness.ports import free_port
from tpf_rpc.channel import client_channel

_METHOD = "/tpf.test.Replica/Name"


def _answering(name: str) -> grpc.GenericRpcHandler:
    async def answer(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return name.encode()

    return grpc.method_handlers_generic_handler(
        "tpf.test.Replica", {"Name": grpc.unary_unary_rpc_method_handler(answer)}
    )


@pytest.fixture
async def replicas() -> AsyncIterator[dict[str, tuple[grpc.aio.Server, int]]]:
    """Two servers on 127.0.0.1, each answering `Name` with its own name."""
    servers: dict[str, tuple[grpc.aio.Server, int]] = {}
    for name in ("a", "b"):
        server = grpc.aio.server()
        server.add_generic_rpc_handlers([_answering(name)])
        port = free_port("127.0.0.1")
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        servers[name] = (server, port)
    yield servers
    for server, _ in servers.values():
        await server.stop(None)


async def _names(channel: grpc.aio.Channel, calls: int) -> Counter[str]:
    call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(_METHOD)
    return Counter([(await call(b"", timeout=5)).decode() for _ in range(calls)])


async def test_calls_spread_over_every_replica_the_target_names(
    replicas: dict[str, tuple[grpc.aio.Server, int]],
) -> None:
    target = "ipv4:" + ",".join(f"127.0.0.1:{port}" for _, port in replicas.values())
    async with client_channel(target, token=None) as channel:
        await channel.channel_ready()
        assert set(await _names(channel, 20)) == {"a", "b"}


async def test_a_stopped_replica_is_skipped_without_a_failed_call(
    replicas: dict[str, tuple[grpc.aio.Server, int]],
) -> None:
    target = "ipv4:" + ",".join(f"127.0.0.1:{port}" for _, port in replicas.values())
    async with client_channel(target, token=None) as channel:
        await channel.channel_ready()
        assert set(await _names(channel, 20)) == {"a", "b"}
        await replicas["a"][0].stop(None)
        assert await _names(channel, 20) == Counter({"b": 20})
