"""Serve `local` worker records: tell the registry what this dispatcher hosts, keep every record
it can serve HEALTHY, and register its own records where asked.

A `local` worker record (protocol `local`, endpoint `in-process`) is a declaration: the work of
its release runs inside whichever dispatcher hosts the pipeline (DESIGN §8). A hosted pipeline
serves every release of its own contract, whatever the release-version label, in every tenant
the dispatcher claims work for: the records TPF's self-host scripts register by hand are served
as well as the ones this dispatcher registers itself (`TPF_LOCAL_WORKER_TENANTS`).

Every `heartbeat_s` the dispatcher calls ServeLocalWorkers. The registry stores the declaration
(which expires after three intervals, so a dispatcher killed without a goodbye stops counting),
heartbeats the matching records in the same call, and counts a `local` record for dispatch and
admission only while a live declaration matches it: a submission nothing can run is refused at
once instead of failing after its retries. Records registered later are served from the next
call on, without a restart. On stop the declaration is withdrawn. Replicas declare under their
own dispatcher ids; any live replica keeps a record served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence

import grpc

from tpf.registry.v1 import worker_service_pb2 as ws
from tpf.registry.v1 import worker_service_pb2_grpc as ws_grpc
from tpf_dispatcher.hosted import HostedPipeline
from tpf_worker.registration import WorkerAnnouncement

log = logging.getLogger(__name__)

LOCAL_ENDPOINT = "in-process"
# The declaration survives two missed calls.
_TTL_INTERVALS = 3
_MIN_TTL_MS = 1000  # the registry's floor
_CALL_TIMEOUT_S = 10.0
_WITHDRAW_TIMEOUT_S = 3.0


def local_worker_id(hosted: HostedPipeline) -> str:
    """Stable per build: `local-<first 12 hex digits of the build's release version>`."""
    version = hosted.identity.release_version.removeprefix("sha256:")
    return f"local-{version[:12]}"


class LocalWorkerHost:
    """Declares the hosted pipelines every `heartbeat_s` until `stop()`; registers this
    dispatcher's own `local` records for `register_tenants` first.

    A refused or failed call (registry down, release not registered for a tenant yet) is logged
    and tried again on the next beat; it never stops the dispatcher.
    """

    def __init__(
        self,
        hosted: Iterable[HostedPipeline],
        *,
        host_id: str,
        channel: grpc.aio.Channel,
        register_tenants: Sequence[str],
        serve_tenants: Sequence[str],
        release_versions: Sequence[str],
        heartbeat_s: float,
    ) -> None:
        self._hosted = list(hosted)
        self._host_id = host_id
        self._stub = ws_grpc.WorkerServiceStub(channel)
        self._heartbeat_s = heartbeat_s
        self._pending_registrations = [
            WorkerAnnouncement(
                tenant_id=tenant,
                worker_id=local_worker_id(pipeline),
                protocol="local",
                endpoint=LOCAL_ENDPOINT,
                capability=pipeline.capability,
            )
            for pipeline in self._hosted
            for tenant in register_tenants
        ]
        self._serve_tenants = list(serve_tenants)
        self._release_versions = list(release_versions)
        self._task: asyncio.Task[None] | None = None
        self.served: tuple[tuple[str, str, str], ...] = ()

    def start(self) -> None:
        if self._hosted:
            self._task = asyncio.create_task(self._run(), name="local-worker-host")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        try:
            await self._stub.ServeLocalWorkers(
                self._request(withdraw=True), timeout=_WITHDRAW_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as error:
            log.warning(
                "could not withdraw the local worker declaration (it expires by itself): %s",
                error.details(),
            )

    async def serve_once(self) -> None:
        """One beat: declare and heartbeat, then register what is still unregistered."""
        response = await self._stub.ServeLocalWorkers(self._request(), timeout=_CALL_TIMEOUT_S)
        served = tuple((w.tenant_id, w.pipeline_id, w.worker_id) for w in response.workers)
        if served != self.served:
            log.info(
                "serving %d local worker record(s): %s",
                len(served),
                ", ".join("/".join(key) for key in served) or "none",
            )
        self.served = served
        still_pending = []
        for announcement in self._pending_registrations:
            try:
                await self._stub.RegisterWorker(
                    announcement.register_request(), timeout=_CALL_TIMEOUT_S
                )
                log.info(
                    "registered local worker %s for tenant %s",
                    announcement.worker_id,
                    announcement.tenant_id,
                )
            except grpc.aio.AioRpcError as error:
                still_pending.append(announcement)
                log.warning(
                    "local worker registration for tenant %s failed; retrying: %s",
                    announcement.tenant_id,
                    error.details(),
                )
        self._pending_registrations = still_pending

    async def _run(self) -> None:
        while True:
            try:
                await self.serve_once()
            except grpc.aio.AioRpcError as error:
                log.warning(
                    "ServeLocalWorkers failed; retrying in %.0f s: %s %s",
                    self._heartbeat_s,
                    error.code().name,
                    error.details(),
                )
            await asyncio.sleep(self._heartbeat_s)

    def _request(self, *, withdraw: bool = False) -> ws.ServeLocalWorkersRequest:
        return ws.ServeLocalWorkersRequest(
            host_id=self._host_id,
            pipelines=[
                ws.HostedPipeline(
                    pipeline_id=h.identity.pipeline_id,
                    contract_version=h.identity.contract_version,
                    artifact_digest=h.identity.artifact_digest,
                )
                for h in self._hosted
            ],
            tenant_ids=self._serve_tenants,
            release_versions=self._release_versions,
            ttl_ms=max(_MIN_TTL_MS, int(self._heartbeat_s * _TTL_INTERVALS * 1000)),
            withdraw=withdraw,
        )
