"""Where the registry is and who calls it: the common options, and the stubs they open.

The one module of the CLI that reads the environment. Each option takes its default from its
`TPF_*` variable, so a flag on the command line always wins over the environment.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

from tpf.registry.v1 import release_service_pb2_grpc, worker_service_pb2_grpc
from tpf_cli.errors import CliError
from tpf_rpc.channel import client_channel

DEFAULT_TARGET = "127.0.0.1:50052"
DEFAULT_TIMEOUT_S = 60.0

Item = TypeVar("Item")


@dataclass(frozen=True, slots=True)
class Connection:
    """The registry address, the caller's token and the pipeline every command acts on."""

    target: str
    token: str | None
    tenant_id: str
    pipeline_id: str
    timeout_s: float


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


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0: {text!r}")
    return value


def add_connection_options(
    parser: argparse.ArgumentParser, environ: Mapping[str, str] = os.environ
) -> None:
    """Add --registry, --token, --tenant, --pipeline and --timeout, defaulting from `environ`."""
    group = parser.add_argument_group("connection (flags win over the environment)")
    group.add_argument(
        "--registry",
        metavar="HOST:PORT",
        default=environ.get("TPF_REGISTRY_TARGET") or DEFAULT_TARGET,
        help=f"registry gRPC address (env TPF_REGISTRY_TARGET; default {DEFAULT_TARGET})",
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
        help="pipeline id, e.g. org.pipelineframework.restaurantapproval "
        "(env TPF_PIPELINE; required)",
    )
    group.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_positive_seconds,
        default=DEFAULT_TIMEOUT_S,
        help=f"deadline of each call (default {DEFAULT_TIMEOUT_S:g})",
    )


def connection_of(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Connection:
    """The connection the parsed options name; a missing tenant or pipeline is a usage error."""
    missing = [
        f"--{option} (or {variable})"
        for option, variable in (("tenant", "TPF_TENANT"), ("pipeline", "TPF_PIPELINE"))
        if not getattr(args, option)
    ]
    if missing:
        parser.error("missing " + " and ".join(missing))
    return Connection(
        target=args.registry,
        token=args.token,
        tenant_id=args.tenant,
        pipeline_id=args.pipeline,
        timeout_s=args.timeout,
    )


@asynccontextmanager
async def open_registry(connection: Connection) -> AsyncIterator[Registry]:
    """A channel to the registry (the suite's client channel: bearer token, retries)."""
    async with client_channel(connection.target, token=connection.token) as channel:
        yield Registry(
            releases=release_service_pb2_grpc.ReleaseServiceStub(channel),
            workers=worker_service_pb2_grpc.WorkerServiceStub(channel),
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
            raise CliError("the registry returned the same page token twice; listing stopped")
        token = next_token
