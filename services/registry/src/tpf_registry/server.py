"""Wire the registry: stores, use cases and servicers, then serve them over gRPC."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc
from prometheus_client import CollectorRegistry

from tpf.registry.v1 import (
    release_service_pb2,
    release_service_pb2_grpc,
    worker_service_pb2,
    worker_service_pb2_grpc,
)
from tpf_objects import S3Config
from tpf_registry.artifacts.roots import ReadableRoots
from tpf_registry.artifacts.staging import ArtifactFetcher
from tpf_registry.artifacts.store import artifact_store_for
from tpf_registry.domain.clock import Clock, SystemClock
from tpf_registry.domain.worker import LifecycleWindows
from tpf_registry.metrics import RegistryMetrics
from tpf_registry.releases import ReleaseRegistry
from tpf_registry.servicers.release import ReleaseServicer
from tpf_registry.servicers.worker import WorkerServicer
from tpf_registry.settings import RegistrySettings
from tpf_registry.store.metrics_postgres import read_registry_snapshot
from tpf_registry.store.release_postgres import PostgresReleaseStore
from tpf_registry.store.worker_postgres import PostgresWorkerStore
from tpf_registry.workers import WorkerRegistry
from tpf_store import Pool
from tpf_telemetry.metrics import PeriodicRefresh, PoolStatsCollector, new_registry

SERVICE_FULL_NAMES = (
    release_service_pb2.DESCRIPTOR.services_by_name["ReleaseService"].full_name,
    worker_service_pb2.DESCRIPTOR.services_by_name["WorkerService"].full_name,
)


def build_registrar(
    settings: RegistrySettings, pool: Pool, *, clock: Clock | None = None
) -> Callable[[grpc.aio.Server], None]:
    """Build the registry's object graph; return the function that adds it to a server."""
    clock = clock or SystemClock()
    s3 = S3Config(endpoint_url=settings.s3_endpoint_url, region=settings.s3_region)
    release_store = PostgresReleaseStore(pool)
    roots = ReadableRoots(settings.artifact_roots())
    fetcher = ArtifactFetcher(staging_dir=settings.data_dir / "staging", s3=s3, roots=roots)
    # Staging files are only ever in use during a RegisterRelease call: any found at start
    # belong to registrations a crash interrupted (their transaction never committed).
    fetcher.discard_leftovers()
    releases = ReleaseRegistry(
        store=release_store,
        artifact_store=artifact_store_for(
            settings.artifact_store, data_dir=settings.data_dir, s3=s3
        ),
        fetcher=fetcher,
        roots=roots,
        clock=clock,
    )
    workers = WorkerRegistry(
        workers=PostgresWorkerStore(pool),
        releases=release_store,
        clock=clock,
        windows=lifecycle_windows(settings),
    )

    def register(server: grpc.aio.Server) -> None:
        release_service_pb2_grpc.add_ReleaseServiceServicer_to_server(
            ReleaseServicer(releases), server
        )
        worker_service_pb2_grpc.add_WorkerServiceServicer_to_server(WorkerServicer(workers), server)

    return register


def lifecycle_windows(settings: RegistrySettings) -> LifecycleWindows:
    return LifecycleWindows(
        stale_after_ms=int(settings.worker_stale_after_s * 1000),
        unavailable_after_ms=int(settings.worker_unavailable_after_s * 1000),
    )


def build_metrics(
    settings: RegistrySettings, pool: Pool, *, clock: Clock | None = None
) -> tuple[CollectorRegistry, PeriodicRefresh]:
    """The registry's metrics, and the refresh of its gauges (start it only when served)."""
    clock = clock or SystemClock()
    registry = new_registry()
    registry.register(PoolStatsCollector("tpf-registry", pool.get_stats))
    gauges = RegistryMetrics(lifecycle_windows(settings), clock.now_ms)
    registry.register(gauges)

    async def refresh() -> None:
        gauges.update(await read_registry_snapshot(pool))

    return registry, PeriodicRefresh("registry", refresh, settings.metrics_refresh_s)


OnStop = Callable[[], Awaitable[None]]
