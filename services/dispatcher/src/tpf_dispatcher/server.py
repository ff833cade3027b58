"""Wire the dispatcher: channels, hosted pipelines, worker clients, engine, status servicer."""

from __future__ import annotations

import os
from dataclasses import dataclass

import grpc
from prometheus_client import CollectorRegistry

from tpf.coordinator.v1 import work_service_pb2_grpc
from tpf.dispatcher.v1 import dispatcher_service_pb2, dispatcher_service_pb2_grpc
from tpf_config import resolve_secret_ref
from tpf_dispatcher.clients import RemoteWorkerConfig, WorkerClients
from tpf_dispatcher.directory import WorkerDirectory
from tpf_dispatcher.dispatcher import DispatchConfig, Dispatcher
from tpf_dispatcher.engine_metrics import EngineCollector
from tpf_dispatcher.executor import Executor, ExecutorConfig
from tpf_dispatcher.hosted import load_hosted_pipelines
from tpf_dispatcher.local_workers import LocalWorkerHost
from tpf_dispatcher.metrics import DispatcherMetrics
from tpf_dispatcher.outcomes import FailureClasses
from tpf_dispatcher.retrying import RetryBudget, coordinator_channel
from tpf_dispatcher.settings import DispatcherSettings, split_list
from tpf_dispatcher.status import DispatcherStatusServicer
from tpf_rpc.channel import client_channel
from tpf_rpc.tls import client_certificates_of
from tpf_telemetry.metrics import new_registry
from tpf_worker.transports.sqs_settings import SqsConfig

SERVICE_FULL_NAMES = (
    dispatcher_service_pb2.DESCRIPTOR.services_by_name["DispatcherService"].full_name,
)
# Work items and outcomes carry payloads (up to the coordinator's 4 MiB default, in batches).
_MAX_MESSAGE_BYTES = 64 << 20
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
]


def _secret(value: str | None, variable: str) -> str | None:
    return resolve_secret_ref(value, what=variable, environ=os.environ) if value else None


@dataclass
class DispatcherService:
    """The running dispatcher's parts, for `serve` and for shutdown."""

    dispatcher: Dispatcher
    servicer: DispatcherStatusServicer
    clients: WorkerClients
    channels: tuple[grpc.aio.Channel, ...]
    local_workers: LocalWorkerHost
    metrics_registry: CollectorRegistry

    def register(self, server: grpc.aio.Server) -> None:
        dispatcher_service_pb2_grpc.add_DispatcherServiceServicer_to_server(self.servicer, server)

    def start(self) -> None:
        self.local_workers.start()
        self.dispatcher.start()

    async def close(self) -> None:
        await self.local_workers.stop()
        await self.dispatcher.close()
        await self.clients.close()
        for channel in self.channels:
            await channel.close()


def build_dispatcher(settings: DispatcherSettings) -> DispatcherService:
    """Build every part; nothing runs until `dispatcher.start()`. Raises ConfigError for an
    unresolvable secret reference or unusable TLS files, and whatever loading a local pipeline
    raises."""
    tls = client_certificates_of(settings)
    hosted = load_hosted_pipelines(split_list(settings.local_pipelines))
    coordinator = coordinator_channel(
        settings.coordinator_target,
        token=_secret(settings.coordinator_token, "TPF_COORDINATOR_TOKEN"),
        tls=tls,
        options=_CHANNEL_OPTIONS,
    )
    registry = client_channel(
        settings.registry_target,
        token=_secret(settings.registry_token, "TPF_REGISTRY_TOKEN"),
        tls=tls,
        options=_CHANNEL_OPTIONS,
    )
    metrics_registry = new_registry()
    directory = WorkerDirectory(
        registry, ttl_s=settings.worker_cache_s, rpc_timeout_s=settings.rpc_timeout_s
    )
    clients = WorkerClients(
        hosted,
        RemoteWorkerConfig(
            shared_secret=_secret(settings.worker_shared_secret, "TPF_WORKER_SHARED_SECRET"),
            grpc_plaintext=(
                settings.worker_grpc_plaintext
                if settings.worker_grpc_plaintext is not None
                else tls is None
            ),
            tls=tls,
            rest_connect_timeout_s=settings.worker_rest_connect_timeout_s,
            sqs_response_queue_url=settings.sqs_response_queue_url,
            sqs=SqsConfig(
                region=settings.sqs_region,
                endpoint_url=settings.sqs_endpoint_url,
                access_key_id=settings.sqs_access_key_id,
                secret_access_key=settings.sqs_secret_access_key,
            ),
        ),
    )
    executor = Executor(
        directory,
        clients,
        ExecutorConfig(
            default_timeout_s=settings.request_timeout_s,
            failure_classes=FailureClasses(
                extra_non_retryable=frozenset(split_list(settings.non_retryable_failure_classes))
            ),
        ),
        metrics=DispatcherMetrics(metrics_registry),
    )
    dispatcher = Dispatcher(
        DispatchConfig(
            dispatcher_id=settings.dispatcher_id,
            max_in_flight=settings.max_in_flight,
            claim_batch_size=settings.claim_batch_size,
            claim_wait_ms=settings.claim_wait_ms,
            lease_ms=settings.lease_ms,
            renew_interval_s=settings.effective_renew_interval_s,
            rpc_timeout_s=settings.rpc_timeout_s,
            complete_linger_s=settings.complete_linger_ms / 1000,
            complete_concurrency=settings.complete_concurrency,
            complete_batch_size=settings.complete_batch_size,
            continue_claim=settings.continue_claim,
            tenant_ids=split_list(settings.tenant_ids),
            pipeline_ids=split_list(settings.pipeline_ids),
            release_versions=split_list(settings.release_versions),
            retry=RetryBudget(attempts=settings.coordinator_attempts),
        ),
        work_service_pb2_grpc.WorkServiceStub(coordinator),
        executor,
    )
    metrics_registry.register(EngineCollector(dispatcher.snapshot))
    servicer = DispatcherStatusServicer(dispatcher, directory, clients, hosted)
    # Serve only what this dispatcher claims: its tenant, pipeline and release filters.
    claimed_pipelines = set(split_list(settings.pipeline_ids))
    local_workers = LocalWorkerHost(
        [h for h in hosted if not claimed_pipelines or h.identity.pipeline_id in claimed_pipelines],
        host_id=settings.dispatcher_id,
        channel=registry,
        register_tenants=split_list(settings.local_worker_tenants),
        serve_tenants=split_list(settings.tenant_ids),
        release_versions=split_list(settings.release_versions),
        heartbeat_s=settings.local_worker_heartbeat_s,
    )
    return DispatcherService(
        dispatcher, servicer, clients, (coordinator, registry), local_workers, metrics_registry
    )
