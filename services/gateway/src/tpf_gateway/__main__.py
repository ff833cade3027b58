"""`python -m tpf_gateway`: settings → logging → route table → channels → serve HTTP."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from tpf_config import ConfigError
from tpf_gateway.app import build_app
from tpf_gateway.auth import TokenGuard
from tpf_gateway.http_metrics import HttpMetrics
from tpf_gateway.routes import Family, Upstream, build_route_table
from tpf_gateway.settings import GatewaySettings
from tpf_gateway.upstream import Upstreams
from tpf_rpc.metrics import start_metrics_endpoint
from tpf_rpc.server import run_main, service_tracer_provider
from tpf_telemetry.metrics import new_registry

logger = logging.getLogger(__name__)

SERVICE_NAME = "tpf-gateway"


async def run(settings: GatewaySettings) -> None:
    # Also the global provider: the upstream channels' CLIENT spans use it.
    tracer_provider = service_tracer_provider(settings, SERVICE_NAME)
    # Resolving `file:` references reads files: keep it off the event loop.
    tokens = await asyncio.to_thread(settings.family_tokens)
    service_token = await asyncio.to_thread(settings.service_token)
    if settings.auth_disabled:
        logger.warning("Auth is disabled: every REST caller is let through")
    routes = build_route_table()
    metrics_registry = new_registry()
    upstreams = Upstreams(
        {
            Upstream.COORDINATOR: settings.coordinator_target,
            Upstream.REGISTRY: settings.registry_target,
        },
        token=service_token,
        timeout_s=settings.gateway_rpc_timeout_s,
        forward_caller_token=settings.gateway_forward_caller_token,
    )
    enabled = [
        family
        for family, on in (
            (Family.CONTROL_PLANE, settings.control_plane_enabled),
            (Family.ADMIN, settings.admin_enabled),
        )
        if on
    ]
    app = build_app(
        routes,
        upstreams,
        TokenGuard(tokens=tokens, disabled=settings.auth_disabled),
        enabled_families=enabled,
        max_body_bytes=settings.gateway_max_body_bytes,
        health_timeout_s=settings.gateway_health_timeout_s,
        metrics=HttpMetrics(metrics_registry) if settings.metrics_port else None,
        tracer_provider=tracer_provider,
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    metrics_endpoint = None
    try:
        metrics_endpoint = start_metrics_endpoint(settings, metrics_registry)
        site = web.TCPSite(runner, settings.gateway_host, settings.gateway_port)
        try:
            await site.start()
        except OSError as error:
            raise ConfigError(
                f"Cannot listen on {settings.gateway_host}:{settings.gateway_port} ({error}); "
                "change TPF_GATEWAY_HOST or TPF_GATEWAY_PORT."
            ) from None
        logger.info(
            "%s serving HTTP on %s:%d (%d routes)",
            SERVICE_NAME,
            settings.gateway_host,
            settings.gateway_port,
            len(routes),
            extra={"http_port": settings.gateway_port},
        )
        await _wait_for_stop()
        logger.info("%s stopping", SERVICE_NAME)
    finally:
        await runner.cleanup()
        await upstreams.close()
        if metrics_endpoint is not None:
            await asyncio.to_thread(metrics_endpoint.stop)
        # Flushes buffered spans, which blocks; keep it off the event loop.
        await asyncio.to_thread(tracer_provider.shutdown)


async def _wait_for_stop() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(stop_signal, stop.set)
    await stop.wait()


def main() -> None:
    run_main(GatewaySettings, service_name=SERVICE_NAME, run=run)


if __name__ == "__main__":
    main()
