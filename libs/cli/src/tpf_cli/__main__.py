"""`tpf`: the command line of the TPF suite. This module only wires argparse to the commands.

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
import importlib.metadata
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeAlias

import grpc

from tpf.coordinator.v1 import dead_letter_service_pb2
from tpf_cli import (
    dead_letters,
    executions,
    filters,
    interactions,
    release_drift,
    releases,
    workers,
)
from tpf_cli.connection import (
    COORDINATOR,
    REGISTRY,
    Connection,
    Coordinator,
    Registry,
    Service,
    add_connection_options,
    connection_of,
    open_coordinator,
    open_registry,
)
from tpf_cli.errors import CliError, describe_rpc_error
from tpf_cli.output import Report, render
from tpf_cli.payloads import STDIN, PayloadSource
from tpf_cli.release_build import add_release_build

Command = Callable[[Registry, argparse.Namespace], Awaitable[Report]]
CoordinatorCommand = Callable[[Coordinator, argparse.Namespace], Awaitable[Report]]
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

_SHAPES = ("UNI", "MULTI", "RAW")


def _common_options(service: Service = REGISTRY) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    add_connection_options(common, service=service)
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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0: {text!r}")
    return value


def _version(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a version number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def _shape(text: str) -> str:
    shape = text.strip().upper()
    if shape not in _SHAPES:
        raise argparse.ArgumentTypeError(f"unknown shape {text!r} (one of {', '.join(_SHAPES)})")
    return shape


def _on_worker_id(action: Callable[[Registry, str], Awaitable[Report]]) -> Command:
    return lambda registry, args: action(registry, args.worker_id)


def _payload_options(
    parser: argparse.ArgumentParser,
    what: str,
    flag: str,
    *,
    required: bool = True,
    envelope_flag: str = "envelope-file",
) -> None:
    """`--<flag> JSON | --<flag>-file PATH | --<envelope_flag> PATH`, and `--type TYPE_ID`."""
    source = parser.add_mutually_exclusive_group(required=required)
    source.add_argument(
        f"--{flag}",
        dest="payload_json",
        metavar="JSON",
        help=f"the {what} as plain JSON; sent as a java.util.Map (or List, scalar) envelope, "
        "or as the --type envelope",
    )
    source.add_argument(
        f"--{flag}-file",
        dest="payload_file",
        metavar="PATH",
        help=f"read the {what} as plain JSON from a file ({STDIN} for stdin)",
    )
    source.add_argument(
        f"--{envelope_flag}",
        dest="envelope_file",
        metavar="PATH",
        help=f"send a ready TPF envelope (payloadTypeId, payloadEncoding, payload) from a file "
        f"({STDIN} for stdin) as it is",
    )
    parser.add_argument(
        "--type",
        dest="type_id",
        metavar="TYPE_ID",
        help="send the plain JSON as this application type's envelope (payload = compact JSON), "
        "e.g. org.pipelineframework.restaurantapproval.common.dto."
        "PlaceRestaurantOrderRequestDto",
    )


def _optional_payload_source(args: argparse.Namespace, what: str) -> PayloadSource | None:
    if args.payload_json is None and args.payload_file is None and args.envelope_file is None:
        if args.type_id is not None:
            args.command_parser.error(f"--type needs a {what}")
        return None
    return _payload_source(args, what)


def _payload_source(args: argparse.Namespace, what: str) -> PayloadSource:
    if args.type_id is not None and args.envelope_file is not None:
        args.command_parser.error("--type cannot be used with --envelope-file")
    return PayloadSource(
        what=what,
        json_text=args.payload_json,
        json_file=args.payload_file,
        envelope_file=args.envelope_file,
        type_id=args.type_id,
    )


def _dead_letter_filter_options(parser: argparse.ArgumentParser, *, listing: bool) -> None:
    parser.add_argument(
        "--release",
        default="",
        metavar="VERSION",
        help="only dead letters of executions pinned to this release when they failed",
    )
    parser.add_argument("--error-code", default="", metavar="CODE", help="only this error code")
    parser.add_argument(
        "--terminal-reason",
        dest="terminal_reasons",
        action="append",
        default=[],
        type=filters.terminal_reason,
        metavar="REASON",
        help="only this terminal reason (retry_exhausted, non_retryable, "
        "circuit_deferral_exhausted, lease_expired_repeatedly); repeat for several",
    )
    parser.add_argument(
        "--execution", dest="filter_execution", default="", metavar="ID", help="only this execution"
    )
    filters.add_created_options(parser)
    if listing:
        parser.add_argument(
            "--include-redriven", action="store_true", help="also list redriven dead letters"
        )


def _dead_letter_filter(
    coordinator: Coordinator, args: argparse.Namespace
) -> dead_letter_service_pb2.DeadLetterFilter:
    dead_letter_filter = dead_letter_service_pb2.DeadLetterFilter(
        pipeline_id=coordinator.pipeline_id,
        release_version=args.release,
        error_code=args.error_code,
        terminal_reasons=args.terminal_reasons,
        include_redriven=getattr(args, "include_redriven", False),
        execution_id=args.filter_execution,
    )
    filters.created_of(args).apply(
        dead_letter_filter.created_after, dead_letter_filter.created_before
    )
    return dead_letter_filter


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _emit(line: str) -> None:
    print(line, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tpf", description="Command line of the TPF coordinator suite."
    )
    parser.add_argument(
        "--version", action="version", version=f"tpf {importlib.metadata.version('tpf-cli')}"
    )
    areas = parser.add_subparsers(dest="area", metavar="COMMAND", required=True)
    common = _common_options()
    coordinator_common = _common_options(COORDINATOR)

    def command(
        group: SubParsers,
        name: str,
        help_text: str,
        run: Command,
    ) -> argparse.ArgumentParser:
        sub = group.add_parser(name, help=help_text, description=help_text, parents=[common])
        sub.set_defaults(run=run, command_parser=sub, service=REGISTRY, needs_pipeline=True)
        return sub

    def coordinator_command(
        group: SubParsers,
        name: str,
        help_text: str,
        run: CoordinatorCommand,
        *,
        needs_pipeline: bool = False,
    ) -> argparse.ArgumentParser:
        sub = group.add_parser(
            name, help=help_text, description=help_text, parents=[coordinator_common]
        )
        sub.set_defaults(
            run=run, command_parser=sub, service=COORDINATOR, needs_pipeline=needs_pipeline
        )
        return sub

    rel = areas.add_parser("releases", help="register, activate and read releases")
    rel_commands = rel.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub = command(
        rel_commands,
        "register",
        "register a release from its pipeline-release.json",
        lambda r, a: releases.register(r, a.descriptor, upload=a.upload, policy=a.policy),
    )
    sub.add_argument(
        "--policy",
        metavar="PATH",
        type=Path,
        help="release policy as protobuf JSON (dispatch mode, retries), e.g. the "
        "release-policy.json that `tpf release build` writes",
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
    sub = coordinator_command(
        rel_commands,
        "drift",
        "what runs where: the active release, every worker and whether it serves it, the "
        "executions still pinned to each release, and whether each release can be retired "
        "(asks the coordinator)",
        lambda c, a: release_drift.drift(c, release_version=a.release),
        needs_pipeline=True,
    )
    sub.add_argument(
        "--release",
        default="",
        metavar="VERSION",
        help="also report on this release, and exit 1 unless it is safe to retire",
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
        ("drain", "stop sending new work to a worker, until it is undrained", workers.drain),
        ("undrain", "end a worker's drain: it receives work again", workers.undrain),
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

    _add_execution_commands(areas, coordinator_command)
    _add_interaction_commands(areas, coordinator_command)
    _add_dead_letter_commands(areas, coordinator_command)
    add_release_build(areas)
    return parser


AddCoordinatorCommand = Callable[..., argparse.ArgumentParser]


def _add_execution_commands(areas: SubParsers, command: AddCoordinatorCommand) -> None:
    sub = command(
        areas,
        "submit",
        "submit an execution of the pipeline's active release",
        lambda c, a: executions.submit(
            c, _payload_source(a, "input"), shape=a.shape, idempotency_key=a.key
        ),
        needs_pipeline=True,
    )
    _payload_options(sub, "input", "input")
    sub.add_argument(
        "--shape",
        type=_shape,
        default="UNI",
        help="how the input is split into items: UNI (default), MULTI (a list, one item each) "
        "or RAW",
    )
    sub.add_argument(
        "--key",
        default="",
        metavar="IDEMPOTENCY_KEY",
        help="business idempotency key: a repeat returns the same execution as a duplicate",
    )

    sub = command(
        areas,
        "status",
        "show an execution's state; --watch follows it until it ends",
        lambda c, a: (
            executions.watch(c, a.execution_id, as_json=a.json, emit=_emit)
            if a.watch
            else executions.status(c, a.execution_id)
        ),
    )
    sub.add_argument("execution_id", metavar="EXECUTION_ID")
    sub.add_argument(
        "--watch",
        action="store_true",
        help="print one line per version until the execution ends (no deadline); exit 0 if "
        "it SUCCEEDED, 1 if it FAILED, went to the DLQ or was CANCELLED",
    )

    sub = command(
        areas,
        "result",
        "print a SUCCEEDED execution's result as plain JSON",
        lambda c, a: executions.result(c, a.execution_id, as_envelope=a.envelope),
    )
    sub.add_argument("execution_id", metavar="EXECUTION_ID")
    sub.add_argument(
        "--envelope", action="store_true", help="print the result envelope as sent, not decoded"
    )

    sub = command(
        areas,
        "history",
        "list an execution's history, oldest first",
        lambda c, a: executions.history(c, a.execution_id, page_size=a.page_size),
    )
    sub.add_argument("execution_id", metavar="EXECUTION_ID")
    _page_size(sub)

    sub = command(
        areas,
        "cancel",
        "cancel an execution that has not ended",
        lambda c, a: executions.cancel(
            c, a.execution_id, reason=a.reason, expected_version=a.expected_version
        ),
    )
    sub.add_argument("execution_id", metavar="EXECUTION_ID")
    sub.add_argument("--reason", default="", help="why, kept in the history")
    sub.add_argument(
        "--expected-version",
        type=_version,
        metavar="N",
        help="cancel only if the execution is still at this version",
    )

    exe = areas.add_parser("executions", help="list executions")
    exe_commands = exe.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub = command(
        exe_commands,
        "list",
        "list the tenant's executions, newest first (of --pipeline unless it is '')",
        lambda c, a: executions.list_executions(
            c,
            statuses=a.statuses,
            release_version=a.release,
            idempotency_key=a.key,
            created=filters.created_of(a),
            page_size=a.page_size,
        ),
    )
    sub.add_argument(
        "--status",
        dest="statuses",
        action="extend",
        nargs="+",
        default=[],
        type=filters.execution_status,
        metavar="S",
        help="only these statuses (QUEUED, RUNNING, WAITING_EXTERNAL, WAIT_RETRY, SUCCEEDED, "
        "FAILED, DLQ, CANCELLED)",
    )
    sub.add_argument("--release", default="", metavar="VERSION", help="only this release")
    sub.add_argument("--key", default="", metavar="IDEMPOTENCY_KEY", help="only this key")
    filters.add_created_options(sub)
    _page_size(sub)


def _add_interaction_commands(areas: SubParsers, command: AddCoordinatorCommand) -> None:
    itr = areas.add_parser("interactions", help="list and complete pending interactions")
    itr_commands = itr.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub = command(
        itr_commands,
        "list",
        "list the tenant's pending interactions, by deadline",
        lambda c, a: interactions.list_pending(
            c, step_id=a.step_id, assignee=a.assignee, group=a.group, page_size=a.page_size
        ),
    )
    sub.add_argument("--step-id", default="", metavar="STEP", help="only this await step")
    sub.add_argument("--assignee", default="", help="only interactions assigned to this user")
    sub.add_argument("--group", default="", help="only interactions assigned to this group")
    _page_size(sub)

    sub = command(
        itr_commands,
        "complete",
        "answer a pending interaction; its execution continues after the await",
        lambda c, a: interactions.complete(
            c,
            interactions.Handle(
                interaction_id=a.interaction_id or "",
                correlation_id=a.correlation_id or "",
                resume_token=a.resume_token or "",
            ),
            _payload_source(a, "response"),
            actor=a.actor,
            idempotency_key=a.key,
        ),
    )
    handle = sub.add_mutually_exclusive_group(required=True)
    handle.add_argument("--interaction-id", metavar="ID")
    handle.add_argument("--correlation-id", metavar="ID")
    handle.add_argument("--resume-token", metavar="TOKEN")
    _payload_options(sub, "response", "response")
    sub.add_argument("--actor", default="", help="who answered (default: the token's subject)")
    sub.add_argument(
        "--key", default="", metavar="IDEMPOTENCY_KEY", help="stored with the completion"
    )


def _add_dead_letter_commands(areas: SubParsers, command: AddCoordinatorCommand) -> None:
    dlq = areas.add_parser("dlq", help="list dead letters and redrive failed executions")
    dlq_commands = dlq.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub = command(
        dlq_commands,
        "list",
        "list dead letters, newest first (open ones unless --include-redriven)",
        lambda c, a: dead_letters.list_dead_letters(
            c, _dead_letter_filter(c, a), page_size=a.page_size
        ),
    )
    _dead_letter_filter_options(sub, listing=True)
    _page_size(sub)

    sub = command(
        dlq_commands,
        "redrive",
        "run a FAILED or DLQ execution again from its failed step",
        lambda c, a: dead_letters.redrive(
            c,
            a.execution_id,
            allow_failed=a.allow_failed,
            expected_version=a.expected_version,
            reason=a.reason,
            target_release_version=a.target_release,
            replacement_input=_optional_payload_source(a, "replacement input"),
        ),
    )
    sub.add_argument("execution_id", metavar="EXECUTION_ID")
    _payload_options(
        sub,
        "corrected input of the step it resumes at (e.g. a fixed await response)",
        "replace-input",
        required=False,
        envelope_flag="replace-input-envelope-file",
    )
    sub.add_argument(
        "--allow-failed",
        action="store_true",
        help="also redrive a FAILED execution (without it only DLQ), as TPF's allowFailed",
    )
    sub.add_argument(
        "--expected-version",
        type=_version,
        metavar="N",
        help="redrive only if the execution is still at this version",
    )
    sub.add_argument("--reason", help="why, kept in the history (default: operator)")
    sub.add_argument(
        "--release",
        "--target-release",
        dest="target_release",
        metavar="VERSION",
        help="re-pin the execution onto this release of its pipeline first",
    )

    sub = command(
        dlq_commands,
        "bulk-redrive",
        "redrive the executions of matching open dead letters, oldest first",
        lambda c, a: dead_letters.bulk_redrive(
            c,
            _dead_letter_filter(c, a),
            dry_run=a.dry_run,
            max_executions=a.max,
            batch_size=a.batch_size,
            reason=a.reason,
            target_release_version=a.target_release,
            progress=_progress,
        ),
    )
    _dead_letter_filter_options(sub, listing=False)
    sub.add_argument("--dry-run", action="store_true", help="only show what would be redriven")
    sub.add_argument(
        "--max",
        type=_positive_int,
        default=100,
        metavar="N",
        help="redrive at most N executions (default 100)",
    )
    sub.add_argument(
        "--batch-size",
        type=_positive_int,
        default=100,
        metavar="N",
        help=f"executions per call, at most {dead_letters.MAX_PER_CALL} (default 100); a "
        "progress line follows each call on stderr",
    )
    sub.add_argument(
        "--reason", default="", help="why, kept on every history entry (required unless --dry-run)"
    )
    # Not --release: that is a filter here, as in `dlq list`.
    sub.add_argument(
        "--target-release",
        dest="target_release",
        metavar="VERSION",
        help="re-pin every redriven execution onto this release of its pipeline",
    )


def _check(args: argparse.Namespace) -> None:
    """Usage errors argparse cannot express."""
    if getattr(args, "batch_size", 0) > dead_letters.MAX_PER_CALL:
        args.command_parser.error(f"--batch-size must be at most {dead_letters.MAX_PER_CALL}")
    if hasattr(args, "dry_run") and not args.dry_run and not args.reason.strip():
        args.command_parser.error("--reason is required (unless --dry-run)")


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
    _check(args)
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
