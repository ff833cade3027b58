"""`tpf workers ...`: register workers and follow their lifecycle (registry)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tpf_cli import workers
from tpf_cli.arguments.command_adders import CommandAdders, RegistryCommand, SubParsers
from tpf_cli.arguments.common_options import add_page_size
from tpf_cli.connection import Registry
from tpf_cli.output import Report


def _on_worker_id(action: Callable[[Registry, str], Awaitable[Report]]) -> RegistryCommand:
    return lambda registry, args: action(registry, args.worker_id)


def add_worker_commands(areas: SubParsers, adders: CommandAdders) -> None:
    wrk = areas.add_parser("workers", help="register workers and follow their lifecycle")
    wrk_commands = wrk.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub = adders.registry(
        wrk_commands,
        "register",
        "register (or replace) a worker of a release",
        lambda r, a: workers.register(
            r,
            a.worker_id,
            workers.WorkerIdentity(
                release_version=a.release,
                contract_version=a.contract_version,
                artifact_id=a.artifact_id,
                artifact_digest=a.artifact_digest,
            ),
            protocol=a.protocol,
            endpoint=a.endpoint,
        ),
    )
    sub.add_argument("--worker-id", required=True, metavar="ID")
    sub.add_argument("--release", required=True, metavar="VERSION", help="release version")
    sub.add_argument("--protocol", required=True, help="local, grpc, rest or sqs")
    sub.add_argument(
        "--endpoint", default="", help="host:port, base URL or queue URL (local: in-process)"
    )
    identity = "; taken from the release when omitted"
    sub.add_argument("--contract-version", default="", help="contract version" + identity)
    sub.add_argument("--artifact-id", default="", help="primary artifact id" + identity)
    sub.add_argument("--artifact-digest", default="", help="primary artifact digest" + identity)
    sub = adders.registry(
        wrk_commands,
        "list",
        "list the workers of the pipeline with their state",
        lambda r, a: workers.list_workers(r, release_version=a.release, page_size=a.page_size),
    )
    sub.add_argument("--release", default="", metavar="VERSION", help="only this release")
    add_page_size(sub)
    for name, help_text, action in (
        ("heartbeat", "record a heartbeat of a worker", workers.heartbeat),
        ("drain", "stop sending new work to a worker, until it is undrained", workers.drain),
        ("undrain", "end a worker's drain: it receives work again", workers.undrain),
        ("deregister", "remove a worker", workers.deregister),
    ):
        sub = adders.registry(wrk_commands, name, help_text, _on_worker_id(action))
        sub.add_argument("worker_id", metavar="ID", help="worker id")
    sub = adders.registry(
        wrk_commands,
        "resolve",
        "list the healthy workers that serve a release",
        lambda r, a: workers.resolve(r, release_version=a.release, protocol=a.protocol),
    )
    sub.add_argument("--release", required=True, metavar="VERSION", help="release version")
    sub.add_argument("--protocol", default="", help="only workers of this protocol")
