"""A served worker announcing itself to the registry: RegisterWorker once, then HeartbeatWorker.

The registry routes commands only to workers that registered with the release's identity and
keep heartbeating (DESIGN §7, TPF_WIRE §6.2). A heartbeat that finds no record (the registry
lost or expired it) registers again; any other failure is logged and retried on the next beat,
so a registry outage never stops a worker from serving.
"""

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import grpc

from tpf.registry.v1 import worker_service_pb2 as ws
from tpf.registry.v1 import worker_service_pb2_grpc as ws_grpc
from tpf_rpc.channel import client_channel
from tpf_rpc.tls import ClientCertificates
from tpf_worker.protocol.capability import Capability

__all__ = ["WorkerAnnouncement", "WorkerRegistration"]

logger = logging.getLogger(__name__)

_CALL_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class WorkerAnnouncement:
    """Who the worker is and where to reach it, as RegisterWorker takes it."""

    tenant_id: str
    worker_id: str
    protocol: str
    endpoint: str
    capability: Capability

    def register_request(self) -> ws.RegisterWorkerRequest:
        return ws.RegisterWorkerRequest(
            tenant_id=self.tenant_id,
            pipeline_id=self.capability.pipeline_id,
            worker_id=self.worker_id,
            contract_version=self.capability.contract_version,
            release_version=self.capability.release_version,
            protocol=self.protocol,
            endpoint=self.endpoint,
            artifact_id=self.capability.artifact_id,
            artifact_digest=self.capability.artifact_digest,
        )

    def heartbeat_request(self) -> ws.HeartbeatWorkerRequest:
        return ws.HeartbeatWorkerRequest(
            tenant_id=self.tenant_id,
            pipeline_id=self.capability.pipeline_id,
            worker_id=self.worker_id,
        )


class WorkerRegistration:
    """Registers with the registry at `target` and heartbeats every `heartbeat_s` until stopped.

    With `tls`, the registry is called over TLS (and shown the client certificate, if any).
    """

    def __init__(
        self,
        announcement: WorkerAnnouncement,
        *,
        target: str,
        token: str | None,
        heartbeat_s: float = 30.0,
        tls: ClientCertificates | None = None,
    ) -> None:
        self._announcement = announcement
        self._tls = tls
        self._target = target
        self._token = token
        self._heartbeat_s = heartbeat_s
        self._channel: grpc.aio.Channel | None = None
        self._beats: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Register (raising the registry's error if it refuses) and start heartbeating."""
        self._channel = client_channel(self._target, token=self._token, tls=self._tls)
        stub = ws_grpc.WorkerServiceStub(self._channel)
        await self._register(stub)
        self._beats = asyncio.create_task(self._heartbeat(stub), name="worker-heartbeat")

    async def stop(self) -> None:
        if self._beats is not None:
            self._beats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beats
            self._beats = None
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    async def _register(self, stub: "ws_grpc.WorkerServiceAsyncStub") -> None:
        request = self._announcement.register_request()
        await stub.RegisterWorker(request, timeout=_CALL_TIMEOUT_S)
        logger.info(
            "Registered worker %s for pipeline %s release %s",
            request.worker_id,
            request.pipeline_id,
            request.release_version,
        )

    async def _heartbeat(self, stub: "ws_grpc.WorkerServiceAsyncStub") -> None:
        request = self._announcement.heartbeat_request()
        while True:
            await asyncio.sleep(self._heartbeat_s)
            try:
                await stub.HeartbeatWorker(request, timeout=_CALL_TIMEOUT_S)
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.NOT_FOUND:
                    logger.warning("Worker heartbeat failed: %s", error.details())
                    continue
                try:
                    await self._register(stub)
                except grpc.aio.AioRpcError as again:
                    logger.warning("Worker re-registration failed: %s", again.details())
