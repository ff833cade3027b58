"""tpf.dispatcher.v1.DispatcherService: the dispatcher's status, for operators and tests."""

from __future__ import annotations

from typing import Any

import grpc

from tpf.dispatcher.v1 import dispatcher_service_pb2 as pb
from tpf.dispatcher.v1 import dispatcher_service_pb2_grpc
from tpf_dispatcher.clients import WorkerClients
from tpf_dispatcher.directory import WorkerDirectory
from tpf_dispatcher.dispatcher import Dispatcher, DispatcherState
from tpf_dispatcher.hosted import HostedPipelines
from tpf_rpc.auth import current_principal

Context = grpc.aio.ServicerContext[Any, Any]

_STATES = {
    DispatcherState.RUNNING: pb.DISPATCHER_STATE_RUNNING,
    DispatcherState.DRAINING: pb.DISPATCHER_STATE_DRAINING,
}


class DispatcherStatusServicer(dispatcher_service_pb2_grpc.DispatcherServiceServicer):
    def __init__(
        self,
        dispatcher: Dispatcher,
        directory: WorkerDirectory,
        clients: WorkerClients,
        hosted: HostedPipelines,
    ) -> None:
        self._dispatcher = dispatcher
        self._directory = directory
        self._clients = clients
        self._hosted = hosted

    async def GetDispatcherStatus(
        self, request: pb.GetDispatcherStatusRequest, context: Context
    ) -> pb.GetDispatcherStatusResponse:
        current_principal()  # any authenticated caller may read it
        snapshot = self._dispatcher.snapshot()
        counters = snapshot.counters
        status = pb.DispatcherStatus(
            dispatcher_id=snapshot.dispatcher_id,
            state=_STATES[snapshot.state],
            in_flight=snapshot.in_flight,
            max_in_flight=snapshot.max_in_flight,
            counters=pb.DispatcherCounters(
                claimed=counters.claimed,
                completed=counters.completed,
                failed=counters.failed,
                rejected=counters.rejected,
                lease_lost=counters.lease_lost,
                abandoned=counters.abandoned,
                undelivered=counters.undelivered,
            ),
            resolved_releases=[
                pb.ResolvedRelease(
                    tenant_id=key.tenant_id,
                    pipeline_id=key.pipeline_id,
                    release_version=key.release_version,
                    workers=[
                        pb.ResolvedWorker(
                            worker_id=w.worker_id,
                            protocol=w.protocol,
                            endpoint=w.endpoint,
                            contract_version=w.contract_version,
                            is_reachable=self._clients.unreachable_reason(w) is None,
                        )
                        for w in resolution.workers
                    ],
                    resolved_at_epoch_ms=resolution.resolved_at_ms,
                    expires_at_epoch_ms=resolution.expires_at_ms,
                )
                for key, resolution in self._directory.resolutions()
            ],
            hosted_pipelines=[
                pb.HostedPipeline(
                    spec=h.spec,
                    pipeline_id=h.identity.pipeline_id,
                    contract_version=h.identity.contract_version,
                    release_version=h.identity.release_version,
                )
                for h in self._hosted
            ],
        )
        return pb.GetDispatcherStatusResponse(status=status)
