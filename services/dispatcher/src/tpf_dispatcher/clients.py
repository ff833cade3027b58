"""Clients of the workers the registry names: one per protocol and endpoint, created on first
use and kept, and a capability check per (client, pinned release) before the first command.

The check is what lets the dispatcher trust a worker it reaches by address only: a worker
redeployed at the same endpoint with another contract or build answers with another identity,
and no command is sent to it (the item is reported failed instead). As for hosted pipelines, a
worker serves every release of its own contract: pipeline id and contract version must match,
and the artifact digest where both the worker and the release name one; the release-version
label does not. SQS workers have no capability request in TPF's protocol, so they are trusted
on their registration alone.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from tpf.common.v1 import pinned_identity_pb2
from tpf.registry.v1 import worker_pb2
from tpf_dispatcher.hosted import HostedPipelines
from tpf_rpc.tls import ClientCertificates
from tpf_worker.protocol.capability import Capability
from tpf_worker.transports import TransportFailure, WorkerClient
from tpf_worker.transports.grpc import GrpcWorkerClient
from tpf_worker.transports.rest import RestWorkerClient
from tpf_worker.transports.sqs_client import SqsWorkerClient
from tpf_worker.transports.sqs_reply_router import SqsReplyRouter
from tpf_worker.transports.sqs_settings import SqsConfig

log = logging.getLogger(__name__)

LOCAL = "local"
GRPC = "grpc"
REST = "rest"
SQS = "sqs"


class WorkerIdentityMismatch(Exception):
    """The worker's capabilities name another pipeline, contract or release than the pinned one."""


@dataclass(frozen=True, slots=True)
class RemoteWorkerConfig:
    """What calling remote workers needs; `shared_secret` None makes them unreachable.

    `tls` is the CA (and client certificate) for gRPC workers when `grpc_plaintext` is false
    and for `https://` REST workers; without it, the system's trusted CAs.
    """

    shared_secret: str | None
    grpc_plaintext: bool = True
    tls: ClientCertificates | None = None
    rest_connect_timeout_s: float = 2.0
    sqs_response_queue_url: str | None = None
    sqs: SqsConfig = field(default_factory=SqsConfig)


_ClientKey = tuple[str, str]  # (protocol, endpoint), or ("local", hosted pipeline spec)
_IdentityKey = tuple[str, str, str]  # (pipeline id, contract version, release artifact digest)


class WorkerClients:
    def __init__(self, hosted: HostedPipelines, remote: RemoteWorkerConfig) -> None:
        self._hosted = hosted
        self._remote = remote
        self._clients: dict[_ClientKey, WorkerClient] = {}
        self._verified: set[tuple[_ClientKey, _IdentityKey]] = set()
        self._router: SqsReplyRouter | None = None
        self._router_lock = asyncio.Lock()

    def unreachable_reason(self, worker: worker_pb2.Worker, release_digest: str = "") -> str | None:
        """Why this dispatcher cannot call `worker` for a release whose primary artifact digest
        is `release_digest` ('' if it names none); None when it can."""
        if worker.protocol == LOCAL:
            if self._hosted.find(
                worker.pipeline_id,
                worker.contract_version,
                release_digest or worker.artifact_digest,
            ):
                return None
            return (
                f"local worker {worker.worker_id} runs in another process (this dispatcher "
                f"hosts no build of pipelineId={worker.pipeline_id}, "
                f"contractVersion={worker.contract_version}; see TPF_LOCAL_PIPELINES)"
            )
        if worker.protocol not in (GRPC, REST, SQS):
            return f"worker {worker.worker_id} has unknown protocol {worker.protocol!r}"
        if self._remote.shared_secret is None:
            return (
                f"{worker.protocol} worker {worker.worker_id} needs TPF_WORKER_SHARED_SECRET, "
                "which is not set"
            )
        if worker.protocol == SQS and not self._remote.sqs_response_queue_url:
            return (
                f"sqs worker {worker.worker_id} needs TPF_SQS_RESPONSE_QUEUE_URL, which is not set"
            )
        return None

    async def client_for(
        self,
        worker: worker_pb2.Worker,
        identity: pinned_identity_pb2.PinnedIdentity,
        *,
        release_digest: str = "",
        timeout_s: float,
    ) -> WorkerClient:
        """A client for `worker`, its capabilities checked once against `identity` and the
        release's primary artifact digest.

        Raises WorkerIdentityMismatch, or TransportFailure when the capability call fails.
        """
        key = self._client_key(worker, release_digest)
        client = self._clients.get(key)
        if client is None:
            client = await self._create(worker, release_digest)
            self._clients[key] = client
        verified = (key, (identity.pipeline_id, identity.contract_version, release_digest))
        if verified not in self._verified and worker.protocol != SQS:
            capability = await client.capabilities(timeout_s=timeout_s)
            _check_identity(worker, capability, identity, release_digest)
            self._verified.add(verified)
        return client

    def distrust(self, worker: worker_pb2.Worker, release_digest: str = "") -> None:
        """Check `worker`'s capabilities again before its next command (a call to it failed)."""
        key = self._client_key(worker, release_digest)
        self._verified = {v for v in self._verified if v[0] != key}

    def _client_key(self, worker: worker_pb2.Worker, release_digest: str) -> _ClientKey:
        """Remote workers are one client per address. Every `local` worker shares the endpoint
        `in-process`, so each is keyed by the hosted pipeline that serves it."""
        if worker.protocol == LOCAL:
            hosted = self._hosted.find(
                worker.pipeline_id,
                worker.contract_version,
                release_digest or worker.artifact_digest,
            )
            return (LOCAL, hosted.spec if hosted else f"{worker.pipeline_id}|unhosted")
        return (worker.protocol, worker.endpoint)

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()
        if self._router is not None:
            await self._router.stop()

    async def _create(self, worker: worker_pb2.Worker, release_digest: str) -> WorkerClient:
        if worker.protocol == LOCAL:
            hosted = self._hosted.find(
                worker.pipeline_id,
                worker.contract_version,
                release_digest or worker.artifact_digest,
            )
            if hosted is None:
                raise TransportFailure(
                    "NoWorkerAvailable", self.unreachable_reason(worker, release_digest) or ""
                )
            return hosted.client
        secret = self._remote.shared_secret
        if secret is None:
            raise TransportFailure(
                "NoWorkerAvailable", self.unreachable_reason(worker, release_digest) or ""
            )
        if worker.protocol == GRPC:
            return GrpcWorkerClient(
                worker.endpoint,
                shared_secret=secret,
                plaintext=self._remote.grpc_plaintext,
                tls=self._remote.tls,
            )
        if worker.protocol == REST:
            return RestWorkerClient(
                worker.endpoint,
                shared_secret=secret,
                connect_timeout_s=self._remote.rest_connect_timeout_s,
                tls=self._remote.tls,
            )
        router = await self._sqs_router(secret)
        return SqsWorkerClient(worker.endpoint, router, self._remote.sqs, shared_secret=secret)

    async def _sqs_router(self, secret: str) -> SqsReplyRouter:
        # One long-poller per response queue, started the first time an sqs worker is used.
        async with self._router_lock:
            if self._router is None:
                queue_url = self._remote.sqs_response_queue_url
                if not queue_url:
                    raise TransportFailure(
                        "NoWorkerAvailable", "TPF_SQS_RESPONSE_QUEUE_URL is not set"
                    )
                router = SqsReplyRouter(queue_url, self._remote.sqs, shared_secret=secret)
                await router.start()
                self._router = router
            return self._router


def _check_identity(
    worker: worker_pb2.Worker,
    capability: Capability,
    identity: pinned_identity_pb2.PinnedIdentity,
    release_digest: str,
) -> None:
    offered = (capability.pipeline_id, capability.contract_version)
    digests_differ = bool(
        release_digest
        and capability.artifact_digest
        and capability.artifact_digest != release_digest
    )
    if offered == (identity.pipeline_id, identity.contract_version) and not digests_differ:
        return
    raise WorkerIdentityMismatch(
        f"Worker {worker.worker_id} ({worker.protocol} {worker.endpoint}) does not serve the "
        "pinned release, so no command was sent: it hosts "
        f"pipelineId={capability.pipeline_id}, contractVersion={capability.contract_version}, "
        f"artifactDigest={capability.artifact_digest or '(none)'} "
        f"but the execution is pinned to pipelineId={identity.pipeline_id}, "
        f"contractVersion={identity.contract_version}, "
        f"releaseVersion={identity.release_version} "
        f"(artifactDigest={release_digest or '(none)'})"
    )
