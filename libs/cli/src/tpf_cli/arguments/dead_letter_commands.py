"""`tpf dlq list | redrive | bulk-redrive`: dead letters and redrives (coordinator)."""

from __future__ import annotations

import argparse
import sys

from tpf.coordinator.v1 import dead_letter_service_pb2
from tpf_cli import dead_letters, filters
from tpf_cli.arguments.command_adders import CommandAdders, SubParsers
from tpf_cli.arguments.common_options import add_page_size, positive_int, version
from tpf_cli.arguments.payload_options import add_payload_options, optional_payload_source
from tpf_cli.connection import Coordinator


def _filter_options(parser: argparse.ArgumentParser, *, listing: bool) -> None:
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


def _filter_of(
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


def check_bulk_redrive_usage(args: argparse.Namespace) -> None:
    """Usage errors of `dlq bulk-redrive` argparse cannot express; other commands pass."""
    if getattr(args, "batch_size", 0) > dead_letters.MAX_PER_CALL:
        args.command_parser.error(f"--batch-size must be at most {dead_letters.MAX_PER_CALL}")
    if hasattr(args, "dry_run") and not args.dry_run and not args.reason.strip():
        args.command_parser.error("--reason is required (unless --dry-run)")


def add_dead_letter_commands(areas: SubParsers, adders: CommandAdders) -> None:
    dlq = areas.add_parser("dlq", help="list dead letters and redrive failed executions")
    dlq_commands = dlq.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub = adders.coordinator(
        dlq_commands,
        "list",
        "list dead letters, newest first (open ones unless --include-redriven)",
        lambda c, a: dead_letters.list_dead_letters(c, _filter_of(c, a), page_size=a.page_size),
    )
    _filter_options(sub, listing=True)
    add_page_size(sub)

    sub = adders.coordinator(
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
            replacement_input=optional_payload_source(a, "replacement input"),
        ),
    )
    sub.add_argument("execution_id", metavar="EXECUTION_ID")
    add_payload_options(
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
        type=version,
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

    sub = adders.coordinator(
        dlq_commands,
        "bulk-redrive",
        "redrive the executions of matching open dead letters, oldest first",
        lambda c, a: dead_letters.bulk_redrive(
            c,
            _filter_of(c, a),
            dry_run=a.dry_run,
            max_executions=a.max,
            batch_size=a.batch_size,
            reason=a.reason,
            target_release_version=a.target_release,
            progress=_progress,
        ),
    )
    _filter_options(sub, listing=False)
    sub.add_argument("--dry-run", action="store_true", help="only show what would be redriven")
    sub.add_argument(
        "--max",
        type=positive_int,
        default=100,
        metavar="N",
        help="redrive at most N executions (default 100)",
    )
    sub.add_argument(
        "--batch-size",
        type=positive_int,
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
