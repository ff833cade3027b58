"""Coordinator client for tests: stubs of every coordinator service on one channel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import grpc

from tpf.coordinator.v1 import execution_service_pb2_grpc, work_service_pb2_grpc
from tpf_rpc.channel import client_channel
from tpf_rpc.tls import ClientCertificates
from tpf_testkit.channels import FRESH_CONNECTION
from tpf_testkit.registry_client import ADMIN


@dataclass
class CoordinatorClient:
    executions: execution_service_pb2_grpc.ExecutionServiceAsyncStub
    work: work_service_pb2_grpc.WorkServiceAsyncStub
    channel: grpc.aio.Channel


@asynccontextmanager
async def coordinator_client(
    target: str, token: str | None = ADMIN, *, tls: ClientCertificates | None = None
) -> AsyncIterator[CoordinatorClient]:
    channel = client_channel(
        target,
        token=token,
        tls=tls,
        options=[("grpc.max_send_message_length", 64 << 20), *FRESH_CONNECTION],
    )
    async with channel:
        yield CoordinatorClient(
            executions=execution_service_pb2_grpc.ExecutionServiceStub(channel),
            work=work_service_pb2_grpc.WorkServiceStub(channel),
            channel=channel,
        )
