"""serve(): the one way a TPF service runs its grpc.aio server.

Shaped like grpc's async_greeter_server_with_graceful_shutdown example: interceptors, the
service's servicers, health and reflection; start; wait for SIGTERM/SIGINT or `stop_event`;
then health NOT_SERVING, `server.stop(grace)`, and the caller's `on_stop`.
"""

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from tpf_config import CommonSettings, ConfigError, env_var_name, load_settings
from tpf_rpc.channel import client_channel
from tpf_rpc.interceptors import (
    AuthInterceptor,
    ErrorInterceptor,
    ErrorTranslator,
    TracingInterceptor,
)
from tpf_rpc.metrics import GrpcServerMetrics, MetricsInterceptor, start_metrics_endpoint
from tpf_rpc.tls import ServerCertificates
from tpf_telemetry import configure_logging, configure_tracing
from tpf_telemetry.metrics import new_registry

__all__ = ["client_channel", "run_main", "serve", "service_tracer_provider"]

SettingsT = TypeVar("SettingsT", bound=CommonSettings)

logger = logging.getLogger(__name__)

HEALTH_SERVICE_NAME: str = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def serve(
    *,
    settings: CommonSettings,
    service_name: str,
    domain: str,
    register: Callable[[grpc.aio.Server], None],
    service_full_names: Sequence[str],
    on_stop: Callable[[], Awaitable[None]] | None = None,
    stop_event: asyncio.Event | None = None,
    tracer_provider: TracerProvider | None = None,
    server_options: Sequence[tuple[str, Any]] = (),
    error_translators: Sequence[ErrorTranslator] = (),
    metrics_registry: CollectorRegistry | None = None,
) -> None:
    """Serve until SIGTERM, SIGINT or `stop_event` is set, then shut down gracefully.

    `register` adds the service's servicers; `service_full_names` (e.g.
    "tpf.registry.v1.RegistryService") get health SERVING and reflection. `domain` is the
    ErrorInfo domain ("tpf.registry"). `on_stop` runs after the server has stopped (close
    pools there); it runs even if startup fails. Without `tracer_provider`, one is built
    from settings and shut down on exit. `error_translators` map lower-layer exceptions (e.g.
    a database driver's) to client errors. `server_options` are extra gRPC channel arguments
    (e.g. `("grpc.max_receive_message_length", n)`).

    With TPF_METRICS_PORT set, `metrics_registry` (the service's own metrics; a fresh registry
    without it) plus per-method gRPC metrics are served at /metrics on that port.

    With TPF_TLS_CERT_FILE and TPF_TLS_KEY_FILE the port serves TLS only (and requires client
    certificates with TPF_TLS_CLIENT_CA_FILE); rotated files are served without a restart.
    TPF_HEALTH_PORT adds a plain-text port that serves the same health statuses and nothing
    else, for probes that cannot speak TLS.

    Raises ConfigError before listening if no tokens are configured (and auth is enabled),
    the TLS files cannot be used or the address cannot be bound.
    """
    stop = stop_event if stop_event is not None else asyncio.Event()
    provider = tracer_provider
    server: grpc.aio.Server | None = None
    health_server: grpc.aio.Server | None = None
    metrics_endpoint = None
    health_servicer = health.aio.HealthServicer()
    try:
        if provider is None:
            provider = service_tracer_provider(settings, service_name)
        # Reads token files: keep that off the event loop.
        grants = await asyncio.to_thread(settings.token_grants)
        server_tls = settings.server_tls()
        certificates = (
            await asyncio.to_thread(ServerCertificates, server_tls) if server_tls else None
        )
        if settings.auth_disabled:
            logger.warning("Auth is disabled: every caller is an all-tenant admin")
        registry = metrics_registry if metrics_registry is not None else new_registry()
        # Outside the error interceptor: it counts the status code the client receives.
        metering = (
            [MetricsInterceptor(GrpcServerMetrics(registry))] if settings.metrics_port else []
        )
        server = grpc.aio.server(
            interceptors=[
                TracingInterceptor(provider),
                *metering,
                ErrorInterceptor(domain, translators=error_translators),
                AuthInterceptor(grants, auth_disabled=settings.auth_disabled),
            ],
            # Without so_reuseport=0, Linux lets a second process bind the same port and
            # silently split traffic with us.
            options=[("grpc.so_reuseport", 0), *server_options],
        )
        register(server)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection(
            [*service_full_names, HEALTH_SERVICE_NAME, reflection.SERVICE_NAME], server
        )
        if settings.health_port:
            health_server = _health_only_server(health_servicer, settings)
        port = _bind(server, settings, certificates)
        metrics_endpoint = start_metrics_endpoint(settings, registry)
        for name in ("", *service_full_names):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        if health_server is not None:
            await health_server.start()
        await server.start()
        logger.info(
            "%s serving gRPC on %s:%d (%s)",
            service_name,
            settings.grpc_host,
            port,
            _transport_security(certificates),
            extra={"grpc_port": port},
        )
        await _wait_for_stop(stop)
        logger.info("%s stopping (grace %.1fs)", service_name, settings.shutdown_grace_s)
    finally:
        try:
            await _shut_down(
                server, health_servicer, settings.shutdown_grace_s, on_stop, health_server
            )
        finally:
            if metrics_endpoint is not None:
                await asyncio.to_thread(metrics_endpoint.stop)
            if tracer_provider is None and provider is not None:
                # Flushes buffered spans, which blocks; keep it off the event loop.
                await asyncio.to_thread(provider.shutdown)


def _transport_security(certificates: ServerCertificates | None) -> str:
    if certificates is None:
        return "plain text"
    if certificates.requires_client_certificates:
        return "TLS, client certificates required"
    return "TLS"


def _bind(
    server: grpc.aio.Server, settings: CommonSettings, certificates: ServerCertificates | None
) -> int:
    address = f"{settings.grpc_host}:{settings.grpc_port}"
    try:
        if certificates is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, certificates.grpc_credentials())
    except RuntimeError as error:
        port, cause = 0, str(error)
    else:
        cause = "address in use or not local"
    if port == 0:
        raise ConfigError(
            f"Cannot listen on {address} ({cause}); change "
            f"{env_var_name(type(settings), 'grpc_host')} or "
            f"{env_var_name(type(settings), 'grpc_port')}."
        )
    return port


def _health_only_server(
    health_servicer: health.aio.HealthServicer, settings: CommonSettings
) -> grpc.aio.Server:
    """The health servicer alone on TPF_HEALTH_PORT, in plain text: it tells whether the
    service is SERVING and nothing more, so it needs no TLS or token."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    address = f"{settings.grpc_host}:{settings.health_port}"
    try:
        port = server.add_insecure_port(address)
    except RuntimeError:
        port = 0
    if port == 0:
        raise ConfigError(
            f"Cannot listen on {address} (address in use or not local); change "
            f"{env_var_name(type(settings), 'health_port')}."
        )
    return server


async def _wait_for_stop(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for stop_signal in _STOP_SIGNALS:
        try:
            loop.add_signal_handler(stop_signal, stop.set)
        except (NotImplementedError, RuntimeError):
            # Not the main thread (or not Unix): the caller stops us through `stop`.
            continue
        installed.append(stop_signal)
    try:
        await stop.wait()
    finally:
        for stop_signal in installed:
            loop.remove_signal_handler(stop_signal)


async def _shut_down(
    server: grpc.aio.Server | None,
    health_servicer: health.aio.HealthServicer,
    grace_s: float,
    on_stop: Callable[[], Awaitable[None]] | None,
    health_server: grpc.aio.Server | None = None,
) -> None:
    try:
        # NOT_SERVING first, so load balancers stop routing here while in-flight RPCs finish.
        await health_servicer.enter_graceful_shutdown()
        if server is not None:
            await server.stop(grace_s)
        if health_server is not None:
            await health_server.stop(0)
    finally:
        if on_stop is not None:
            await on_stop()


def service_tracer_provider(settings: CommonSettings, service_name: str) -> TracerProvider:
    """The service's tracer provider, from the OTEL_* variables (and TPF_OTEL_TRACES_EXPORTER,
    which wins when set). Raises ConfigError naming an invalid variable. Shut it down at exit:
    that flushes the spans still buffered."""
    try:
        return configure_tracing(service=service_name, exporter=settings.otel_traces_exporter)
    except ValueError as error:
        raise ConfigError(f"Invalid configuration: {error}") from None


def event_loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop factory of `TPF_EVENT_LOOP`: uvloop's, or None for asyncio's own."""
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None


def run_main(
    settings_cls: type[SettingsT],
    *,
    service_name: str,
    run: Callable[[SettingsT], Coroutine[Any, Any, None]],
) -> None:
    """A service's `main()`: settings, JSON logging, then `run` on an event loop.

    A configuration error (invalid variable, no tokens, port in use) ends the process with a
    one-line message and exit code 2, never a stack trace.
    """
    try:
        settings = load_settings(settings_cls)
    except ConfigError as error:
        print(f"{service_name}: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(service=service_name, level=settings.log_level, fmt=settings.log_format)
    try:
        with asyncio.Runner(loop_factory=event_loop_factory(settings.event_loop)) as runner:
            runner.run(run(settings))
    except ConfigError as error:
        logger.error("configuration error: %s", error)
        raise SystemExit(2) from None
