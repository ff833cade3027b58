"""A registry client for tests: both stubs on one channel, calls carrying a bearer token."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import grpc

from tpf.registry.v1 import release_service_pb2_grpc, worker_service_pb2_grpc
from tpf.registry.v1 import worker_service_pb2 as wpb
from tpf_rpc.channel import client_channel
from tpf_rpc.tls import ClientCertificates
from tpf_testkit.channels import FRESH_CONNECTION

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
    # TPF's two REST tokens, which the gateway tests present and the gateway forwards.
    {
        "token": "gateway-cp-token",
        "subject": "rest-control-plane",
        "roles": ["control-plane"],
        "tenants": ["*"],
    },
    {"token": "gateway-admin-token", "subject": "rest-admin", "roles": ["admin"], "tenants": ["*"]},
    # Reads only, every tenant: the operator console's read-only sign-in.
    {"token": "viewer-secret", "subject": "on-call", "roles": ["viewer"], "tenants": ["*"]},
]
ADMIN = "admin-all-secret"
ADMIN_B = "admin-b-secret"
WORKER_A = "worker-a-secret"
CONTROL_PLANE_A = "cp-a-secret"
VIEWER = "viewer-secret"


def auth_env() -> dict[str, str]:
    return {"TPF_AUTH_TOKENS": json.dumps(TOKENS)}


@dataclass
class RegistryClient:
    releases: release_service_pb2_grpc.ReleaseServiceAsyncStub
    workers: worker_service_pb2_grpc.WorkerServiceAsyncStub
    channel: grpc.aio.Channel


@asynccontextmanager
async def registry_client(
    target: str, token: str | None = ADMIN, *, tls: ClientCertificates | None = None
) -> AsyncIterator[RegistryClient]:
    channel = client_channel(
        target,
        token=token,
        tls=tls,
        options=[("grpc.max_send_message_length", 80 << 20), *FRESH_CONNECTION],
    )
    async with channel:
        yield RegistryClient(
            releases=release_service_pb2_grpc.ReleaseServiceStub(channel),
            workers=worker_service_pb2_grpc.WorkerServiceStub(channel),
            channel=channel,
        )


FAKE_DISPATCHER_HOST = "fake-dispatcher"


async def declare_local_host(
    client: RegistryClient, *, pipeline_id: str, contract_version: str
) -> None:
    """Declare, for an hour, a dispatcher hosting `pipeline_id`'s contract in every tenant.

    One host per contract: a host's declaration replaces its previous one, so declaring a second
    contract under the same host id would withdraw the first.

    Admission counts a `local` worker record only while a dispatcher declares that it serves it
    (ServeLocalWorkers). Tests that drive the coordinator with the in-process fake dispatcher run
    no real one, so they declare the fake as the host.
    """
    await client.workers.ServeLocalWorkers(
        wpb.ServeLocalWorkersRequest(
            host_id=f"{FAKE_DISPATCHER_HOST}:{pipeline_id}:{contract_version}",
            pipelines=[
                wpb.HostedPipeline(pipeline_id=pipeline_id, contract_version=contract_version)
            ],
            ttl_ms=3_600_000,
        )
    )
