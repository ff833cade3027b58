"""Register the dispatcher's hosted pipelines as `local` workers and keep them HEALTHY.

A `local` worker runs inside the dispatcher (DESIGN §8); like any worker it goes STALE without
heartbeats, and then the coordinator no longer admits submissions for its release. So the
dispatcher announces each hosted pipeline for each tenant of `TPF_LOCAL_WORKER_TENANTS` and
heartbeats it. Replicas announce the same worker id: any replica's heartbeat keeps it HEALTHY,
and every replica can serve it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence

from tpf_dispatcher.hosted import HostedPipeline
from tpf_worker.registration import WorkerAnnouncement, WorkerRegistration

log = logging.getLogger(__name__)

LOCAL_ENDPOINT = "in-process"


def local_worker_id(hosted: HostedPipeline) -> str:
    """Stable per release: `local-<first 12 hex digits of the release version>`."""
    version = hosted.identity.release_version.removeprefix("sha256:")
    return f"local-{version[:12]}"


class LocalWorkerAnnouncer:
    """Registers, then heartbeats, every (hosted pipeline, tenant) until `stop()`.

    A refused or failed registration (registry down, release not registered for that tenant yet)
    is logged and tried again every `heartbeat_s`; it never stops the dispatcher.
    """

    def __init__(
        self,
        hosted: Iterable[HostedPipeline],
        tenants: Sequence[str],
        *,
        target: str,
        token: str | None,
        heartbeat_s: float,
    ) -> None:
        self._registrations = [
            WorkerRegistration(
                WorkerAnnouncement(
                    tenant_id=tenant,
                    worker_id=local_worker_id(pipeline),
                    protocol="local",
                    endpoint=LOCAL_ENDPOINT,
                    capability=pipeline.capability,
                ),
                target=target,
                token=token,
                heartbeat_s=heartbeat_s,
            )
            for pipeline in hosted
            for tenant in tenants
        ]
        self._heartbeat_s = heartbeat_s
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._keep_registered(r), name="local-worker-registration")
            for r in self._registrations
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for registration in self._registrations:
            await registration.stop()

    async def _keep_registered(self, registration: WorkerRegistration) -> None:
        while True:
            try:
                await registration.start()
                return
            except Exception as error:  # the registry's refusal or absence; try again later
                await registration.stop()
                log.warning("local worker registration failed; retrying: %s", error)
                await asyncio.sleep(self._heartbeat_s)
