"""`python -m tpf_worker serve`: host one pipeline release over gRPC, REST or SQS.

Loads the pipeline, starts the chosen server, prints one `worker-ready` JSON line on stdout
(launchers and tests wait for it), optionally registers with the registry and heartbeats, and on
SIGTERM/SIGINT stops taking requests, lets in-flight ones finish (10 s grace) and exits 0.

TLS comes from the services' TPF_TLS_* variables: TPF_TLS_CERT_FILE and TPF_TLS_KEY_FILE make
the gRPC or REST server speak TLS (HTTPS), TPF_TLS_CLIENT_CA_FILE makes it require client
certificates, and TPF_TLS_CA_FILE (with TPF_TLS_CLIENT_CERT_FILE/_KEY_FILE) secures the channel
to the registry.
"""

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from opentelemetry.sdk.trace import TracerProvider

from tpf_config import ConfigError, TlsSettings, load_settings
from tpf_config.service_cli import version_of
from tpf_rpc.tls import ClientCertificates, ServerCertificates, client_certificates_of
from tpf_telemetry import configure_logging, configure_tracing
from tpf_worker.nonces import NonceCache, RedisNonceCache
from tpf_worker.protocol.capability import Capability
from tpf_worker.protocol.command import Command
from tpf_worker.protocol.result import Result
from tpf_worker.registration import WorkerAnnouncement, WorkerRegistration
from tpf_worker.transports.grpc import GrpcWorkerServer
from tpf_worker.transports.rest import RestWorkerServer
from tpf_worker.transports.sqs_server import SqsWorkerServer
from tpf_worker.transports.sqs_settings import SqsConfig

__all__ = ["main", "parse_args"]

logger = logging.getLogger(__name__)

REDIS_URL_ENV = "TPF_REDIS_URL"

_GRACE_S = 10.0
_TRANSPORTS = ("grpc", "rest", "sqs")


class _Server(Protocol):
    async def stop(self, grace_s: float = 5.0) -> None: ...


@dataclass(frozen=True)
class _Served:
    server: _Server
    endpoint: str


@dataclass(frozen=True)
class _Tls:
    """The worker's TLS: what its server presents, and what its registry channel trusts."""

    server: ServerCertificates | None = None
    client: ClientCertificates | None = None


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tpf_worker")
    parser.add_argument(
        "--version", action="version", version=f"tpf-worker {version_of('tpf-worker')}"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve a pipeline over a worker protocol")
    serve.add_argument("--pipeline", required=True, help="package.module:ATTRIBUTE")
    serve.add_argument("--transport", required=True, choices=_TRANSPORTS)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="0 picks a free port")
    serve.add_argument("--shared-secret-env", default="TPF_WORKER_SHARED_SECRET")
    serve.add_argument("--request-queue-url")
    serve.add_argument("--response-queue-url")
    serve.add_argument("--sqs-endpoint-url")
    serve.add_argument("--sqs-region", default="us-east-1")
    serve.add_argument("--registry-target", help="host:port of the registry's gRPC API")
    serve.add_argument("--registry-token-env", default="TPF_WORKER_REGISTRY_TOKEN")
    serve.add_argument("--tenant", default="default")
    serve.add_argument("--worker-id", default=None, help="default: <hostname>-<pid>")
    serve.add_argument("--advertise", default=None, help="endpoint to register (default: bound)")
    serve.add_argument("--heartbeat-s", type=float, default=30.0)
    serve.add_argument("--release-version", default=None)
    serve.add_argument("--log-level", default="INFO")
    serve.add_argument("--log-format", default="json")
    args = parser.parse_args(list(argv))
    if args.transport == "sqs" and not (args.request_queue_url and args.response_queue_url):
        parser.error("--transport sqs needs --request-queue-url and --response-queue-url")
    return args


def _env(name: str) -> str:
    # The CLI names the variable holding each secret, so secrets never appear in argv.
    value = os.environ.get(name, "")
    if not value:
        raise SystemExit(f"environment variable {name} is empty or unset")
    return value


class _Runtime(Protocol):
    def capability(self, provider_name: str) -> Capability: ...

    async def execute(self, command: Command) -> Result: ...


async def _start(
    args: argparse.Namespace,
    runtime: _Runtime,
    secret: str,
    tls: ServerCertificates | None,
    nonces: NonceCache | None,
) -> _Served:
    capability = runtime.capability(args.transport)
    if args.transport == "grpc":
        grpc_server = GrpcWorkerServer(
            runtime.execute, capability, shared_secret=secret, tls=tls, nonces=nonces
        )
        port = await grpc_server.start(args.host, args.port)
        return _Served(grpc_server, f"{args.host}:{port}")
    if args.transport == "rest":
        rest_server = RestWorkerServer(
            runtime.execute, capability, shared_secret=secret, tls=tls, nonces=nonces
        )
        port = await rest_server.start(args.host, args.port)
        scheme = "https" if tls is not None else "http"
        return _Served(rest_server, f"{scheme}://{args.host}:{port}")
    config = SqsConfig(
        region=args.sqs_region,
        endpoint_url=args.sqs_endpoint_url,
        access_key_id=os.environ.get("AWS_ACCESS_KEY_ID"),
        secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY"),
    )
    sqs_server = SqsWorkerServer(
        runtime.execute,
        capability,
        shared_secret=secret,
        request_queue_url=args.request_queue_url,
        config=config,
        response_queue_url=args.response_queue_url,
        nonces=nonces,
    )
    await sqs_server.start()
    return _Served(sqs_server, args.request_queue_url)


def _load_tls() -> _Tls:
    """TLS per TPF_TLS_*; a problem ends the process with one line and exit code 2."""
    try:
        settings = load_settings(TlsSettings)
        server_tls = settings.server_tls()
        return _Tls(
            server=ServerCertificates(server_tls) if server_tls is not None else None,
            client=client_certificates_of(settings),
        )
    except ConfigError as error:
        print(f"tpf-worker: {error}", file=sys.stderr)
        raise SystemExit(2) from None


async def _serve(args: argparse.Namespace, tls: _Tls) -> None:
    # Imported here: release/runtime pull in the whole authoring SDK, which --help does not need.
    from tpf_worker.release import identity_of, load_pipeline
    from tpf_worker.runtime import WorkerRuntime

    secret = _env(args.shared_secret_env)
    pipeline = load_pipeline(args.pipeline)
    runtime = WorkerRuntime(pipeline, identity_of(pipeline, release_version=args.release_version))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    # With TPF_REDIS_URL, every replica of this worker shares its nonces: a request replayed to
    # another replica is refused too.
    redis_url = os.environ.get(REDIS_URL_ENV, "").strip()
    nonces = RedisNonceCache.from_url(redis_url) if redis_url else None
    served = await _start(args, runtime, secret, tls.server, nonces)
    registration: WorkerRegistration | None = None
    try:
        ready = {"event": "worker-ready", "transport": args.transport, "endpoint": served.endpoint}
        print(json.dumps(ready, separators=(",", ":")), flush=True)
        if args.registry_target:
            token = os.environ.get(args.registry_token_env) or None
            announcement = WorkerAnnouncement(
                tenant_id=args.tenant,
                worker_id=args.worker_id or f"{socket.gethostname()}-{os.getpid()}",
                protocol=args.transport,
                endpoint=args.advertise or served.endpoint,
                capability=runtime.capability(args.transport),
            )
            registration = WorkerRegistration(
                announcement,
                target=args.registry_target,
                token=token,
                heartbeat_s=args.heartbeat_s,
                tls=tls.client,
            )
            await registration.start()
        await stop.wait()
        logger.info("Stopping worker: finishing in-flight requests")
    finally:
        if registration is not None:
            await registration.stop()
        await served.server.stop(_GRACE_S)
        if nonces is not None:
            await nonces.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging(service="tpf-worker", level=args.log_level, fmt=args.log_format)
    tls = _load_tls()
    tracer_provider = _load_tracing()
    try:
        asyncio.run(_serve(args, tls))
    finally:
        tracer_provider.shutdown()  # flushes the spans still buffered
    return 0


def _load_tracing() -> TracerProvider:
    """Tracing from the OTEL_* variables (OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_*, ...)."""
    try:
        return configure_tracing(service="tpf-worker")
    except ValueError as error:
        print(f"tpf-worker: Invalid configuration: {error}", file=sys.stderr)
        raise SystemExit(2) from None
