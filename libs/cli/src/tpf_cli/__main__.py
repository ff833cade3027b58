"""`tpf`: the command line of the TPF suite. This module runs the command that
`arguments` parsed and prints its report.

Registry commands (`releases`, `workers`) call the registry; execution commands (`submit`,
`status`, `result`, `history`, `cancel`, `executions`, `interactions`, `dlq`) and
`releases drift` call the coordinator; `release build` runs locally and calls nothing. Exit codes:
0 success, 1 the call failed (or the service could not be reached, or a watched execution did not
succeed, or the release `releases drift --release` asks about is not safe to retire), 2 usage
error.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

import grpc

from tpf_cli.arguments.dead_letter_commands import check_bulk_redrive_usage
from tpf_cli.arguments.parser import build_parser
from tpf_cli.connection import (
    COORDINATOR,
    Connection,
    connection_of,
    open_coordinator,
    open_registry,
)
from tpf_cli.errors import CliError, describe_rpc_error
from tpf_cli.output import Report, render


async def _run(args: argparse.Namespace, connection: Connection) -> Report:
    if args.service is COORDINATOR:
        async with open_coordinator(connection) as coordinator:
            report: Report = await args.run(coordinator, args)
            return report
    async with open_registry(connection) as registry:
        report = await args.run(registry, args)
        return report


def _detach_stdout() -> None:
    # The reader (`| head`) went away. Point stdout at devnull so that the interpreter's final
    # flush does not fail again (Python docs, "Note on SIGPIPE").
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "local_run", None) is not None:
        raise SystemExit(args.local_run(args))
    check_bulk_redrive_usage(args)
    connection = connection_of(
        args, args.command_parser, service=args.service, pipeline_required=args.needs_pipeline
    )
    try:
        report = asyncio.run(_run(args, connection))
    except grpc.aio.AioRpcError as error:
        print(
            describe_rpc_error(error, target=connection.target, service=connection.service),
            file=sys.stderr,
        )
        raise SystemExit(1) from None
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except BrokenPipeError:
        _detach_stdout()
        raise SystemExit(1) from None
    text = render(report, as_json=args.json)
    try:
        if text is not None:
            print(text, flush=True)
    except BrokenPipeError:
        _detach_stdout()
        raise SystemExit(1) from None
    if report.exit_code:
        raise SystemExit(report.exit_code)


if __name__ == "__main__":
    main()
