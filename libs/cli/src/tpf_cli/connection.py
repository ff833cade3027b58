"""Where the services are and who calls them: the common options, and the stubs they open.

The one module of the CLI that reads the environment. Each option takes its default from its
`TPF_*` variable, so a flag on the command line always wins over the environment. Registry
commands (`releases`, `workers`) name the registry with `--registry`; execution commands name the
coordinator with `--coordinator`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from tpf.coordinator.v1 import (
    dead_letter_service_pb2_grpc,
    execution_service_pb2_grpc,
    interaction_service_pb2_grpc,
    release_drift_service_pb2_grpc,
)
from tpf.registry.v1 import release_service_pb2_grpc, worker_service_pb2_grpc
from tpf_cli.errors import CliError
from tpf_rpc.channel import client_channel
from tpf_rpc.tls import ClientCertificates, ClientTls, ConfigError

DEFAULT_TIMEOUT_S = 60.0
# The coordinator sends and accepts messages up to 64 MiB (results, inputs); gRPC's client
# default of 4 MiB would refuse a large result.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

Item = TypeVar("Item")


@dataclass(frozen=True, slots=True)
class Service:
    """A service the CLI calls: its name in messages, its option, variable and default address."""

    name: str
    option: str
    variable: str
    default_target: str


REGISTRY = Service("registry", "registry", "TPF_REGISTRY_TARGET", "127.0.0.1:50052")
COORDINATOR = Service("coordinator", "coordinator", "TPF_COORDINATOR_TARGET", "127.0.0.1:50051")
DEFAULT_TARGET = REGISTRY.default_target


@dataclass(frozen=True, slots=True)
class Connection:
    """The service address, the caller's token and the tenant (and pipeline) commands act on.

    `pipeline_id` is empty when a coordinator command was given none (it is then a filter that
    matches every pipeline).
    """

    target: str
    token: str | None
    tenant_id: str
    pipeline_id: str
    timeout_s: float
    service: str = REGISTRY.name
    # TLS toward the service (CA, optional client certificate); None is plain text.
    tls: ClientTls | None = None


@dataclass(frozen=True, slots=True)
class Registry:
    """Both registry stubs on one channel, plus the connection they were opened with."""

    releases: release_service_pb2_grpc.ReleaseServiceAsyncStub
    workers: worker_service_pb2_grpc.WorkerServiceAsyncStub
    connection: Connection

    @property
    def tenant_id(self) -> str:
        return self.connection.tenant_id

    @property
    def pipeline_id(self) -> str:
        return self.connection.pipeline_id

    @property
    def timeout_s(self) -> float:
        return self.connection.timeout_s


@dataclass(frozen=True, slots=True)
class Coordinator:
    """The coordinator stubs the CLI uses, on one channel, plus the connection."""

    executions: execution_service_pb2_grpc.ExecutionServiceAsyncStub
    interactions: interaction_service_pb2_grpc.InteractionServiceAsyncStub
    dead_letters: dead_letter_service_pb2_grpc.DeadLetterServiceAsyncStub
    release_drift: release_drift_service_pb2_grpc.ReleaseDriftServiceAsyncStub
    connection: Connection

    @property
    def tenant_id(self) -> str:
        return self.connection.tenant_id

    @property
    def pipeline_id(self) -> str:
        return self.connection.pipeline_id

    @property
    def timeout_s(self) -> float:
        return self.connection.timeout_s


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0: {text!r}")
    return value


_PIPELINE_REQUIRED_HELP = (
    "pipeline id, e.g. org.pipelineframework.restaurantapproval (env TPF_PIPELINE; required)"
)
_PIPELINE_FILTER_HELP = (
    "pipeline id (env TPF_PIPELINE): the pipeline `submit` runs, and the filter of list and "
    "bulk commands; --pipeline '' matches every pipeline"
)


def add_connection_options(
    parser: argparse.ArgumentParser,
    environ: Mapping[str, str] = os.environ,
    *,
    service: Service = REGISTRY,
) -> None:
    """Add --registry (or --coordinator), --token, --tenant, --pipeline, --timeout and the
    --tls-* files, defaulting from `environ`."""
    group = parser.add_argument_group("connection (flags win over the environment)")
    group.add_argument(
        f"--{service.option}",
        dest="target",
        metavar="HOST:PORT",
        default=environ.get(service.variable) or service.default_target,
        help=f"{service.name} gRPC address "
        f"(env {service.variable}; default {service.default_target})",
    )
    group.add_argument(
        "--token",
        default=environ.get("TPF_TOKEN") or None,
        help="bearer token sent with every call (env TPF_TOKEN)",
    )
    group.add_argument(
        "--tenant",
        default=environ.get("TPF_TENANT") or None,
        help="tenant id (env TPF_TENANT; required)",
    )
    group.add_argument(
        "--pipeline",
        default=environ.get("TPF_PIPELINE") or None,
        help=_PIPELINE_REQUIRED_HELP if service is REGISTRY else _PIPELINE_FILTER_HELP,
    )
    group.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_positive_seconds,
        default=DEFAULT_TIMEOUT_S,
        help=f"deadline of each call (default {DEFAULT_TIMEOUT_S:g})",
    )
    group.add_argument(
        "--tls-ca",
        metavar="PEM",
        default=environ.get("TPF_TLS_CA_FILE") or None,
        help="call over TLS, checking the service's certificate against this CA bundle "
        "(env TPF_TLS_CA_FILE; default plain text)",
    )
    group.add_argument(
        "--tls-cert",
        metavar="PEM",
        default=environ.get("TPF_TLS_CLIENT_CERT_FILE") or None,
        help="client certificate chain for services that require one (mTLS; "
        "env TPF_TLS_CLIENT_CERT_FILE; needs --tls-ca and --tls-key)",
    )
    group.add_argument(
        "--tls-key",
        metavar="PEM",
        default=environ.get("TPF_TLS_CLIENT_KEY_FILE") or None,
        help="private key of --tls-cert, unencrypted (env TPF_TLS_CLIENT_KEY_FILE)",
    )


def connection_of(
    args: argparse.Namespace,
    parser: argparse.ArgumentParser,
    *,
    service: Service = REGISTRY,
    pipeline_required: bool = True,
) -> Connection:
    """The connection the parsed options name; a missing tenant (or required pipeline) is a
    usage error."""
    required = [("tenant", "TPF_TENANT")]
    if pipeline_required:
        required.append(("pipeline", "TPF_PIPELINE"))
    missing = [
        f"--{option} (or {variable})" for option, variable in required if not getattr(args, option)
    ]
    if missing:
        parser.error("missing " + " and ".join(missing))
    return Connection(
        target=args.target,
        token=args.token,
        tenant_id=args.tenant,
        pipeline_id=(args.pipeline or "").strip(),
        timeout_s=args.timeout,
        service=service.name,
        tls=_tls_of(args, parser),
    )


def _tls_of(args: argparse.Namespace, parser: argparse.ArgumentParser) -> ClientTls | None:
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    if args.tls_cert is not None and args.tls_ca is None:
        parser.error("--tls-cert needs --tls-ca (the CA that signed the service's certificate)")
    if args.tls_ca is None:
        return None
    return ClientTls(
        ca_file=Path(args.tls_ca),
        cert_file=Path(args.tls_cert) if args.tls_cert is not None else None,
        key_file=Path(args.tls_key) if args.tls_key is not None else None,
        ca_label="--tls-ca",
        cert_label="--tls-cert",
        key_label="--tls-key",
    )


def _certificates(connection: Connection) -> ClientCertificates | None:
    if connection.tls is None:
        return None
    try:
        return ClientCertificates(connection.tls)
    except ConfigError as error:
        raise CliError(str(error)) from None


@asynccontextmanager
async def open_registry(connection: Connection) -> AsyncIterator[Registry]:
    """A channel to the registry (the suite's client channel: bearer token, retries)."""
    async with client_channel(
        connection.target, token=connection.token, tls=_certificates(connection)
    ) as channel:
        yield Registry(
            releases=release_service_pb2_grpc.ReleaseServiceStub(channel),
            workers=worker_service_pb2_grpc.WorkerServiceStub(channel),
            connection=connection,
        )


@asynccontextmanager
async def open_coordinator(connection: Connection) -> AsyncIterator[Coordinator]:
    """A channel to the coordinator; the token goes with unary and streaming calls alike."""
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]
    async with client_channel(
        connection.target, token=connection.token, tls=_certificates(connection), options=options
    ) as channel:
        yield Coordinator(
            executions=execution_service_pb2_grpc.ExecutionServiceStub(channel),
            interactions=interaction_service_pb2_grpc.InteractionServiceStub(channel),
            dead_letters=dead_letter_service_pb2_grpc.DeadLetterServiceStub(channel),
            release_drift=release_drift_service_pb2_grpc.ReleaseDriftServiceStub(channel),
            connection=connection,
        )


async def collect_pages(
    fetch_page: Callable[[str], Awaitable[tuple[Sequence[Item], str]]],
) -> list[Item]:
    """Every item of a paged List call: `fetch_page(token)` → (items, next_page_token)."""
    items: list[Item] = []
    token = ""
    while True:
        page, next_token = await fetch_page(token)
        items.extend(page)
        if not next_token:
            return items
        if next_token == token:
            raise CliError("the server returned the same page token twice; listing stopped")
        token = next_token
