"""A registry client for tests: both stubs on one channel, calls carrying a bearer token."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc

from tpf.registry.v1 import release_service_pb2_grpc, worker_service_pb2_grpc

TOKENS = [
    {"token": "admin-all-secret", "subject": "ops", "roles": ["admin"], "tenants": ["*"]},
    {"token": "admin-b-secret", "subject": "ops-b", "roles": ["admin"], "tenants": ["tenant-b"]},
    {
        "token": "worker-a-secret",
        "subject": "worker-a",
        "roles": ["worker"],
        "tenants": ["tenant-a"],
    },
    {
        "token": "cp-a-secret",
        "subject": "cp-a",
        "roles": ["control-plane"],
        "tenants": ["tenant-a"],
    },
]
ADMIN = "admin-all-secret"
ADMIN_B = "admin-b-secret"
WORKER_A = "worker-a-secret"
CONTROL_PLANE_A = "cp-a-secret"


def auth_env() -> dict[str, str]:
    return {"TPF_AUTH_TOKENS": json.dumps(TOKENS)}


@dataclass
class RegistryClient:
    releases: release_service_pb2_grpc.ReleaseServiceAsyncStub
    workers: worker_service_pb2_grpc.WorkerServiceAsyncStub
    channel: grpc.aio.Channel


class _BearerToken(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, token: str | None) -> None:
        self._token = token

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Any],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        if self._token is not None:
            metadata = list(client_call_details.metadata or [])
            metadata.append(("authorization", f"Bearer {self._token}"))
            client_call_details = grpc.aio.ClientCallDetails(
                client_call_details.method,
                client_call_details.timeout,
                grpc.aio.Metadata(*metadata),
                client_call_details.credentials,
                client_call_details.wait_for_ready,
            )
        return await continuation(client_call_details, request)


@asynccontextmanager
async def registry_client(target: str, token: str | None = ADMIN) -> AsyncIterator[RegistryClient]:
    options = [("grpc.max_send_message_length", 80 << 20)]
    async with grpc.aio.insecure_channel(
        target, interceptors=[_BearerToken(token)], options=options
    ) as channel:
        yield RegistryClient(
            releases=release_service_pb2_grpc.ReleaseServiceStub(channel),
            workers=worker_service_pb2_grpc.WorkerServiceStub(channel),
            channel=channel,
        )
