"""`tpf submit | status | result | history | cancel` and `tpf executions list` (coordinator)."""

from __future__ import annotations

import argparse

from tpf_cli import executions, filters
from tpf_cli.arguments.command_adders import CommandAdders, SubParsers
from tpf_cli.arguments.common_options import add_page_size, version
from tpf_cli.arguments.payload_options import add_payload_options, payload_source

_SHAPES = ("UNI", "MULTI", "RAW")


def _shape(text: str) -> str:
    shape = text.strip().upper()
    if shape not in _SHAPES:
        raise argparse.ArgumentTypeError(f"unknown shape {text!r} (one of {', '.join(_SHAPES)})")
    return shape


def _emit(line: str) -> None:
    print(line, flush=True)


def add_execution_commands(areas: SubParsers, adders: CommandAdders) -> None:
    sub = adders.coordinator(
        areas,
        "submit",
        "submit an execution of the pipeline's active release",
        lambda c, a: executions.submit(
            c, payload_source(a, "input"), shape=a.shape, idempotency_key=a.key
        ),
        needs_pipeline=True,
    )
    add_payload_options(sub, "input", "input")
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

    sub = adders.coordinator(
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

    sub = adders.coordinator(
        areas,
        "result",
        "print a SUCCEEDED execution's result as plain JSON",
        lambda c, a: executions.result(c, a.execution_id, as_envelope=a.envelope),
    )
    sub.add_argument("execution_id", metavar="EXECUTION_ID")
    sub.add_argument(
        "--envelope", action="store_true", help="print the result envelope as sent, not decoded"
    )

    sub = adders.coordinator(
        areas,
        "history",
        "list an execution's history, oldest first",
        lambda c, a: executions.history(c, a.execution_id, page_size=a.page_size),
    )
    sub.add_argument("execution_id", metavar="EXECUTION_ID")
    add_page_size(sub)

    sub = adders.coordinator(
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
        type=version,
        metavar="N",
        help="cancel only if the execution is still at this version",
    )

    exe = areas.add_parser("executions", help="list executions")
    exe_commands = exe.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub = adders.coordinator(
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
    add_page_size(sub)
