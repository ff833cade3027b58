"""`python -m tpf_gateway`: settings → logging → route table → channels → serve HTTP."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from tpf_config import ConfigError
from tpf_config.service_cli import parse_service_args
from tpf_gateway.app import build_app
from tpf_gateway.auth import TokenGuard
from tpf_gateway.health import Health
from tpf_gateway.http_metrics import HttpMetrics
from tpf_gateway.routes import Family, Upstream, build_route_table
from tpf_gateway.settings import GatewaySettings
from tpf_gateway.upstream import Upstreams
from tpf_rpc.metrics import start_metrics_endpoint
from tpf_rpc.server import run_main, service_tracer_provider
from tpf_rpc.tls import ServerCertificates, client_certificates_of
from tpf_telemetry.metrics import new_registry

logger = logging.getLogger(__name__)

SERVICE_NAME = "tpf-gateway"


async def run(settings: GatewaySettings) -> None:
    # Also the global provider: the upstream channels' CLIENT spans use it.
    tracer_provider = service_tracer_provider(settings, SERVICE_NAME)
    # Resolving `file:` references reads files: keep it off the event loop.
    tokens = await asyncio.to_thread(settings.family_tokens)
    service_token = await asyncio.to_thread(settings.service_token)
    viewer_token = await asyncio.to_thread(settings.resolved_viewer_token)
    server_tls = settings.server_tls()
    certificates = await asyncio.to_thread(ServerCertificates, server_tls) if server_tls else None
    upstream_tls = await asyncio.to_thread(client_certificates_of, settings)
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
        tls=upstream_tls,
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
        TokenGuard(tokens=tokens, disabled=settings.auth_disabled, viewer_token=viewer_token),
        enabled_families=enabled,
        max_body_bytes=settings.gateway_max_body_bytes,
        health_timeout_s=settings.gateway_health_timeout_s,
        metrics=HttpMetrics(metrics_registry) if settings.metrics_port else None,
        tracer_provider=tracer_provider,
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    health_runner: web.AppRunner | None = None
    metrics_endpoint = None
    try:
        metrics_endpoint = start_metrics_endpoint(settings, metrics_registry)
        site = web.TCPSite(
            runner,
            settings.gateway_host,
            settings.gateway_port,
            ssl_context=certificates.ssl_context() if certificates is not None else None,
        )
        await _listen(site, settings.gateway_host, settings.gateway_port, "TPF_GATEWAY_PORT")
        if settings.gateway_health_port:
            health = Health(upstreams, timeout_s=settings.gateway_health_timeout_s)
            health_runner = web.AppRunner(health.app(), access_log=None)
            await health_runner.setup()
            await _listen(
                web.TCPSite(health_runner, settings.gateway_host, settings.gateway_health_port),
                settings.gateway_host,
                settings.gateway_health_port,
                "TPF_GATEWAY_HEALTH_PORT",
            )
        logger.info(
            "%s serving %s on %s:%d (%d routes)",
            SERVICE_NAME,
            _listener_kind(certificates),
            settings.gateway_host,
            settings.gateway_port,
            len(routes),
            extra={"http_port": settings.gateway_port},
        )
        await _wait_for_stop()
        logger.info("%s stopping", SERVICE_NAME)
    finally:
        await runner.cleanup()
        if health_runner is not None:
            await health_runner.cleanup()
        await upstreams.close()
        if metrics_endpoint is not None:
            await asyncio.to_thread(metrics_endpoint.stop)
        # Flushes buffered spans, which blocks; keep it off the event loop.
        await asyncio.to_thread(tracer_provider.shutdown)


async def _listen(site: web.TCPSite, host: str, port: int, port_variable: str) -> None:
    try:
        await site.start()
    except OSError as error:
        raise ConfigError(
            f"Cannot listen on {host}:{port} ({error}); change TPF_GATEWAY_HOST or {port_variable}."
        ) from None


def _listener_kind(certificates: ServerCertificates | None) -> str:
    if certificates is None:
        return "HTTP"
    if certificates.requires_client_certificates:
        return "HTTPS (client certificates required)"
    return "HTTPS"


async def _wait_for_stop() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(stop_signal, stop.set)
    await stop.wait()


def main() -> None:
    parse_service_args(SERVICE_NAME, GatewaySettings, distribution="tpf-gateway")
    run_main(GatewaySettings, service_name=SERVICE_NAME, run=run)


if __name__ == "__main__":
    main()
