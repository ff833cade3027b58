"""A registry client for tests: both stubs on one channel, calls carrying a bearer token."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import grpc
from tpf.registry.v1 import release_service_pb2_grpc, worker_service_pb2_grpc

TOKENS = [
    {"token": "admin-all-secret", "subject": "ops", "roles": ["admin"], "tenants": ["*"]},
    {"token": "admin-b-secret", "subject": "ops-b", "roles": ["admin"], "tenants": ["tenant-b"]},
    {"token": "worker-a-secret", "subject": "worker-a", "roles": ["worker"], "tenants": ["tenant-a"]},
    {"token": "cp-a-secret", "subject": "cp-a", "roles": ["control-plane"], "tenants": ["tenant-a"]},
]
ADMIN = "admin-all-secret"
ADMIN_B = "admin-b-secret"
WORKER_A = "worker-a-secret"
CONTROL_PLANE_A = "cp-a-secret"


def auth_env() -> dict[str, str]:
    return {"TPF_AUTH_TOKENS": json.dumps(TOKENS)}


@dataclass
class RegistryClient:
    releases: release_service_pb2_grpc.ReleaseServiceStub
    workers: worker_service_pb2_grpc.WorkerServiceStub
    channel: grpc.aio.Channel


class _BearerToken(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, token: str | None) -> None:
        self._token = token

    async def intercept_unary_unary(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        if self._token is not None:
            metadata = list(client_call_details.metadata or [])
            metadata.append(("authorization", f"Bearer {self._token}"))
            client_call_details = client_call_details._replace(metadata=metadata)
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
