"""`tpf`: the command line of the TPF suite. This module only wires argparse to the commands.

Exit codes: 0 success, 1 the call failed (or the registry could not be reached), 2 usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import grpc

from tpf_cli import releases, workers
from tpf_cli.connection import (
    Connection,
    Registry,
    add_connection_options,
    connection_of,
    open_registry,
)
from tpf_cli.errors import CliError, describe_rpc_error
from tpf_cli.output import Report, render

Command = Callable[[Registry, argparse.Namespace], Awaitable[Report]]


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    add_connection_options(common)
    common.add_argument("--json", action="store_true", help="print the response as protobuf JSON")
    return common


def _page_size(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--page-size",
        type=int,
        default=0,
        metavar="N",
        help="items per request (server default when 0); every page is fetched",
    )


def _absolute_path(text: str) -> Path:
    # The registry reads a descriptor path from its own disk, where our working directory
    # means nothing.
    return Path(os.path.abspath(text))


def _on_worker_id(action: Callable[[Registry, str], Awaitable[Report]]) -> Command:
    return lambda registry, args: action(registry, args.worker_id)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tpf", description="Command line of the TPF coordinator suite."
    )
    areas = parser.add_subparsers(dest="area", metavar="AREA", required=True)
    common = _common_options()

    def command(
        group: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        help_text: str,
        run: Command,
    ) -> argparse.ArgumentParser:
        sub = group.add_parser(name, help=help_text, description=help_text, parents=[common])
        sub.set_defaults(run=run, command_parser=sub)
        return sub

    rel = areas.add_parser("releases", help="register, activate and read releases")
    rel_commands = rel.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub = command(
        rel_commands,
        "register",
        "register a release from its pipeline-release.json",
        lambda r, a: releases.register(r, a.descriptor, upload=a.upload),
    )
    sub.add_argument(
        "--descriptor", required=True, metavar="PATH", type=_absolute_path, help="descriptor file"
    )
    sub.add_argument(
        "--upload",
        action="store_true",
        help="send the descriptor and local artifact files with the request "
        "(for a registry that cannot read this machine's files)",
    )
    sub = command(
        rel_commands,
        "activate",
        "make a release the active one of its pipeline",
        lambda r, a: releases.activate(r, a.version, reason=a.reason),
    )
    sub.add_argument("version", help="release version")
    sub.add_argument("--reason", default="", help="why, kept in the activation history")
    _page_size(
        command(
            rel_commands,
            "list",
            "list the releases of the pipeline, oldest first",
            lambda r, a: releases.list_releases(r, page_size=a.page_size),
        )
    )
    sub = command(rel_commands, "get", "show one release", lambda r, a: releases.get(r, a.version))
    sub.add_argument("version", help="release version")
    command(rel_commands, "active", "show the active release", lambda r, a: releases.active(r))
    _page_size(
        command(
            rel_commands,
            "activations",
            "list the activation history, newest first",
            lambda r, a: releases.activations(r, page_size=a.page_size),
        )
    )

    wrk = areas.add_parser("workers", help="register workers and follow their lifecycle")
    wrk_commands = wrk.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub = command(
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
    sub = command(
        wrk_commands,
        "list",
        "list the workers of the pipeline with their state",
        lambda r, a: workers.list_workers(r, release_version=a.release, page_size=a.page_size),
    )
    sub.add_argument("--release", default="", metavar="VERSION", help="only this release")
    _page_size(sub)
    for name, help_text, action in (
        ("heartbeat", "record a heartbeat of a worker", workers.heartbeat),
        ("drain", "stop sending new work to a worker", workers.drain),
        ("deregister", "remove a worker", workers.deregister),
    ):
        sub = command(wrk_commands, name, help_text, _on_worker_id(action))
        sub.add_argument("worker_id", metavar="ID", help="worker id")
    sub = command(
        wrk_commands,
        "resolve",
        "list the healthy workers that serve a release",
        lambda r, a: workers.resolve(r, release_version=a.release, protocol=a.protocol),
    )
    sub.add_argument("--release", required=True, metavar="VERSION", help="release version")
    sub.add_argument("--protocol", default="", help="only workers of this protocol")
    return parser


async def _run(command: Command, args: argparse.Namespace, connection: Connection) -> Report:
    async with open_registry(connection) as registry:
        return await command(registry, args)


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    connection = connection_of(args, args.command_parser)
    try:
        report = asyncio.run(_run(args.run, args, connection))
    except grpc.aio.AioRpcError as error:
        print(describe_rpc_error(error, target=connection.target), file=sys.stderr)
        raise SystemExit(1) from None
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    try:
        print(render(report, as_json=args.json), flush=True)
    except BrokenPipeError:
        # The reader (`| head`) went away. Point stdout at devnull so that the interpreter's
        # final flush does not fail again (Python docs, "Note on SIGPIPE").
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
