"""Wire the coordinator: stores, lease store, registry client, use cases, servicers, sweeper."""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
from prometheus_client import CollectorRegistry

from tpf.coordinator.v1 import (
    dead_letter_service_pb2,
    dead_letter_service_pb2_grpc,
    execution_service_pb2,
    execution_service_pb2_grpc,
    interaction_service_pb2,
    interaction_service_pb2_grpc,
    release_drift_service_pb2,
    release_drift_service_pb2_grpc,
    terminal_event_service_pb2,
    terminal_event_service_pb2_grpc,
    work_service_pb2,
    work_service_pb2_grpc,
)
from tpf_config import resolve_secret_ref
from tpf_coordinator.clock import system_now_ms
from tpf_coordinator.dead_letters import DeadLetters
from tpf_coordinator.executions import Executions
from tpf_coordinator.interactions import Interactions
from tpf_coordinator.metrics import CoordinatorMetrics
from tpf_coordinator.notifications import Notifications
from tpf_coordinator.payloads import Payloads
from tpf_coordinator.release_catalog import ReleaseCatalog
from tpf_coordinator.release_drift import DriftRegistry, ReleaseDriftReports
from tpf_coordinator.request_ids import RequestIds
from tpf_coordinator.servicers.dead_letter import DeadLetterServicer
from tpf_coordinator.servicers.execution import ExecutionServicer
from tpf_coordinator.servicers.interaction import InteractionServicer
from tpf_coordinator.servicers.release_drift import ReleaseDriftServicer
from tpf_coordinator.servicers.terminal_event import TerminalEventServicer
from tpf_coordinator.servicers.work import WorkServicer
from tpf_coordinator.settings import CoordinatorSettings
from tpf_coordinator.store.dead_letters_postgres import PostgresDeadLetterStore
from tpf_coordinator.store.event_feed_postgres import PostgresEventFeedStore
from tpf_coordinator.store.executions_postgres import PostgresExecutionStore
from tpf_coordinator.store.interactions_postgres import PostgresInteractionStore
from tpf_coordinator.store.leases_postgres import RowLeaseStore
from tpf_coordinator.store.metrics_postgres import read_backlog
from tpf_coordinator.store.release_drift_postgres import PostgresPinnedExecutions
from tpf_coordinator.store.request_ids_postgres import PostgresRequestIds
from tpf_coordinator.store.sweeper_postgres import PostgresSweeperStore
from tpf_coordinator.store.work_postgres import PostgresWorkStore
from tpf_coordinator.sweeper import Sweeper
from tpf_coordinator.terminal_events import TerminalEventFeed
from tpf_coordinator.work import WorkCoordinator
from tpf_lease import FallbackLeaseStore, LeaseStore, RedisLeaseStore
from tpf_objects import S3Config, object_store_for
from tpf_rpc.channel import client_channel
from tpf_rpc.tls import client_certificates_of
from tpf_store import Pool
from tpf_telemetry.metrics import PeriodicRefresh, PoolStatsCollector, new_registry

log = logging.getLogger(__name__)

SERVICE_FULL_NAMES = (
    execution_service_pb2.DESCRIPTOR.services_by_name["ExecutionService"].full_name,
    work_service_pb2.DESCRIPTOR.services_by_name["WorkService"].full_name,
    interaction_service_pb2.DESCRIPTOR.services_by_name["InteractionService"].full_name,
    dead_letter_service_pb2.DESCRIPTOR.services_by_name["DeadLetterService"].full_name,
    terminal_event_service_pb2.DESCRIPTOR.services_by_name["TerminalEventService"].full_name,
    release_drift_service_pb2.DESCRIPTOR.services_by_name["ReleaseDriftService"].full_name,
)


class _MillisecondClock:
    def now_ms(self) -> int:
        return system_now_ms()


def lease_store_for(settings: CoordinatorSettings, pool: Pool) -> LeaseStore:
    clock = _MillisecondClock()
    rows = RowLeaseStore(pool, clock=clock)
    if not settings.redis_url:
        log.info("no TPF_REDIS_URL: leases live in the Postgres rows only")
        return rows
    redis = RedisLeaseStore(settings.redis_url, clock=clock)
    return FallbackLeaseStore(redis, rows, clock=clock, log=log)


def resume_token_secret(settings: CoordinatorSettings) -> bytes | None:
    """The HMAC key of resume tokens, None when not configured (tokens are then refused)."""
    if not settings.resume_token_secret:
        return None
    secret = resolve_secret_ref(
        settings.resume_token_secret, what="TPF_RESUME_TOKEN_SECRET", environ=os.environ
    )
    return secret.encode("utf-8")


@dataclass
class Coordinator:
    """The running coordinator's parts, for `serve` and for shutdown."""

    register: Callable[[grpc.aio.Server], None]
    start: Callable[[], Awaitable[None]]
    stop: Callable[[], Awaitable[None]]
    metrics_registry: CollectorRegistry


def build_coordinator(settings: CoordinatorSettings, pool: Pool, database_url: str) -> Coordinator:
    registry_token = (
        resolve_secret_ref(settings.registry_token, what="TPF_REGISTRY_TOKEN", environ=os.environ)
        if settings.registry_token
        else None
    )
    channel = client_channel(
        settings.registry_target, token=registry_token, tls=client_certificates_of(settings)
    )
    catalog = ReleaseCatalog(
        channel, ttl_s=settings.registry_cache_s, rpc_timeout_s=settings.registry_timeout_s
    )
    registry = new_registry()
    metrics = CoordinatorMetrics(registry)
    registry.register(PoolStatsCollector("tpf-coordinator", pool.get_stats))
    notifications = Notifications(database_url)
    leases = lease_store_for(settings, pool)
    payloads = Payloads(
        object_store_for(
            settings.payload_store,
            default_root=settings.data_dir / "payloads",
            s3=S3Config(endpoint_url=settings.s3_endpoint_url, region=settings.s3_region),
        ),
        threshold_bytes=settings.payload_offload_bytes,
    )
    allowed_prefixes = tuple(
        p.strip() for p in settings.allowed_payload_prefixes.split(",") if p.strip()
    )
    executions = Executions(
        store=PostgresExecutionStore(pool),
        catalog=catalog,
        now_ms=system_now_ms,
        idempotency_policy=settings.idempotency_policy,
        allowed_prefixes=allowed_prefixes,
        max_payload_bytes=settings.max_payload_bytes,
        payloads=payloads,
        metrics=metrics,
    )
    work = WorkCoordinator(
        store=PostgresWorkStore(pool),
        catalog=catalog,
        leases=leases,
        notifications=notifications,
        now_ms=system_now_ms,
        default_lease_ms=settings.lease_ms,
        max_lease_ms=settings.max_lease_ms,
        max_wait_ms=settings.max_claim_wait_ms,
        dlq_log_enabled=settings.dlq_log,
        payloads=payloads,
        metrics=metrics,
    )
    request_ids = RequestIds(PostgresRequestIds(pool), now_ms=system_now_ms)
    interactions = Interactions(
        store=PostgresInteractionStore(pool),
        executions=PostgresExecutionStore(pool),
        now_ms=system_now_ms,
        resume_token_secret=resume_token_secret(settings),
        allowed_prefixes=allowed_prefixes,
        max_payload_bytes=settings.max_payload_bytes,
        payloads=payloads,
        record_ttl_ms=settings.interaction_record_ttl_ms,
        metrics=metrics,
    )
    dead_letters = DeadLetters(
        store=PostgresDeadLetterStore(pool),
        executions=PostgresExecutionStore(pool),
        catalog=catalog,
        now_ms=system_now_ms,
        payloads=payloads,
        allowed_prefixes=allowed_prefixes,
        max_payload_bytes=settings.max_payload_bytes,
        metrics=metrics,
    )
    release_drift = ReleaseDriftReports(
        pinned=PostgresPinnedExecutions(pool),
        registry=DriftRegistry(channel, rpc_timeout_s=settings.registry_timeout_s),
        now_ms=system_now_ms,
    )
    terminal_events = TerminalEventFeed(
        store=PostgresEventFeedStore(pool), notifications=notifications, now_ms=system_now_ms
    )
    sweeper = Sweeper(
        store=PostgresSweeperStore(pool),
        leases=leases,
        now_ms=system_now_ms,
        interval_ms=settings.sweep_interval_ms,
        limit=settings.sweep_limit,
        max_lease_expiries=settings.max_lease_expiries,
        forget_request_ids=request_ids.forget_old,
        interaction_record_ttl_ms=settings.interaction_record_ttl_ms,
        metrics=metrics,
    )

    async def refresh_backlog() -> None:
        metrics.backlog(await read_backlog(pool, now_ms=system_now_ms()))

    # Only while /metrics is served: nobody reads the gauges otherwise.
    backlog = PeriodicRefresh("backlog", refresh_backlog, settings.metrics_refresh_s)

    def register(server: grpc.aio.Server) -> None:
        execution_service_pb2_grpc.add_ExecutionServiceServicer_to_server(
            ExecutionServicer(executions, notifications, request_ids), server
        )
        work_service_pb2_grpc.add_WorkServiceServicer_to_server(
            WorkServicer(work, request_ids), server
        )
        interaction_service_pb2_grpc.add_InteractionServiceServicer_to_server(
            InteractionServicer(interactions), server
        )
        dead_letter_service_pb2_grpc.add_DeadLetterServiceServicer_to_server(
            DeadLetterServicer(dead_letters, request_ids), server
        )
        terminal_event_service_pb2_grpc.add_TerminalEventServiceServicer_to_server(
            TerminalEventServicer(terminal_events), server
        )
        release_drift_service_pb2_grpc.add_ReleaseDriftServiceServicer_to_server(
            ReleaseDriftServicer(release_drift), server
        )

    async def start() -> None:
        await notifications.start()
        sweeper.start()
        if settings.metrics_port:
            backlog.start()

    async def stop() -> None:
        await backlog.close()
        await sweeper.close()
        await notifications.close()
        await leases.close()
        await channel.close()
        await payloads.close()

    return Coordinator(register=register, start=start, stop=stop, metrics_registry=registry)
